"""Delivering the outbox: claim a batch, send it, record the outcome of every message.

States: ``pending`` → ``sending`` → ``sent`` | back to ``pending`` (retry later) | ``failed``.

* **Claim** (:func:`claim_batch`): rows that are ``pending`` and due (``next_attempt_at <= now``), plus
  ``sending`` rows whose lease has run out (a worker died mid-batch), are taken with a compare-and-set
  ``UPDATE ... WHERE id = :id AND state = :seen_state AND next_attempt_at <= :now`` that also writes a
  fresh random *lease token* of this sender into ``lease_token``. Only the worker whose update changed
  the row owns it. While a row is ``sending``, ``next_attempt_at`` holds the end of its lease
  (:data:`LEASE`). On PostgreSQL the candidate select uses ``FOR UPDATE SKIP LOCKED`` so concurrent
  workers pick different rows instead of queueing on locks.
* **Lease renewal** (:class:`Heartbeat`): while a sender is alive a thread renews the lease of every row
  it still holds every quarter lease, so a slow server (seconds per message) never lets another sender
  take over a batch that is still being sent. A sender that dies stops renewing, and its rows become
  claimable one lease later.
* **Fencing** (:func:`_hold`, :func:`_finish`): right before each send, and when recording the outcome, a
  compare-and-set on ``lease_token`` checks that the row is still this sender's. A sender that was frozen
  past its lease (and whose rows another sender took) skips them instead of sending them again.
* **Send**: one transport connection per batch; each outcome is committed right after the send, so a
  crash can leave at most the one message in flight unrecorded. The outbox folder takes the whole batch
  at once (:func:`_send_batch`): fenced and loaded in one transaction, every file written and synced,
  the folder synced once, then the batch marked ``sent`` in one commit; a crash before that commit
  re-delivers the batch to the same file names (idempotent, see below).
* **Throttling** (the server answers 421/451 with 4.7.x, "rate limited", ...: :class:`Throttled`): not an
  outcome. The transport's pacer slows down and pauses; the same message is sent again (fenced again
  by :func:`_hold`), its attempt not counted again. After :data:`MAX_THROTTLED_IN_A_ROW` throttling
  replies in a row that message is recorded as a refused attempt (its backoff; failed after
  ``max_attempts``: a reply that only looks like throttling, e.g. a 4.7.1 policy refusal of one
  recipient, cannot hold the queue forever) and the rest of the batch is released like an unavailable
  transport.
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

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, and_, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from frontline.mail.transport import PartialDelivery, SendError, Throttled, Transport, TransportUnavailable
from models import OutboundMessage, utcnow

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 6 * 3600.0
MAX_THROTTLED_IN_A_ROW = 12  # then the server is treated as unavailable (2-3 minutes of pauses, see Pacer)

log = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    taken_over: int = 0  # claimed rows another sender held by the time this one came to them (not sent here)
    throttled: int = 0  # throttling replies (the message was sent again after a pause, no attempt counted)
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryResult) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retry += other.retry
        self.failed += other.failed
        self.taken_over += other.taken_over
        self.throttled += other.throttled
        self.errors.extend(other.errors)

    def as_dict(self) -> dict[str, int]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "retry": self.retry,
            "failed": self.failed,
            "taken_over": self.taken_over,
            "throttled": self.throttled,
        }


@dataclass(frozen=True)
class Claim:
    """The rows one sender took (:func:`claim_batch`), the token that proves it still holds them, and the
    length of the lease it renews."""

    ids: list[int]
    token: str
    lease: timedelta = LEASE

    def __len__(self) -> int:
        return len(self.ids)


class _Clock:
    """The sender's clock: real UTC time, or a fixed ``now`` (tests, re-runs) advanced by the time elapsed."""

    def __init__(self, now: datetime | None):
        self.fixed, self.started = now, time.monotonic()

    def __call__(self) -> datetime:
        if self.fixed is None:
            return utcnow()
        return self.fixed + timedelta(seconds=time.monotonic() - self.started)


