"""Console sign-in routes and access control: the FastAPI side of :mod:`frontline.access`.

* **Sign-in**: a person types their email. The request is counted against the per-IP and per-address
  limits (:func:`frontline.access.signin.admit_request`, the same work for every address); the page,
  the same whether or not the address is known, is sent; only then, if the address belongs to someone
  with a console role, is a single-use magic link queued and delivered
  (:func:`frontline.access.signin.queue_link`). Opening the link shows a *Sign in* button (mail scanners
  that prefetch links cannot sign anyone in); pressing it starts a session.
* **Single sign-on** (when ``FRONTLINE_OIDC_ISSUER`` is set): ``/console/sso`` sends the browser to the
  identity provider and ``/console/sso/callback`` checks its answer (:mod:`frontline.access.oidc`); with
  ``FRONTLINE_MAGIC_LINKS=false`` the e-mailed links are refused (404) and only single sign-on remains.
* **Session**: a cookie holding the signed session payload, backed by a server-side session
  (:mod:`frontline.access.sessions`). HttpOnly, SameSite=Lax, Secure when the base URL is https, 12 hours;
  signing out ends it on the server, so a copied cookie stops working. Roles are looked up in the
  database on every request (:func:`frontline.access.principal.load_principal`), so removing a role
  takes effect at once.
* **Authenticate before reading bodies**: a POST to a console page other than sign-in is refused (403)
  unless its cookie names an active signed-in session, before any of its body is read
  (:class:`SignedInBeforeBody`).
* **CSRF**: every POST must carry ``csrf_token`` (form field or ``X-CSRF-Token`` header): a token
  signed for the session id in the cookie. Missing or wrong: 403.
* **Roles**: :func:`require_hr` (HR admins), :func:`require_staff` (HR admins and department heads),
  :func:`current_user` (anyone with a role).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from frontline.access import sessions, signin
from frontline.access.principal import Principal, load_principal
from frontline.access.sessions import SESSION_SECONDS
from frontline.core.errors import AccessDenied, SignInLinkError
from frontline.core.templating import render_html
from models import session_scope
from models.db import INTERACTIVE

COOKIE = "frontline_console"


# --------------------------------------------------------------------------------------- errors


class ConsoleDenied(Exception):
    """An HTML error page (403 by default) for a console request."""

    def __init__(self, message: str = "You do not have access to this page.", status_code: int = 403):
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    @classmethod
    def from_access(cls, exc: AccessDenied) -> ConsoleDenied:
        """The page for a refusal of :mod:`frontline.access`: 400 for a bad sign-in link, else 403."""
        return cls(str(exc), status_code=400 if isinstance(exc, SignInLinkError) else 403)


class SignInRequired(Exception):
    """No signed-in session: redirect to the sign-in page."""


# ------------------------------------------------------------------------------ session / cookie


# The longest a writer of the plan or the pairings waits for another one (``models.db.planning_lock``) in a
# web request: past it the person gets the "still running" page instead of a request that hangs for the
# command line's wait (FRONTLINE_PLANNING_LOCK_WAIT, 300 s) and then times out in the browser or proxy.
WEB_PLANNING_LOCK_WAIT = 15.0


@contextmanager
def web_session() -> Iterator[Session]:
    """A database session for one web request (committed when the block succeeds): as
    :func:`models.session_scope`, with the planning lock's wait capped at :data:`WEB_PLANNING_LOCK_WAIT`."""
    with session_scope() as session:
        session.info[INTERACTIVE] = WEB_PLANNING_LOCK_WAIT
        yield session


def db() -> Iterator[Session]:
    """A database session per request (committed when the handler succeeds)."""
    with web_session() as session:
        yield session


def _secure_cookies() -> bool:
    from frontline.core.settings import get_settings

    return get_settings().base_url.startswith("https://")


def console_session(request: Request) -> dict[str, Any]:
    """The session payload ``{"sid", "email"?}``; an anonymous one is started when there is none."""
    cached = getattr(request.state, "console_session", None)
    if cached is not None:
        return cached
    data = sessions.read_session(request.cookies.get(COOKIE))
    if data is None:
        data = sessions.new_session()
        request.state.console_cookie = data  # set on the response by page()/redirect()
    request.state.console_session = data
    return data


