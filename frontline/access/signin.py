"""Magic-link sign-in: issuing a single-use link by mail, and consuming it.

A person types their email; if it belongs to someone with a console role, a single-use link
(:func:`frontline.core.links.signin_url`, 15 minutes) is queued through the outbox, at most
:data:`SIGNIN_REQUESTS_PER_15_MIN` per address in 15 minutes. Callers answer the same whether or not a
link was queued. A link is used up when it signs someone in: the ``console.signin`` audit event records
its nonce.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, func, select

from frontline.access.principal import Principal, load_principal
from frontline.core import audit
from frontline.core.errors import AccessDenied, SignInLinkError
from frontline.core.links import read_token, signin_url
from frontline.core.security import InvalidToken
from models import AuditEvent, OutboundMessage, utcnow

SIGNIN_REQUESTS_PER_15_MIN = 5
RATE_WINDOW = timedelta(minutes=15)


def recent_signin_requests(session: Session, email: str, *, now: datetime | None = None) -> int:
    """Sign-in links queued for ``email`` in the last 15 minutes."""
    since = (now or utcnow()) - RATE_WINDOW
    return session.exec(
        select(func.count())
        .select_from(OutboundMessage)
        .where(
            OutboundMessage.kind == "signin",
            OutboundMessage.recipient == email,
            OutboundMessage.created_at >= since,
        )
    ).one()


def request_signin(session: Session, email: str) -> bool:
    """Queue a magic link for ``email`` if it has a console role (and is not over the rate limit).

    Returns whether a link was queued; callers must not reveal it to the person asking.
    """
    principal = load_principal(session, email)
    if principal is None:
        return False
    if recent_signin_requests(session, principal.email) >= SIGNIN_REQUESTS_PER_15_MIN:
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
    return (
        session.exec(
            select(AuditEvent.id).where(
                AuditEvent.action == "console.signin",
                AuditEvent.subject_type == "signin_link",
                AuditEvent.subject_id == nonce[:100],
            )
        ).first()
        is not None
    )


def open_signin_link(session: Session, token: str) -> SignInLink:
    """A link that can still sign someone in; :class:`SignInLinkError` otherwise (also when used)."""
    link = read_signin_link(token)
    if link_used(session, link.nonce):
        raise SignInLinkError("This sign-in link was already used. Request a new one.")
    return link


def consume_signin_link(session: Session, token: str) -> Principal:
    """Use up a sign-in link (audited as ``console.signin``) and return who it signs in.

    :class:`SignInLinkError` for a link that cannot sign in, :class:`AccessDenied` when the account has
    lost every console role since the link was sent. The caller commits."""
    link = open_signin_link(session, token)
    principal = load_principal(session, link.email)
    if principal is None:
        raise AccessDenied("This account has no access to the console.")
    audit.record(
        session,
        actor=principal.email,
        action="console.signin",
        subject_type="signin_link",
        subject_id=link.nonce[:100],
    )
    return principal
