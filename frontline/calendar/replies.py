"""RSVP replies: the iTIP ``METHOD:REPLY`` that calendar apps send to the invite's ORGANIZER.

Reading (pure, :func:`read_message`): a mail is a reply when one of its parts is an iCalendar object
(``text/calendar``, inline as Outlook and Google send it, or an ``.ics`` attachment) with ``METHOD:REPLY``
and one VEVENT naming its UID, SEQUENCE, DTSTAMP and one ATTENDEE with a PARTSTAT (and maybe a COMMENT).
Anything else (a mail without a calendar, a calendar that does not parse, another METHOD, no attendee) is
a :class:`Skip` with the reason.

Applying (:func:`apply_reply`, one transaction per mail, the caller's): the reply must answer a rotation
invite (UID ``rotation-<id>@<sender domain>``, :func:`frontline.calendar.ics.rotation_uid`) of a rotation
that was announced and is not cancelled, come from that rotation's rotator (the ATTENDEE's address), and
answer the current invite (its SEQUENCE; an older one is *stale*). Then it is stored as an
:class:`models.InviteReply`, unique by the mail's Message-ID (a re-read applies nothing twice), audited
(``rotation.rsvp``), and a *decline* becomes a change request for HR (*I can't do this rotation*, reason
"declined the calendar invite" and the attendee's COMMENT, :func:`frontline.rotations.requests.submit`)
unless one is already waiting for HR or the rotation has started. Every refusal is a :class:`Skip` and
writes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.errors import PlanningError
from frontline.core.policy import Policy
from frontline.core.text import one_line
from frontline.mail.imap import FETCH_BATCH, Mailbox
from models import InviteReply, Rotation

ANSWERS = ("ACCEPTED", "DECLINED", "TENTATIVE")
DECLINE_REASON = "declined the calendar invite"
MAX_COMMENT = 1500
MAX_ICS_BYTES = 1_000_000
ACTOR = "flow:read-rsvp-replies"


class Skip(Exception):
    """A mail that is not applied, and why (logged and counted; nothing is written)."""

    def __init__(self, reason: str, *, kind: str = "skipped"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # skipped | stale | duplicate


@dataclass(frozen=True)
class Reply:
    """The answer one attendee gave to one invite."""

    uid: str
    sequence: int
    attendee: str
    partstat: str
    comment: str | None
    replied_at: datetime | None


@dataclass(frozen=True)
class ReadMessage:
    """One mail of the mailbox: its Message-ID (or a hash of its bytes), and its reply or why not."""

    message_id: str
    sender: str
    reply: Reply | None
    skip: str | None


# --- reading (pure) --------------------------------------------------------------------------------------


def message_key(raw: bytes, header: str | None) -> str:
    """The mail's Message-ID, or ``sha256:<hash of its bytes>`` for a mail without one."""
    value = one_line(header or "").strip()
    if value:
        return value[:300]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def read_message(raw: bytes) -> ReadMessage:
    """The reply in one mail (see the module docstring); never raises for a bad mail (one that cannot be
    read would otherwise stop every later run at the same mail)."""
    try:
        msg = message_from_bytes(raw, policy=policy.default)
        key = message_key(raw, str(msg.get("Message-ID", "") or ""))
        sender = one_line(str(msg.get("From", "") or ""))[:200]
    except Exception as exc:  # noqa: BLE001 - headers so broken the email package gives up
        return ReadMessage(message_key(raw, None), "", None, f"unreadable mail: {type(exc).__name__}")
    try:
        return ReadMessage(key, sender, _reply_in(msg, raw), None)
    except Skip as exc:
        return ReadMessage(key, sender, None, exc.reason)
    except Exception as exc:  # noqa: BLE001 - a MIME or calendar structure no parser step expected
        return ReadMessage(key, sender, None, f"malformed mail: {one_line(str(exc))[:200] or type(exc).__name__}")


