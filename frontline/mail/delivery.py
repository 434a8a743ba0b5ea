"""Delivering the outbox: claim a batch, send it, record the outcome of every message.

States: ``pending`` → ``sending`` → ``sent`` | back to ``pending`` (retry later) | ``failed``.

* **Claim** (:func:`claim_batch`): rows that are ``pending`` and due (``next_attempt_at <= now``), plus
  ``sending`` rows whose lease has run out (a worker died mid-batch), are taken with a compare-and-set
  ``UPDATE ... WHERE id = :id AND state = :seen_state AND next_attempt_at <= :now``. Only the worker whose
  update changed the row owns it, so two workers never send the same row at the same time. While a row
  is ``sending``, ``next_attempt_at`` holds the end of its lease. On PostgreSQL the candidate select uses
  ``FOR UPDATE SKIP LOCKED`` so concurrent workers pick different rows instead of queueing on locks.
* **Send**: one transport connection per batch; each outcome is committed right after the send, so a
  crash can leave at most the one message in flight unrecorded.
* **Outcome**: ``sent`` (with ``sent_at``); a refused or interrupted send goes back to ``pending`` with
  ``next_attempt_at`` = now + ``backoff_seconds * 2**(attempts-1)`` (capped), and after ``max_attempts``
  attempts to ``failed`` with the SMTP error in ``last_error``.

**Delivery guarantee: at-least-once.** If the process dies after the SMTP server accepted a message
but before ``sent`` was committed, the row stays ``sending``; once its lease expires the next run sends
it again, byte for byte, with the same deterministic ``Message-ID`` (derived from the idempotency key
when the message was queued). We chose this over at-most-once because a lost invitation or cancellation
is silent and harmful (someone misses their rotation or shows up for a cancelled one), whereas a
duplicate is rare (only the single message in flight at the crash) and recognisable: mail systems and
calendar clients de-duplicate by Message-ID, and an iTIP REQUEST with the same UID and SEQUENCE simply
updates the same event. The folder transport is idempotent outright: a re-delivery overwrites the same
``<hash>.eml`` file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from frontline.mail.transport import PartialDelivery, SendError, Transport, TransportUnavailable
from models import OutboundMessage, utcnow

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 6 * 3600.0


@dataclass
class DeliveryResult:
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryResult) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retry += other.retry
        self.failed += other.failed
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, int]:
        return {"claimed": self.claimed, "sent": self.sent, "retry": self.retry, "failed": self.failed}


def backoff(attempts: int, base: float = BACKOFF_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> timedelta:
    """Delay before attempt ``attempts + 1``: base, 2·base, 4·base, ... capped."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


# the outbox's columns, as SQL expressions
msg_id, msg_state, msg_due, msg_attempts = (
    col(OutboundMessage.id),
    col(OutboundMessage.state),
    col(OutboundMessage.next_attempt_at),
    col(OutboundMessage.attempts),
)


def _due_filter(now: datetime) -> ColumnElement[bool]:
    return and_(msg_due <= now, or_(msg_state == "pending", msg_state == "sending"))


def _rowcount(result: Any) -> int:
    """Rows an UPDATE changed (``Session.execute`` is typed as returning a plain ``Result``)."""
    return cast(CursorResult[Any], result).rowcount


def claim_batch(
    engine: Engine, limit: int = 200, *, now: datetime | None = None, lease: timedelta = LEASE
) -> list[int]:
    """Take up to ``limit`` due rows for this worker (compare-and-set); returns their ids, committed."""
    now = now or utcnow()
    with Session(engine) as session:
        query = select(msg_id, msg_state).where(_due_filter(now)).order_by(msg_due, msg_id).limit(limit)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = session.exec(query).all()
        claimed: list[int] = []
        for row_id, seen_state in candidates:
            assert row_id is not None  # a primary key
            result = session.execute(
                update(OutboundMessage)
                .where(msg_id == row_id, msg_state == seen_state, msg_due <= now)
                .values(state="sending", next_attempt_at=now + lease, attempts=msg_attempts + 1)
            )
            if _rowcount(result) == 1:
                claimed.append(row_id)
        session.commit()
    return claimed


def release(engine: Engine, ids: list[int], *, now: datetime | None = None) -> None:
    """Give claimed rows back untouched (the transport was unavailable): pending, due now, attempt not counted."""
    if not ids:
        return
    now = now or utcnow()
    with Session(engine) as session:
        session.execute(
            update(OutboundMessage)
            .where(msg_id.in_(ids), msg_state == "sending")
            .values(state="pending", next_attempt_at=now, attempts=msg_attempts - 1)
        )
        session.commit()


def _finish(session: Session, row_id: int, **values: Any) -> None:
    """Record one outcome and commit at once (only a row this worker still holds in 'sending')."""
    session.execute(update(OutboundMessage).where(msg_id == row_id, msg_state == "sending").values(**values))
    session.commit()


