"""Signed links from the weekly digest: act on a theme, and unsubscribe.

* ``GET /digest/theme/{token}?action=planned`` shows what the link applies to and a confirm form (mail
  scanners that prefetch links change nothing); ``POST`` applies the chosen state to the week's
  observations of the theme addressed to the department through
  :func:`frontline.digests.theme_actions.apply_theme_action`, which records it and tells the reporting rotators.
* ``GET /digest/unsubscribe/{token}`` confirms; ``POST`` (also RFC 8058 one-click, no login) records the
  opt-out in :class:`models.DigestOptOut`.

A forged, tampered or expired token answers 403. The token in the path is the credential; nothing
else is needed (the links are sent to that one recipient).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse

from frontline.core.clock import utcnow
from frontline.core.errors import DigestError
from frontline.core.links import THEME_ACTIONS, read_token
from frontline.core.security import InvalidToken
from frontline.core.templating import render_html
from frontline.digests.content import ACK_LABELS
from frontline.digests.queue import digest_department, unsubscribe
from frontline.digests.theme_actions import (
    ThemeLink,
    ThemeView,
    apply_theme_action,
    recipient_still_current,
    reroute_theme,
    theme_view,
)
from frontline.observations.intake import department_names
from frontline.observations.routing import RerouteError
from models import session_scope

router = APIRouter(prefix="/digest", tags=["digest"])


def request_time() -> datetime:
    """When a request acts (a dependency, so a test can fix the clock of an end-to-end run)."""
    return utcnow()


def _page(name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(render_html(name, **ctx), status_code=status_code)


def _denied(exc: InvalidToken | str) -> HTMLResponse:
    return _page("web/digest_error.html", 403, title="This link cannot be used", message=str(exc))


_SHAPES = {  # the "ack" purpose is shared with single-observation links (frontline.core.links.ack_url): check the shape
    "ack": {"d": int, "w": str, "a": str, "c": str, "t": str, "r": str},
    "unsubscribe": {"d": int, "m": str},
}


def _payload(purpose: str, token: str) -> dict[str, Any]:
    payload = read_token(purpose, token)
    shape = _SHAPES[purpose]
    if not isinstance(payload, dict) or any(not isinstance(payload.get(k), t) for k, t in shape.items()):
        raise InvalidToken("this link is not valid")
    return payload


_NOT_CURRENT = "this link was sent to someone who no longer receives this department's digest"


def _theme_context(
    link: ThemeLink, view: ThemeView, departments: list[str] | None = None, token: str = ""
) -> dict[str, Any]:
    return {
        "token": token,
        "departments": [d for d in departments or [] if d != view.department],
        "rerouted": None,
        "title": "Respond to a digest theme",
        "theme": link.theme,
        "week": link.week,
        "area": link.product_area,
        "category": link.category,
        "department": view.department,
        "observations": view.observations,
        "labels": ACK_LABELS,
        "choices": [(a, ACK_LABELS[a]) for a in THEME_ACTIONS],
    }


@router.get("/theme/{token}", response_class=HTMLResponse)
def theme_confirm(token: str, action: str | None = None) -> HTMLResponse:
    try:
        link = ThemeLink.from_payload(_payload("ack", token))
    except InvalidToken as exc:
        return _denied(exc)
    with session_scope() as session:
        if not recipient_still_current(session, link):
            return _denied(_NOT_CURRENT)
        ctx = _theme_context(link, theme_view(session, link), department_names(session), token)
        return _page("web/digest_theme.html", selected=action if action in THEME_ACTIONS else None, done=None, **ctx)


@router.post("/theme/{token}/reroute", response_class=HTMLResponse)
def theme_reroute(token: str, department: str = Form(...), observation: list[int] | None = Form(None)) -> HTMLResponse:
    """ "Not ours -> Finance" from the digest: the theme's observations addressed to the link's department
    (or the ticked ones) go to ``department``; the router learns from it."""
    try:
        link = ThemeLink.from_payload(_payload("ack", token))
    except InvalidToken as exc:
        return _denied(exc)
    try:
        with session_scope() as session:
            if not recipient_still_current(session, link):
                return _denied(_NOT_CURRENT)
            moved = reroute_theme(session, link, department, observation)
            ctx = _theme_context(link, theme_view(session, link), department_names(session), token)
            ctx["rerouted"] = (moved, department)
            return _page("web/digest_theme.html", selected=None, done=None, **ctx)
    except RerouteError as exc:
        return _page("web/digest_error.html", 400, title="Could not re-route", message=str(exc))


@router.post("/theme/{token}", response_class=HTMLResponse)
def theme_apply(
    token: str, action: str = Form(...), note: str = Form(""), now: datetime = Depends(request_time)
) -> HTMLResponse:
    try:
        link = ThemeLink.from_payload(_payload("ack", token))
    except InvalidToken as exc:
        return _denied(exc)
    if action not in THEME_ACTIONS:
        return _page(
            "web/digest_error.html",
            400,
            title="Unknown choice",
            message=f"{action!r} is not one of: {', '.join(THEME_ACTIONS)}",
        )
    try:
        with session_scope() as session:
            if not recipient_still_current(session, link):
                return _denied(_NOT_CURRENT)
            acted = apply_theme_action(session, link, action, note[:2000] or None, now=now)
            ctx = _theme_context(link, theme_view(session, link), department_names(session), token)
            return _page("web/digest_theme.html", selected=action, done=action if acted else None, **ctx)
    except (ValueError, DigestError) as exc:
        return _page("web/digest_error.html", 400, title="Could not apply", message=str(exc))


def _unsubscribe_page(token: str, apply: bool) -> HTMLResponse:
    try:
        payload = _payload("unsubscribe", token)
    except InvalidToken as exc:
        return _denied(exc)
    with session_scope() as session:
        department = digest_department(session, payload["d"])
        if department is None:
            return _page(
                "web/digest_error.html", 404, title="Unknown digest", message="This department no longer exists."
            )
        if apply:
            unsubscribe(session, payload["d"], payload["m"])
        return _page(
            "web/digest_unsubscribe.html",
            title="Digest subscription",
            department=department.name,
            email=payload["m"],
            done=apply,
        )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_confirm(token: str) -> HTMLResponse:
    return _unsubscribe_page(token, apply=False)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_apply(token: str) -> HTMLResponse:
    return _unsubscribe_page(token, apply=True)
