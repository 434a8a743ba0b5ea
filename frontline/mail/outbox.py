"""Writing mail into the outbox table.

Every message carries an *idempotency key* that names what it is (``invite:<rotation>:<sequence>``,
``digest:<dept>:<week>``, ...). The key is unique in the table, so queuing the same message again,
from a re-run flow or a retried task, is a no-op. The ``Message-ID`` header is derived from the key,
so even a message delivered twice after a crash is recognisably the same message to the receiver.
"""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import OutboundMessage, utcnow


def _sender() -> str:
    from frontline.core.settings import get_settings

    return get_settings().mail_from


def message_id_for(idempotency_key: str, sender: str | None = None) -> str:
    """Deterministic ``Message-ID`` for a key: ``<hash@sender-domain>``."""
    domain = parseaddr(sender or _sender())[1].rpartition("@")[2] or "frontline.invalid"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def compose(
    *,
    to: str | Address | list[str | Address],
    subject: str,
    text: str,
    html: str | None = None,
    cc: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A ``text/plain`` message, or ``multipart/alternative`` (text + HTML) when ``html`` is given.

    Header values are set through the email package, which refuses CR/LF injection.
    """
    msg = EmailMessage()
    recipients = to if isinstance(to, list) else [to]
    msg["To"] = ", ".join(str(r) for r in recipients)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def enqueue(
    session: Session,
    message: EmailMessage,
    *,
    kind: str,
    idempotency_key: str,
) -> OutboundMessage | None:
    """Write ``message`` to the outbox unless a message with the same key exists.

    Fills in ``From`` (the configured sender), ``Date``, a deterministic ``Message-ID`` and
    ``Auto-Submitted: auto-generated`` when absent. Returns the new row, or ``None`` if the key was
    already queued (the caller's transaction is left intact either way).
    """
    if session.exec(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == idempotency_key)).first():
        return None
    if "From" not in message:
        message["From"] = _sender()
    if "Date" not in message:
        message["Date"] = format_datetime(utcnow())
    if "Message-ID" not in message:
        message["Message-ID"] = message_id_for(idempotency_key, str(message["From"]))
    if "Auto-Submitted" not in message:
        message["Auto-Submitted"] = "auto-generated"
    recipients = [addr for _name, addr in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))]
    row = OutboundMessage(
        idempotency_key=idempotency_key,
        kind=kind,
        recipient=", ".join(recipients),
        subject=str(message.get("Subject", ""))[:500],
        message_id=str(message["Message-ID"]),
        mime=message.as_bytes(),
    )
    try:
        with session.begin_nested():  # a concurrent writer may have won the race: the unique key decides
            session.add(row)
    except IntegrityError:
        return None
    return row