def send_claimed(
    engine: Engine,
    ids: list[int],
    transport: Transport,
    *,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> DeliveryResult:
    """Send the claimed rows over one transport session and record each outcome (committed one by one).

    Raises :class:`TransportUnavailable` (after releasing the unsent rows) when the transport cannot
    send at all, so the caller can retry the whole batch later.
    """
    result = DeliveryResult(claimed=len(ids))
    with Session(engine) as session:
        loaded = {
            row.id: (row.mime, row.recipient, row.message_id, row.attempts)
            for row in session.exec(select(OutboundMessage).where(msg_id.in_(ids), msg_state == "sending")).all()
        }
        session.commit()
        for position, row_id in enumerate(ids):
            if row_id not in loaded:
                continue
            mime, recipients, message_id, attempts = loaded.pop(row_id)
            stamp = now or utcnow()
            try:
                transport.send(
                    mime,
                    mail_from=_from_header(mime),
                    recipients=[r.strip() for r in recipients.split(",") if r.strip()],
                    message_id=message_id,
                )
            except TransportUnavailable:
                release(engine, ids[position:], now=stamp)
                raise
            except PartialDelivery as exc:
                _finish(session, row_id, state="sent", sent_at=stamp, last_error=str(exc)[:2000])
                result.sent += 1
            except SendError as exc:
                error = str(exc)[:2000]
                result.errors.append(f"#{row_id}: {error}")
                if attempts >= max_attempts:
                    _finish(session, row_id, state="failed", last_error=error)
                    result.failed += 1
                else:
                    _finish(
                        session,
                        row_id,
                        state="pending",
                        last_error=error,
                        next_attempt_at=stamp + backoff(attempts, backoff_seconds),
                    )
                    result.retry += 1
            else:
                _finish(session, row_id, state="sent", sent_at=stamp, last_error=None)
                result.sent += 1
    return result


def _from_header(mime: bytes) -> str:
    from email.parser import BytesHeaderParser
    from email.policy import default

    headers = BytesHeaderParser(policy=default).parsebytes(mime)
    value = headers.get("From")
    if value is None:
        from frontline.core.settings import get_settings

        return get_settings().mail_from
    return str(value)


def deliver_batch(
    engine: Engine,
    transport: Transport,
    *,
    batch_size: int = 200,
    now: datetime | None = None,
    lease: timedelta = LEASE,
    max_attempts: int = MAX_ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> DeliveryResult:
    """Claim one batch and send it. ``claimed == 0`` means nothing is due.

    The lease always covers the whole batch at the transport's rate limit (twice over, plus a minute),
    so a slow, throttled batch is never taken over by another worker while it is still being sent."""
    interval = getattr(transport, "min_interval", 0.0) or 0.0
    lease = max(lease, timedelta(seconds=2 * batch_size * interval + 60))
    ids = claim_batch(engine, batch_size, now=now, lease=lease)
    if not ids:
        return DeliveryResult()
    return send_claimed(engine, ids, transport, now=now, max_attempts=max_attempts, backoff_seconds=backoff_seconds)


def deliver_pending(
    engine: Engine | None = None,
    transport: Transport | None = None,
    *,
    batch_size: int = 200,
    max_batches: int | None = None,
    now: datetime | None = None,
    **options,
) -> DeliveryResult:
    """Deliver everything due, batch after batch, over one transport (without Prefect)."""
    from frontline.mail.transport import transport_from_settings
    from models import get_engine

    engine = engine or get_engine()
    own_transport = transport is None
    transport = transport or transport_from_settings()
    total = DeliveryResult()
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            result = deliver_batch(engine, transport, batch_size=batch_size, now=now, **options)
            batches += 1
            total.add(result)
            if result.claimed < batch_size:
                break
    finally:
        if own_transport:
            transport.close()
    return total


# --- operations (CLI) --------------------------------------------------------------------------------


def status(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Counts per state and kind, the oldest pending message, the failed ones with their errors, and how
    many are stuck in ``sending`` past their lease at ``now``."""
    kind = col(OutboundMessage.kind)
    counts = session.exec(select(msg_state, kind, func.count()).group_by(msg_state, kind)).all()
    oldest = session.exec(
        select(OutboundMessage).where(msg_state == "pending").order_by(col(OutboundMessage.created_at)).limit(1)
    ).first()
    failed = session.exec(select(OutboundMessage).where(msg_state == "failed").order_by(msg_id)).all()
    stale = session.exec(select(func.count(msg_id)).where(msg_state == "sending", msg_due <= (now or utcnow()))).one()
    return {
        "counts": [{"state": s, "kind": k, "count": n} for s, k, n in sorted(counts)],
        "oldest_pending": oldest,
        "failed": failed,
        "stale_sending": stale,
    }


def retry(
    session: Session, *, ids: list[int] | None = None, all_failed: bool = False, now: datetime | None = None
) -> int:
    """Put failed messages (by id, or all of them) back to pending, due now, with a fresh attempt budget."""
    if not ids and not all_failed:
        raise ValueError("name message ids or ask for all failed messages")
    statement = update(OutboundMessage).where(msg_state == "failed")
    if ids:
        statement = statement.where(msg_id.in_(ids))
    result = session.execute(statement.values(state="pending", attempts=0, next_attempt_at=now or utcnow()))
    return _rowcount(result)