def backoff(attempts: int, base: float = BACKOFF_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> timedelta:
    """Delay before attempt ``attempts + 1``: base, 2·base, 4·base, ... capped."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


# the outbox's columns, as SQL expressions
msg_id, msg_state, msg_due, msg_attempts, msg_token, msg_kind = (
    col(OutboundMessage.id),
    col(OutboundMessage.state),
    col(OutboundMessage.next_attempt_at),
    col(OutboundMessage.attempts),
    col(OutboundMessage.lease_token),
    col(OutboundMessage.kind),
)


# The per-message UPDATEs (claim, hold, finish) need not find and refresh the rows' objects in the
# session (the ORM's default, which cost about as much as the UPDATE itself): nothing reads such an
# object after the update, and every commit expires them anyway.
_PLAIN = update(OutboundMessage).execution_options(synchronize_session=False)


def _due_filter(now: datetime) -> ColumnElement[bool]:
    return and_(msg_due <= now, or_(msg_state == "pending", msg_state == "sending"))


def _rowcount(result: Any) -> int:
    """Rows an UPDATE changed (``Session.execute`` is typed as returning a plain ``Result``)."""
    return cast(CursorResult[Any], result).rowcount


def claim_batch(
    engine: Engine,
    limit: int = 200,
    *,
    now: datetime | None = None,
    lease: timedelta = LEASE,
    kinds: Sequence[str] | None = None,
) -> Claim:
    """Take up to ``limit`` due rows (of ``kinds`` only, when given) for a new sender (compare-and-set);
    returns them with the sender's lease token, committed."""
    now = now or utcnow()
    token = secrets.token_hex(16)
    with Session(engine) as session:
        query = select(msg_id, msg_state).where(_due_filter(now))
        if kinds is not None:
            query = query.where(msg_kind.in_(list(kinds)))
        query = query.order_by(msg_due, msg_id).limit(limit)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = session.exec(query).all()
        claimed: list[int] = []
        for row_id, seen_state in candidates:
            assert row_id is not None  # a primary key
            result = session.execute(
                _PLAIN.where(msg_id == row_id, msg_state == seen_state, msg_due <= now).values(
                    state="sending", next_attempt_at=now + lease, attempts=msg_attempts + 1, lease_token=token
                )
            )
            if _rowcount(result) == 1:
                claimed.append(row_id)
        session.commit()
    return Claim(claimed, token, lease)


def release(engine: Engine, claim: Claim, ids: list[int] | None = None, *, now: datetime | None = None) -> None:
    """Give claimed rows (all, or ``ids``) back untouched (the transport was unavailable): pending, due
    now, attempt not counted. Only rows this sender still holds."""
    ids = claim.ids if ids is None else ids
    if not ids:
        return
    now = now or utcnow()
    with Session(engine) as session:
        session.execute(
            update(OutboundMessage)
            .where(msg_id.in_(ids), msg_state == "sending", msg_token == claim.token)
            .values(state="pending", next_attempt_at=now, attempts=msg_attempts - 1, lease_token=None)
        )
        session.commit()


def renew(engine: Engine, claim: Claim, *, now: datetime | None = None) -> int:
    """Extend the lease of every row ``claim`` still holds to ``now + lease``; returns how many it holds."""
    now = now or utcnow()
    with Session(engine) as session:
        result = session.execute(
            update(OutboundMessage)
            .where(msg_token == claim.token, msg_state == "sending")
            .values(next_attempt_at=now + claim.lease)
        )
        session.commit()
    return _rowcount(result)


class Heartbeat:
    """Renews a claim's lease every quarter lease while the sender works (also while one slow send
    blocks it), so a live sender's rows are never taken over; stops with the ``with`` block."""

    def __init__(self, engine: Engine, claim: Claim, clock: Callable[[], datetime]):
        self.engine, self.claim, self.clock = engine, claim, clock
        self.interval = max(0.05, claim.lease.total_seconds() / 4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-lease-heartbeat", daemon=True)
        self.beats = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                renew(self.engine, self.claim, now=self.clock())
                self.beats += 1
            except Exception:  # the database may be busy or gone: fencing still protects every send
                log.warning("could not renew the outbox lease", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def _hold(session: Session, claim: Claim, row_id: int, now: datetime) -> bool:
    """Fencing, right before a send: still this sender's row? Compare-and-set on the lease token, which
    also renews the lease. False when another sender took the row over (its lease ran out meanwhile)."""
    result = session.execute(
        _PLAIN.where(msg_id == row_id, msg_state == "sending", msg_token == claim.token).values(
            next_attempt_at=now + claim.lease
        )
    )
    session.commit()
    return _rowcount(result) == 1


def _finish(session: Session, claim: Claim, row_id: int, **values: Any) -> bool:
    """Record one outcome and commit at once, only on a row this sender still holds; False otherwise."""
    result = session.execute(
        _PLAIN.where(msg_id == row_id, msg_state == "sending", msg_token == claim.token).values(
            lease_token=None, **values
        )
    )
    session.commit()
    return _rowcount(result) == 1


def send_claimed(
    engine: Engine,
    claim: Claim,
    transport: Transport,
    *,
    now: datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    backoff_seconds: float = BACKOFF_SECONDS,
) -> DeliveryResult:
    """Send the claimed rows over one transport session and record each outcome (committed one by one),
    renewing the lease meanwhile (:class:`Heartbeat`) and checking before each send that the row is still
    held (:func:`_hold`).

    Raises :class:`TransportUnavailable` (after releasing the unsent rows) when the transport cannot
    send at all, so the caller can retry the whole batch later.
    """
    clock = _Clock(now)
    with Heartbeat(engine, claim, clock):
        try:
            return _send_all(engine, claim, transport, clock, max_attempts, backoff_seconds)
        except BaseException:
            # Stopped (a worker's SIGTERM reaches a flow run as Prefect's TerminationSignal; Ctrl-C) or an
            # unexpected error: give back the rows still held now, not one lease later. A message in flight
            # may go again (at-least-once, as after a crash). The original error is what propagates.
            try:
                release(engine, claim, now=clock())
            except Exception:  # noqa: BLE001 - the database may be why we stopped: the lease still ends
                log.warning("could not give back %d claimed outbox message(s); their lease will", len(claim))
            raise


class BatchTransport(Protocol):
    """A transport that takes a whole batch at once (:class:`~frontline.mail.transport.FolderTransport`):
    ``send_batch`` returns only when every message of the batch is durably delivered, or raises
    :class:`TransportUnavailable` (then none counts as delivered)."""

    def send_batch(self, messages: list[tuple[str, bytes]]) -> None: ...


def _send_all(
    engine: Engine,
    claim: Claim,
    transport: Transport,
    clock: Callable[[], datetime],
    max_attempts: int,
    backoff_seconds: float,
) -> DeliveryResult:
    if hasattr(transport, "send_batch"):
        return _send_batch(engine, claim, cast(BatchTransport, transport), clock)
    result = DeliveryResult(claimed=len(claim))
    with Session(engine) as session:
        loaded = {
            row.id: (row.mime, row.recipient, row.message_id, row.attempts)
            for row in session.exec(
                select(OutboundMessage).where(msg_id.in_(claim.ids), msg_state == "sending", msg_token == claim.token)
            ).all()
        }
        session.commit()
        for position, row_id in enumerate(claim.ids):
            if row_id not in loaded:
                result.taken_over += 1
                continue
            mime, recipients, message_id, attempts = loaded.pop(row_id)
            try:
                if not _send_held(session, claim, row_id, transport, clock, result, mime, recipients, message_id):
                    result.taken_over += 1  # another sender has it now: sending it here would duplicate it
                    continue
            except TransportUnavailable as exc:
                unsent = claim.ids[position:]
                if isinstance(exc, KeepsThrottling):  # this message gets its attempt, like any 4xx
                    _refused(session, claim, row_id, result, exc.last, attempts, clock, max_attempts, backoff_seconds)
                    unsent = unsent[1:]
                release(engine, claim, unsent, now=clock())
                raise
            except PartialDelivery as exc:
                _record(session, claim, row_id, result, state="sent", sent_at=clock(), last_error=str(exc)[:2000])
                result.sent += 1
            except SendError as exc:
                _refused(session, claim, row_id, result, exc, attempts, clock, max_attempts, backoff_seconds)
            else:
                _record(session, claim, row_id, result, state="sent", sent_at=clock(), last_error=None)
                result.sent += 1
    return result


class KeepsThrottling(TransportUnavailable):
    """:data:`MAX_THROTTLED_IN_A_ROW` throttling replies in a row for one message (``last`` is the last)."""

    def __init__(self, last: Throttled):
        super().__init__(f"the server keeps throttling: {last}")
        self.last = last


def _refused(
    session: Session,
    claim: Claim,
    row_id: int,
    result: DeliveryResult,
    exc: SendError,
    attempts: int,
    clock: Callable[[], datetime],
    max_attempts: int,
    backoff_seconds: float,
) -> None:
    """Record a refused attempt: back to pending with the message's backoff, or failed after
    ``max_attempts``."""
    error = str(exc)[:2000]
    result.errors.append(f"#{row_id}: {error}")
    if attempts >= max_attempts:
        _record(session, claim, row_id, result, state="failed", last_error=error)
        result.failed += 1
    else:
        retry_at = clock() + backoff(attempts, backoff_seconds)
        _record(session, claim, row_id, result, state="pending", last_error=error, next_attempt_at=retry_at)
        result.retry += 1


def _send_held(
    session: Session,
    claim: Claim,
    row_id: int,
    transport: Transport,
    clock: Callable[[], datetime],
    result: DeliveryResult,
    mime: bytes,
    recipients: str,
    message_id: str,
) -> bool:
    """Send one claimed row if this sender still holds it (:func:`_hold`), again after each throttling
    reply (the transport pauses first). False when the row was taken over; raises what the transport
    raises, and :class:`KeepsThrottling` when the server keeps throttling."""
    mail_from, to = _from_header(mime), [r.strip() for r in recipients.split(",") if r.strip()]
    in_a_row = 0
    while _hold(session, claim, row_id, clock()):
        try:
            transport.send(mime, mail_from=mail_from, recipients=to, message_id=message_id)
            return True
        except Throttled as exc:
            result.throttled += 1
            in_a_row += 1
            if in_a_row >= MAX_THROTTLED_IN_A_ROW:
                raise KeepsThrottling(exc) from exc
    return False


def _send_batch(
    engine: Engine, claim: Claim, transport: BatchTransport, clock: Callable[[], datetime]
) -> DeliveryResult:
    """The claimed rows through a batch transport: the held rows are fenced and loaded in one
    transaction (the lease renewed by the same compare-and-set as :func:`_hold`), written in one go,
    then marked ``sent`` in one commit, only on rows this sender still holds.

    No loss: ``sent`` is committed only after ``send_batch`` returned, i.e. after every file and the
    folder were synced to disk. A crash before that commit leaves the rows ``sending``; one lease later
    they are delivered again to the same file names (from the Message-ID), same bytes: idempotent."""
    result = DeliveryResult(claimed=len(claim))
    with Session(engine) as session:
        held = msg_id.in_(claim.ids), msg_state == "sending", msg_token == claim.token
        session.execute(update(OutboundMessage).where(*held).values(next_attempt_at=clock() + claim.lease))
        rows = session.exec(
            select(msg_id, col(OutboundMessage.message_id), col(OutboundMessage.mime)).where(*held).order_by(msg_id)
        ).all()
        session.commit()
        ids = [row_id for row_id, _message_id, _mime in rows if row_id is not None]
        result.taken_over = len(claim) - len(ids)  # another sender has them now: not written here
        try:
            transport.send_batch([(message_id, mime) for _row_id, message_id, mime in rows])
        except TransportUnavailable:
            release(engine, claim, ids, now=clock())
            raise
        del rows
        recorded = session.execute(
            update(OutboundMessage)
            .where(msg_id.in_(ids), msg_state == "sending", msg_token == claim.token)
            .values(state="sent", sent_at=clock(), last_error=None, lease_token=None)
        )
        session.commit()
    result.sent = len(ids)
    if _rowcount(recorded) != len(ids):  # taken over while being written: the new holder rewrites the same files
        log.warning("%d outbox message(s) were taken over while being written", len(ids) - _rowcount(recorded))
        result.errors.append(
            f"{len(ids) - _rowcount(recorded)} message(s) taken over by another sender while being written"
        )
    return result


def _record(session: Session, claim: Claim, row_id: int, result: DeliveryResult, **values: Any) -> None:
    """:func:`_finish`, saying so when the row was taken over while it was being sent (the new holder
    sends it again: the one duplicate at-least-once allows)."""
    if not _finish(session, claim, row_id, **values):
        log.warning("outbox message #%s was taken over while it was being sent; it may arrive twice", row_id)
        result.errors.append(f"#{row_id}: taken over by another sender while being sent")


def _from_header(mime: bytes) -> str:
    """The message's From header as written (RFC 2047 words left encoded: only its address is used, as
    the envelope sender). The compat32 header parser is about 6 times cheaper than the default policy's,
    which was a large share of the time per message on a fast relay."""
    from email.parser import BytesHeaderParser

    value = BytesHeaderParser().parsebytes(mime).get("From")
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
    kinds: Sequence[str] | None = None,
) -> DeliveryResult:
    """Claim one batch (of ``kinds`` only, when given) and send it. ``claimed == 0`` means nothing is due.

    However slow the server, the batch stays this sender's while it lives: the lease is renewed every
    quarter lease and before each send, and a row whose lease ran out anyway (the process was frozen) and
    was taken by another sender is skipped, not sent twice."""
    claim = claim_batch(engine, batch_size, now=now, lease=lease, kinds=kinds)
    if not claim.ids:
        return DeliveryResult()
    return send_claimed(engine, claim, transport, now=now, max_attempts=max_attempts, backoff_seconds=backoff_seconds)


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


URGENT_BATCH = 5


def deliver_urgent(kind: str, *, engine: Engine | None = None, limit: int = URGENT_BATCH) -> DeliveryResult:
    """Deliver due messages of one ``kind`` now (the web app's sign-in links): one batch of at most
    ``limit`` messages, with the same claims, lease and fencing as every sender. Bounded on purpose: a
    burst of requests cannot turn into senders that drain the whole outbox; everything else waits for
    the scheduled ``deliver-mail`` run."""
    return deliver_pending(engine, batch_size=limit, max_batches=1, kinds=[kind])


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
    result = session.execute(
        statement.values(state="pending", attempts=0, next_attempt_at=now or utcnow(), lease_token=None)
    )
    return _rowcount(result)
