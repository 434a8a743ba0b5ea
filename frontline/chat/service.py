"""Chat notifications: queue in the caller's transaction, deliver later through Apprise.

* :func:`notify` queues a :class:`models.ChatMessage` for a channel the policy names (``hr``,
  ``department:<name>``, or ``person:<employee_id>`` through the policy's ``people`` URL), once per idempotency key, in the transaction of the event it tells about (so a
  rolled-back event tells nobody). A channel the policy does not have is no message.
* :func:`deliver_due` sends what is due with Apprise, one channel URL at a time, read from the policy when
  sending (the URL is a secret: it is never stored, logged or shown; errors are scrubbed of it). A failure is
  retried with backoff (1, 2, 4, ... minutes, at most an hour) up to ``chat.max_attempts``; a channel removed
  from the policy drops its messages. Each channel's last success and error go to the connectors table, so
  ``frontline status`` shows a channel that fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from frontline.core.policy import Chat
from frontline.core.text import one_line
from frontline.operations.connectors import record_failure, record_success
from models import ChatMessage, Employee

MAX_TITLE = 300
MAX_BODY = 3000
BATCH = 200


def chat_safe(text: str) -> str:
    """User text for a chat message: no mentions (@channel, <!here>) or links it could smuggle in."""
    return text.replace("<", "‹").replace(">", "›").replace("@", "＠")


PERSON = "person:"


def person_target(employee_id: str) -> str:
    """The target of messages to one person (by their stable employee id, so a changed e-mail is followed)."""
    return PERSON + employee_id


def connector_name(target: str) -> str:
    """The connectors-table row a target's outcomes go to: one per channel, one for all people."""
    return "chat:people" if target.startswith(PERSON) else f"chat:{target}"


def channel_url(chat: Chat, target: str, email: str | None = None) -> str | None:
    """The Apprise URL for ``target``; for a person, the policy's ``people`` URL with their ``email``
    (None when the policy has no such channel or the person's address is not known)."""
    if target == "hr":
        return chat.hr
    if target.startswith("department:"):
        return chat.departments.get(target.removeprefix("department:"))
    if target.startswith(PERSON):
        if chat.people is None:
            return None
        if email is None:
            return chat.people  # queueing: the address is looked up when sending
        return chat.people.replace("{email}", quote(email, safe="@+"))
    return None


def notify(session: Session, chat: Chat, target: str, *, key: str, title: str, body: str) -> bool:
    """Queue one message for ``target`` (no-op without such a channel or when ``key`` was queued before).
    Returns True when a message was queued."""
    if channel_url(chat, target) is None:
        return False
    if session.exec(select(ChatMessage.id).where(col(ChatMessage.idempotency_key) == key)).first() is not None:
        return False
    message = ChatMessage(
        idempotency_key=key, target=target, title=one_line(title)[:MAX_TITLE], body=body.strip()[:MAX_BODY]
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:  # queued at the same moment by another writer
        return False
    return True


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def _send(url: str, title: str, body: str) -> str | None:
    """Send one message with Apprise; None when it went, else why (without the URL)."""
    import logging

    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return "the channel's URL is not one Apprise knows"
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = sender.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
    if ok:
        return None
    text = one_line(captured.getvalue() or "the chat service refused the message")
    for secret in {url, url.split("://", 1)[-1].split("/", 1)[0]}:
        text = text.replace(secret, "<channel URL>")
    return text[:400]


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def deliver_due(session: Session, chat: Chat, now: datetime, *, send: Any = _send) -> Delivery:
    """Send every due pending message (oldest first, at most :data:`BATCH`); commit per message is the
    caller's session's business: this function flushes each outcome before the next send."""
    result = Delivery()
    due = session.exec(
        select(ChatMessage)
        .where(col(ChatMessage.state) == "pending", col(ChatMessage.next_attempt_at) <= now)
        .order_by(col(ChatMessage.next_attempt_at), col(ChatMessage.id))
        .limit(BATCH)
    ).all()
    people = _addresses(session, [m.target for m in due])
    for message in due:
        person = message.target.startswith(PERSON)
        email = people.get(message.target)
        url = channel_url(chat, message.target, email) if (email or not person) else None
        if url is None:
            message.state = "dropped"
            message.last_error = (
                "the person has left or is unknown"
                if person and chat.people is not None
                else "the policy no longer has this channel"
            )
            result.dropped += 1
        else:
            error = send(url, message.title, message.body)
            message.attempts += 1
            if error is None:
                message.state, message.sent_at, message.last_error = "sent", now, None
                result.sent += 1
                record_success(session, connector_name(message.target), f"sent {message.idempotency_key}", now)
            else:
                message.last_error = error
                if message.attempts >= chat.max_attempts:
                    message.state = "failed"
                else:
                    message.next_attempt_at = now + _backoff(message.attempts)
                result.failed += 1
                result.errors[connector_name(message.target)] = error
                record_failure(session, connector_name(message.target), error, now)
        session.add(message)
        session.flush()
    return result


def _addresses(session: Session, targets: list[str]) -> dict[str, str]:
    """``person:<employee_id>`` -> the current work e-mail of each active person among ``targets``."""
    ids = {t.removeprefix(PERSON) for t in targets if t.startswith(PERSON)}
    if not ids:
        return {}
    rows = session.exec(
        select(Employee.employee_id, Employee.email).where(
            col(Employee.employee_id).in_(sorted(ids)), col(Employee.active).is_(True)
        )
    ).all()
    return {PERSON + employee_id: email for employee_id, email in rows}