def _calendar_parts(msg: EmailMessage) -> list[bytes]:
    """The iCalendar bodies of the mail: ``text/calendar`` parts first, then ``.ics`` attachments."""
    inline: list[bytes] = []
    attached: list[bytes] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        name = (part.get_filename() or "").lower()
        if ctype == "text/calendar" or ctype == "application/ics" or name.endswith(".ics"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                (inline if ctype == "text/calendar" else attached).append(payload)
    return inline + attached


def _reply_in(msg: EmailMessage, raw: bytes) -> Reply:
    parts = _calendar_parts(msg)
    if not parts:
        raise Skip("not a calendar reply: the mail has no text/calendar part or .ics attachment")
    problems: list[str] = []
    for body in parts:
        try:
            return parse_reply(body)
        except Skip as exc:
            problems.append(exc.reason)
    raise Skip(problems[0])


def parse_reply(ics: bytes) -> Reply:
    """The reply in one iCalendar object, or :class:`Skip` saying why it is not one."""
    from icalendar import Calendar

    if len(ics) > MAX_ICS_BYTES:
        raise Skip(f"malformed calendar: larger than {MAX_ICS_BYTES} bytes")
    try:
        cal = Calendar.from_ical(ics)
    except Exception as exc:  # noqa: BLE001 - any parser failure: the calendar is malformed
        raise Skip(f"malformed calendar: {one_line(str(exc))[:200] or type(exc).__name__}") from None
    if not isinstance(cal, Calendar) or cal.name != "VCALENDAR":
        raise Skip("malformed calendar: no VCALENDAR")
    method = str(cal.get("METHOD", "")).upper()
    if method != "REPLY":
        raise Skip(f"not a reply: METHOD is {method or 'missing'} (only METHOD:REPLY is read)")
    events = list(cal.walk("VEVENT"))
    if not events:
        raise Skip("malformed calendar: the reply has no VEVENT")
    event = events[0]
    uid = one_line(str(event.get("UID", ""))).strip()
    if not uid:
        raise Skip("malformed calendar: the reply's VEVENT has no UID")
    attendees = event.get("ATTENDEE")
    if attendees is None:
        raise Skip(f"malformed calendar: the reply to {uid} names no ATTENDEE")
    if not isinstance(attendees, list):
        attendees = [attendees]
    if len(attendees) != 1:
        raise Skip(f"malformed calendar: a reply names one ATTENDEE, this one to {uid} names {len(attendees)}")
    attendee = attendees[0]
    address = re.sub(r"(?i)^mailto:", "", str(attendee)).strip().lower()
    if "@" not in address:
        raise Skip(f"malformed calendar: the reply to {uid} has no attendee e-mail address")
    partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper()
    if not partstat:
        raise Skip(f"malformed calendar: the reply to {uid} by {address} has no PARTSTAT")
    try:
        sequence = int(event.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        raise Skip(f"malformed calendar: the reply to {uid} has a SEQUENCE that is not a number") from None
    comment = event.get("COMMENT")
    if isinstance(comment, list):
        comment = " ".join(str(c) for c in comment)
    return Reply(
        uid=uid,
        sequence=sequence,
        attendee=address,
        partstat=partstat,
        comment=_clean_comment(str(comment)) if comment is not None else None,
        replied_at=_stamp(event.get("DTSTAMP")),
    )


def _clean_comment(text: str) -> str | None:
    """The attendee's COMMENT made one storable line (control characters and NULs become spaces)."""
    text = re.sub(r"[\x00-\x1f\x7f\ud800-\udfff]", " ", one_line(text)).strip()
    return text[:MAX_COMMENT] or None


def _stamp(prop: object) -> datetime | None:
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def mail_date(raw: bytes) -> datetime | None:
    msg = message_from_bytes(raw, policy=policy.compat32)
    try:
        value = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# --- applying (one transaction per mail, the caller's) ----------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What one reply did."""

    rotation_id: int
    attendee: str
    partstat: str
    request_id: int | None
    note: str

    def line(self) -> str:
        return f"rotation {self.rotation_id}: {self.attendee} {self.partstat.lower()}; {self.note}"


def rotation_id_of(uid: str, sender: str) -> int | None:
    """The rotation id in a rotation invite UID of this organiser (``rotation-<id>@<domain>``)."""
    from frontline.calendar.ics import sender_domain

    found = re.fullmatch(r"rotation-(\d{1,18})@(.+)", uid.strip(), flags=re.IGNORECASE)
    if found is None or found.group(2).lower() != sender_domain(sender).lower():
        return None
    return int(found.group(1))


def _rotation_for(session: Session, reply: Reply, sender: str) -> Rotation:
    """The rotation the reply answers, or :class:`Skip` why it answers none of ours."""
    from models import Employee

    rotation_id = rotation_id_of(reply.uid, sender)
    if rotation_id is None:
        if reply.uid.lower().startswith("checkins-"):
            raise Skip(f"reply to the check-in meetings {reply.uid} (only rotation invites are tracked)")
        raise Skip(f"unknown UID {reply.uid!r}: not a rotation invite sent by this organiser")
    rotation = session.get(Rotation, rotation_id)
    if rotation is None:
        raise Skip(f"unknown UID {reply.uid!r}: rotation {rotation_id} does not exist")
    person = session.get(Employee, rotation.employee_id)
    if person is None or person.email.strip().lower() != reply.attendee:
        raise Skip(f"attendee {reply.attendee} is not the rotator of rotation {rotation_id}; not applied")
    if rotation.announced_state is None:
        raise Skip(f"rotation {rotation_id} was never announced; a reply to it is not applied")
    if rotation.status == "cancelled" or rotation.announced_state == "cancelled":
        raise Skip(f"rotation {rotation_id} is cancelled; the reply is not applied")
    if reply.sequence < rotation.sequence:
        raise Skip(
            f"stale: the reply of {reply.attendee} answers SEQUENCE {reply.sequence} of rotation {rotation_id}, "
            f"the current invite is SEQUENCE {rotation.sequence}",
            kind="stale",
        )
    if reply.sequence > rotation.sequence:
        raise Skip(
            f"the reply to rotation {rotation_id} answers SEQUENCE {reply.sequence}, newer than any invite sent "
            f"({rotation.sequence}); not applied"
        )
    if reply.partstat not in ANSWERS:
        raise Skip(f"PARTSTAT {reply.partstat} of {reply.attendee} for rotation {rotation_id} is not an answer read")
    return rotation


def apply_reply(
    session: Session,
    policy_: Policy,
    message: ReadMessage,
    *,
    sender: str,
    received_at: datetime,
    today: date,
) -> Applied:
    """Store one reply (and open HR's change request for a decline); :class:`Skip` writes nothing. The
    caller commits, or rolls back on any exception."""
    from frontline.rotations import requests

    if message.reply is None:
        raise Skip(message.skip or "not a calendar reply")
    seen = session.exec(select(InviteReply.id).where(col(InviteReply.message_id) == message.message_id)).first()
    if seen is not None:
        raise Skip(f"already recorded (Message-ID {message.message_id})", kind="duplicate")
    reply = message.reply
    rotation = _rotation_for(session, reply, sender)
    rotation_id = rotation.id or 0
    request_id: int | None = None
    note = "recorded"
    if reply.partstat == "DECLINED":
        waiting = requests.pending_request(session, rotation_id)
        if waiting is not None:
            note = f"recorded; change request {waiting.id} is already waiting for HR"
        elif rotation.start <= today:
            note = "recorded; no change request: the rotation has started (HR is not asked through Frontline)"
        else:
            reason = DECLINE_REASON + (f": {reply.comment}" if reply.comment else "")
            try:
                req = requests.submit(
                    session,
                    policy_,
                    rotation_id,
                    kind="cannot_do",
                    requester_email=reply.attendee,
                    requester_role="rotator",
                    reason=reason,
                    today=today,
                )
            except PlanningError as exc:
                raise Skip(f"decline of rotation {rotation_id} not applied: {exc}") from None
            request_id = req.id
            note = f"recorded; change request {req.id} opened for HR"
    row = InviteReply(
        message_id=message.message_id,
        rotation_id=rotation_id,
        attendee=reply.attendee,
        partstat=reply.partstat,
        sequence=reply.sequence,
        comment=reply.comment,
        replied_at=reply.replied_at or received_at,
        request_id=request_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=ACTOR,
        action="rotation.rsvp",
        subject_type="rotation",
        subject_id=rotation_id,
        reason=reply.comment,
        partstat=reply.partstat,
        attendee=reply.attendee,
        sequence=reply.sequence,
        message_id=message.message_id,
        request_id=request_id,
    )
    return Applied(rotation_id, reply.attendee, reply.partstat, request_id, note)


# --- what HR sees ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    partstat: str
    replied_at: datetime
    comment: str | None

    def label(self) -> str:
        return f"{self.partstat.lower()} {clock.aware(self.replied_at):%Y-%m-%d %H:%M} UTC"


def answers(session: Session, rotation_ids: list[int]) -> dict[int, Answer]:
    """The newest RSVP answer to the current invite (its SEQUENCE) of each rotation that has one: a
    rotation moved since its rotator answered is waiting for a new answer."""
    if not rotation_ids:
        return {}
    rows = session.exec(
        select(InviteReply)
        .join(Rotation, col(Rotation.id) == col(InviteReply.rotation_id))
        .where(col(InviteReply.rotation_id).in_(rotation_ids), col(InviteReply.sequence) == col(Rotation.sequence))
        .order_by(col(InviteReply.replied_at), col(InviteReply.id))
    ).all()
    out: dict[int, Answer] = {}
    for row in rows:  # ascending: the last one of each rotation wins
        out[row.rotation_id] = Answer(row.partstat, clock.aware(row.replied_at) or row.replied_at, row.comment)
    return out


# --- one run over the mailbox ------------------------------------------------------------------------------


@dataclass
class MailboxRun:
    """What one read of the mailbox did: counts and one line per mail."""

    read: int = 0
    accepted: int = 0
    declined: int = 0
    tentative: int = 0
    requests_opened: int = 0
    duplicate: int = 0
    stale: int = 0
    skipped: int = 0
    lines: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            k: getattr(self, k)
            for k in ("read", "accepted", "declined", "tentative", "requests_opened", "duplicate", "stale", "skipped")
        }

    def summary(self) -> str:
        c = self.counts()
        return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in c.items())


