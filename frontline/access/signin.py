"""Magic-link sign-in: issuing a single-use link by mail, and consuming it.

A person types their email. The request is admitted (:func:`admit_request`) within the rate limits:
:data:`SIGNIN_REQUESTS_PER_ADDRESS` per address and :data:`SIGNIN_REQUESTS_PER_IP` per client IP in
:data:`RATE_WINDOW`, counted atomically (:mod:`frontline.core.ratelimit`), for every address whether or
not it exists. Only after the answer is sent does :func:`queue_link` look the address up and, if it
belongs to someone with a console role, queue a single-use link (:func:`frontline.core.links.signin_url`,
15 minutes) through the outbox. So the answer, and the work done before it, is the same for a known and
an unknown address. A link is used up when it signs someone in: the server-side session it starts
(:func:`frontline.access.sessions.start`) records its nonce, which is unique in the table, so the same
link posted several times at once starts one session; the ``console.signin`` audit event records it too.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from frontline.access import sessions
from frontline.access.principal import Principal, load_principal, normalise_email
from frontline.core import audit, ratelimit
from frontline.core.errors import AccessDenied, SignInLinkError
from frontline.core.links import read_token, signin_url
from frontline.core.security import InvalidToken
from models import ConsoleSession

SIGNIN_REQUESTS_PER_ADDRESS = 5
SIGNIN_REQUESTS_PER_IP = 30
RATE_WINDOW = timedelta(minutes=15)
MAX_EMAIL_LENGTH = 320


def admit_request(session: Session, email: str, *, ip: str | None) -> bool:
    """Count a sign-in request against the per-IP and per-address limits; False when over either.

    The same statements run for every address, known or not (nothing here looks it up), so neither the
    answer nor its timing tells whether an address has an account. The caller commits."""
    email = normalise_email(email)[:MAX_EMAIL_LENGTH]
    ratelimit.forget_expired(session, older_than=timedelta(days=1))
    ip_ok = ratelimit.take(
        session, ratelimit.key_for("signin-ip", ip or "unknown"), limit=SIGNIN_REQUESTS_PER_IP, window=RATE_WINDOW
    )
    address_ok = ratelimit.take(
        session, ratelimit.key_for("signin-mail", email), limit=SIGNIN_REQUESTS_PER_ADDRESS, window=RATE_WINDOW
    )
    return ip_ok and address_ok


def queue_link(session: Session, email: str) -> bool:
    """Queue a magic link for ``email`` if it has a console role; whether one was queued (never tell the
    person asking). Run after :func:`admit_request` admitted the request, outside the request's answer."""
    principal = load_principal(session, email)
    if principal is None:
        return False
    _queue_link(session, principal)
    audit.record(
        session,
        actor=principal.email,
        action="console.signin_link",
        subject_type="console_user",
        subject_id=principal.email,
    )
    return True


def request_signin(session: Session, email: str, *, ip: str | None = None) -> bool:
    """:func:`admit_request` and :func:`queue_link` in one transaction (the CLI and tests; the web app
    runs the second step after answering)."""
    return admit_request(session, email, ip=ip) and queue_link(session, email)


def _queue_link(session: Session, principal: Principal) -> None:
    from frontline.mail import outbox

    nonce = secrets.token_urlsafe(16)
    link = signin_url(principal.email, nonce)
    text = (
        f"Hello {principal.name},\n\n"
        f"Use this link to sign in to the Frontline console (valid for 15 minutes, once):\n\n{link}\n\n"
        "If you did not ask for it, ignore this message.\n"
    )
    body = (
        f'<p>Hello {html.escape(principal.name)},</p><p><a href="{html.escape(link)}">Sign in to the Frontline '
        "console</a> (valid for 15 minutes, once).</p><p>If you did not ask for it, ignore this message.</p>"
    )
    message = outbox.compose(to=principal.email, subject="Your Frontline sign-in link", text=text, html=body)
    outbox.enqueue(session, message, kind="signin", idempotency_key=f"signin:{nonce}")


@dataclass(frozen=True)
class SignInLink:
    """What a valid sign-in link says: who it signs in, and its single-use nonce."""

    email: str
    nonce: str


def read_signin_link(token: str) -> SignInLink:
    """The link's content; :class:`SignInLinkError` when it is expired, forged or malformed."""
    try:
        payload = read_token("signin", token)
    except InvalidToken as exc:
        raise SignInLinkError(
            "This sign-in link has expired. Request a new one." if exc.expired else "This sign-in link is not valid."
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("m"), str) or not isinstance(payload.get("n"), str):
        raise SignInLinkError("This sign-in link is not valid.")
    return SignInLink(email=payload["m"], nonce=payload["n"])


def link_used(session: Session, nonce: str) -> bool:
    return session.exec(select(ConsoleSession.id).where(ConsoleSession.signin_nonce == nonce[:100])).first() is not None


def open_signin_link(session: Session, token: str) -> SignInLink:
    """A link that can still sign someone in; :class:`SignInLinkError` otherwise (also when used)."""
    link = read_signin_link(token)
    if link_used(session, link.nonce):
        raise SignInLinkError("This sign-in link was already used. Request a new one.")
    return link


@dataclass(frozen=True)
class SignedIn:
    """Who a sign-in link signed in, and the payload of their new session cookie."""

    principal: Principal
    cookie: dict[str, Any]


def consume_signin_link(session: Session, token: str) -> SignedIn:
    """Use up a sign-in link: start its server-side session (audited as ``console.signin``).

    :class:`SignInLinkError` for a link that cannot sign in (also when another request used it first,
    even at the same moment: the session's link nonce is unique), :class:`AccessDenied` when the account
    has lost every console role since the link was sent. The caller commits."""
    link = open_signin_link(session, token)
    principal = load_principal(session, link.email)
    if principal is None:
        raise AccessDenied("This account has no access to the console.")
    try:
        cookie = sessions.start(session, principal.email, link.nonce)
    except IntegrityError:  # the transaction is spoilt: the caller rolls it back
        raise SignInLinkError("This sign-in link was already used. Request a new one.") from None
    audit.record(
        session,
        actor=principal.email,
        action="console.signin",
        subject_type="signin_link",
        subject_id=link.nonce[:100],
    )
    return SignedIn(principal, cookie)