def start_session(request: Request, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put the session payload ``data`` in the cookie (a signed-in one from
    :func:`frontline.access.sessions.start`), or a fresh anonymous one when None (no fixation)."""
    data = data if data is not None else sessions.new_session()
    request.state.console_session = data
    request.state.console_cookie = data
    return data


def _apply_cookie(request: Request, response: Response) -> Response:
    data = getattr(request.state, "console_cookie", None)
    if data is not None:
        response.set_cookie(
            COOKIE,
            sessions.sign_session(data),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
            secure=_secure_cookies(),
            path="/",
        )
    return response


def csrf_token(request: Request) -> str:
    return sessions.csrf_token(console_session(request)["sid"])


async def require_csrf(request: Request) -> None:
    """Router dependency: every unsafe request carries a CSRF token bound to this session."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    token = request.headers.get("x-csrf-token")
    if not token:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            token = value if isinstance(value, str) else None
    sessions.check_csrf(request.cookies.get(COOKIE), token)  # AccessDenied: the console's error page


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a console template with the common context (user, CSRF token) and the session cookie."""
    context.setdefault("user", getattr(request.state, "principal", None))
    context.setdefault("flash", sessions.read_flash(request.query_params.get("done")))
    context["csrf_token"] = csrf_token(request)
    context["request_path"] = request.url.path
    response = HTMLResponse(render_html(template, **context), status_code=status_code)
    _apply_cookie(request, response)  # security headers (CSP, no framing, no-store): frontline.web.middleware
    return response


def with_flash(url: str, message: str) -> str:
    """``url`` with a signed one-line message shown once at the top of the page."""
    return f"{url}{'&' if '?' in url else '?'}done={quote(sessions.sign_flash(message), safe='')}"


def redirect(request: Request, url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    _apply_cookie(request, response)
    return response


def safe_next(url: str | None) -> str:
    """Only local console paths are followed after sign-in (no open redirect)."""
    if not url:
        return "/console"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/console") or url.startswith("//"):
        return "/console"
    return url


# ------------------------------------------------------------------------------- dependencies


def current_user(request: Request, session: Session = Depends(db)) -> Principal:
    data = console_session(request)
    email = data.get("email")
    if not email:
        raise SignInRequired()
    if not sessions.is_active(session, data):  # signed out (maybe from another copy of the cookie) or expired
        start_session(request)
        raise SignInRequired()
    principal = load_principal(session, email)
    if principal is None:
        start_session(request)
        raise ConsoleDenied("Your account no longer has access to the console.")
    request.state.principal = principal
    return principal


def require_hr(user: Principal = Depends(current_user)) -> Principal:
    if not user.is_hr:
        raise ConsoleDenied("Only HR admins can open this page.")
    return user


def require_staff(user: Principal = Depends(current_user)) -> Principal:
    """HR admins and department heads."""
    if not (user.is_hr or user.is_head):
        raise ConsoleDenied("Only HR admins and department heads can open this page.")
    return user


# ------------------------------------------------------------------------------------- sign-in

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)


def _signin_page(
    request: Request, next_url: str, *, sent: bool = False, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    from frontline.access import oidc
    from frontline.core.settings import get_settings

    settings = get_settings()
    return page(
        request,
        "web/console/signin.html",
        status_code=status_code,
        next=next_url,
        sent=sent,
        user=None,
        sso_label=settings.oidc_label if oidc.enabled(settings) else None,
        magic_links=settings.magic_links,
        sso_error=error,
    )


def _magic_links_on() -> None:
    from frontline.core.settings import get_settings

    if not get_settings().magic_links:
        raise ConsoleDenied("Sign-in links are switched off here: sign in with single sign-on.", status_code=404)


@router.get("/signin")
def signin_form(request: Request, next: str | None = None) -> Response:
    if console_session(request).get("email"):
        return redirect(request, safe_next(next))
    return _signin_page(request, safe_next(next))


# --- single sign-on (OpenID Connect; frontline.access.oidc) ---


@router.get("/sso")
def sso_start(request: Request, next: str | None = None) -> Response:
    """Send the browser to the identity provider, keeping state, nonce and PKCE verifier in the cookie."""
    from frontline.access import oidc
    from frontline.core.settings import get_settings

    settings = get_settings()
    if not oidc.enabled(settings):
        raise ConsoleDenied("Single sign-on is not configured here.", status_code=404)
    try:
        url, pending = oidc.begin(settings, safe_next(next))
    except oidc.OidcError as exc:
        return _signin_page(request, safe_next(next), error=str(exc), status_code=502)
    data = dict(console_session(request))
    data["oidc"] = pending.as_dict()
    start_session(request, data)
    response = RedirectResponse(url, status_code=303)
    _apply_cookie(request, response)
    return response


@router.get("/sso/callback")
def sso_callback(request: Request, session: Session = Depends(db)) -> Response:
    """The identity provider's answer: check it, verify the ID token, map roles, start the session."""
    from frontline.access import oidc
    from frontline.core.settings import get_settings

    settings = get_settings()
    if not oidc.enabled(settings):
        raise ConsoleDenied("Single sign-on is not configured here.", status_code=404)
    data = dict(console_session(request))
    pending = oidc.Pending.from_dict(data.pop("oidc", None))
    start_session(request, data)  # the pending sign-in is used up, whatever happens next
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    try:
        identity = oidc.finish(settings, pending, params)
    except oidc.OidcError as exc:
        return _signin_page(request, "/console", error=str(exc), status_code=403)
    cookie = oidc.sign_in(session, settings, identity, pending.nonce if pending else "")
    session.commit()
    if cookie is None:
        message = f"{identity.email} has no access to the Frontline console; ask HR."
        return _signin_page(request, "/console", error=message, status_code=403)
    start_session(request, cookie)
    return redirect(request, safe_next(pending.next if pending else None))


def client_ip(request: Request) -> str | None:
    """The client's address (uvicorn puts a trusted proxy's X-Forwarded-For here, see ``frontline serve``)."""
    return request.client.host if request.client else None


@router.post("/signin")
def signin_request(
    request: Request, email: str = Form(""), next: str = Form(""), session: Session = Depends(db)
) -> Response:
    _magic_links_on()
    admitted = signin.admit_request(session, email, ip=client_ip(request))
    session.commit()
    data = dict(console_session(request))
    data["next"] = safe_next(next)  # where this browser goes after following the link
    request.state.console_session = request.state.console_cookie = data
    # Same answer, after the same work, whether or not the address is known: whether it is, and the
    # link, are looked at after the answer is sent.
    response = _signin_page(request, "/console", sent=True)
    if admitted:
        response.background = BackgroundTask(send_signin_link, email)
    return response


SIGNIN_JITTER_SECONDS = 0.5


def send_signin_link(email: str) -> None:
    """After the answer: queue the sign-in link if ``email`` has a console role, and deliver it now.

    Runs for every admitted request, known address or not, after a random pause of up to
    :data:`SIGNIN_JITTER_SECONDS`: the extra work a known address causes (queuing and sending its link)
    does not line up with the answer, so the next answers of the server (or of the same connection)
    hardly tell either; the per-address limit allows 5 such probes per 15 minutes anyway."""
    import logging
    import secrets

    time.sleep(secrets.SystemRandom().uniform(0, SIGNIN_JITTER_SECONDS))
    try:
        with session_scope() as session:
            queued = signin.queue_link(session, email)
    except Exception:
        logging.getLogger(__name__).exception("queuing a sign-in link failed")
        return
    if queued:
        deliver_soon()


def deliver_soon() -> None:
    """Deliver the due sign-in links now, so a 15-minute link does not wait for the next scheduled
    delivery run: one small batch of ``signin`` messages only (the outbox's own claims, lease and fencing),
    never a sender of the whole outbox. Failures stay in the outbox for the scheduled run to retry."""
    import logging

    try:
        from frontline.mail.delivery import deliver_urgent

        deliver_urgent("signin")
    except Exception:
        logging.getLogger(__name__).exception("immediate delivery of the sign-in link failed")


@router.get("/signin/{token}")
def signin_link(request: Request, token: str, session: Session = Depends(db)) -> Response:
    _magic_links_on()
    link = signin.open_signin_link(session, token)
    return page(request, "web/console/signin_confirm.html", email=link.email, token=token, user=None)


@router.post("/signin/{token}")
def signin_complete(request: Request, token: str, session: Session = Depends(db)) -> Response:
    _magic_links_on()
    signed_in = signin.consume_signin_link(session, token)
    session.commit()
    target = safe_next(console_session(request).get("next"))
    start_session(request, signed_in.cookie)
    return redirect(request, target)


@router.post("/signout")
def signout(request: Request, session: Session = Depends(db)) -> Response:
    sessions.end(session, console_session(request))  # on the server: every copy of the cookie stops working
    session.commit()
    start_session(request)
    return redirect(request, "/console/signin")


# ---------------------------------------------------------------------- authenticate before the body

SIGNIN_PATHS = ("/console/signin",)  # the sign-in form and its links: the only console POSTs without a session


def signed_in(cookie: str | None) -> bool:
    """Whether a cookie value names an active signed-in console session (signature, then the server)."""
    data = sessions.read_session(cookie)
    if data is None or not data.get("email"):
        return False
    with session_scope() as session:
        return sessions.is_active(session, data)


class SignedInBeforeBody:
    """ASGI middleware: an unsafe request to a console page other than sign-in must come with an active
    signed-in session, checked before a byte of its body is read; otherwise 403 and the connection is
    closed. (Role checks and CSRF follow in the routes; the roster upload checks the HR role before it
    reads its files too.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in {"GET", "HEAD", "OPTIONS"}
            or not (scope["path"] == "/console" or scope["path"].startswith("/console/"))
            or scope["path"].startswith(SIGNIN_PATHS)
        ):
            return await self.app(scope, receive, send)
        from anyio import to_thread

        cookie = HTTPConnection(scope).cookies.get(COOKIE)
        if await to_thread.run_sync(signed_in, cookie):
            return await self.app(scope, receive, send)
        body = render_html(
            "web/observe_error.html",
            heading="Sign in first",
            message="This console action needs a signed-in session. Sign in at /console/signin and try again.",
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------------- app wiring


def _denied_page(request: Request, exc: Exception) -> Response:
    """The console's error page for a :class:`ConsoleDenied`, or for a refusal of :mod:`frontline.access`."""
    if isinstance(exc, AccessDenied):
        exc = ConsoleDenied.from_access(exc)
    assert isinstance(exc, ConsoleDenied)
    return page(
        request, "web/console/error.html", status_code=exc.status_code, code=exc.status_code, message=exc.message
    )


def _signin_redirect(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, "/console/signin?next=" + quote(safe_next(target), safe=""))


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """A request value FastAPI could not accept (an id out of range, a word for a number): the console's
    error page (400) naming it; elsewhere (the JSON API) FastAPI's 422 list, written as ASCII JSON so an
    input echoed back (half a surrogate pair, say) cannot break the answer."""
    import json

    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError

    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith("/console"):
        content = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(content, status_code=422, media_type="application/json")
    problems = "; ".join(
        f"{err['loc'][-1] if err.get('loc') else 'request'}: {str(err.get('msg', 'invalid'))}" for err in exc.errors()
    )
    return _denied_page(request, ConsoleDenied(f"This address is not valid ({problems}).", status_code=400))


def install(app: FastAPI) -> None:
    """Add the sign-in routes and the console's error pages to ``app``."""
    from fastapi.exceptions import RequestValidationError

    app.include_router(router)
    app.add_exception_handler(ConsoleDenied, _denied_page)
    app.add_exception_handler(AccessDenied, _denied_page)  # sign-in links, CSRF (frontline.access)
    app.add_exception_handler(SignInRequired, _signin_redirect)
    app.add_exception_handler(RequestValidationError, _invalid_request)


__all__ = [
    "COOKIE",
    "ConsoleDenied",
    "Principal",
    "SignInRequired",
    "console_session",
    "csrf_token",
    "current_user",
    "db",
    "install",
    "page",
    "redirect",
    "require_csrf",
    "require_hr",
    "require_staff",
    "safe_next",
    "start_session",
    "with_flash",
]