def _recorded(message_id: str) -> bool:
    from models import session_scope

    with session_scope() as session:
        found = session.exec(select(InviteReply.id).where(col(InviteReply.message_id) == message_id)).first()
    return found is not None


def process_mailbox(mailbox: Mailbox, policy_: Policy, *, sender: str, today: date) -> MailboxRun:
    """Read every unhandled mail of ``mailbox``: each one applied in its own transaction (a Skip or an error
    rolls back everything of that mail), then marked handled on the server. A mail marked handled was
    committed first; a mail committed but not marked (the connection dropped) is recognised by its
    Message-ID next time and only marked. Two runs reading the same mail at once (a command beside the
    schedule) cannot both apply it: ``invite_reply.message_id`` is unique, so the later commit fails, writes
    nothing (its change request included) and counts the mail as a duplicate. :class:`frontline.mail.imap.MailboxError` when the server cannot
    be used."""
    from models import session_scope

    run = MailboxRun()
    with mailbox:
        uids = mailbox.unhandled()
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            raws = mailbox.fetch(chunk)
            for uid in chunk:
                raw = raws.get(uid)
                if raw is None:  # expunged by someone else meanwhile
                    continue
                run.read += 1
                message = read_message(raw)
                received = mail_date(raw) or clock.utcnow()
                try:
                    try:
                        with session_scope() as session:
                            done = apply_reply(
                                session, policy_, message, sender=sender, received_at=received, today=today
                            )
                    except IntegrityError:
                        if not _recorded(message.message_id):
                            raise
                        raise Skip("already recorded by a run at the same time", kind="duplicate") from None
                except Skip as skip:
                    line = f"{message.message_id}: {skip.reason}"
                    setattr(run, skip.kind, getattr(run, skip.kind) + 1)
                    (run.skips if skip.kind == "skipped" else run.lines).append(line)
                    mailbox.done(uid, skipped=skip.kind == "skipped")
                    continue
                setattr(run, done.partstat.lower(), getattr(run, done.partstat.lower()) + 1)
                run.requests_opened += done.request_id is not None
                run.lines.append(f"{message.message_id}: {done.line()}")
                mailbox.done(uid, skipped=False)
    return run
