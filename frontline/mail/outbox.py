"""Writing mail into the outbox table.

Every message carries an *idempotency key* that names what it is (``invite:<rotation>:<sequence>``,
``digest:<dept>:<week>``, ...). The key is unique in the table, so queuing the same message again,
from a re-run flow or a retried task, is a no-op. The ``Message-ID`` header is derived from the key,
so even a message delivered twice after a crash is recognisably the same message to the receiver.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from functools import lru_cache
from typing import Any

from sqlmodel import Session, col, select

from frontline.core.text import one_line
from frontline.mail.mime import message_bytes, shaped
from frontline.mail.policy import CONTENT_MANAGER, MAIL_POLICY, encode_text
from models import OutboundMessage, utcnow

_recorded: ContextVar[list[dict[str, str]] | None] = ContextVar("outbox_recorded", default=None)


@contextmanager
def recording() -> Iterator[list[dict[str, str]]]:
    """Collect what :func:`enqueue` queues inside the block: one ``{"kind", "to", "subject", "key"}`` per new
    message (a key already queued is not listed). A dry run records, then rolls its transaction back: the
    list says what would be sent to whom, and nothing stays in the outbox."""
    seen: list[dict[str, str]] = []
    token = _recorded.set(seen)
    try:
        yield seen
    finally:
        _recorded.reset(token)


# Headers that carry URLs or tokens mail clients read literally (RFC 2369 / RFC 8058): written as they are,
# never as RFC 2047 encoded words (which the default policy makes of a line it cannot fold, and which
# hide the unsubscribe button in mail clients).
LITERAL_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "list-id", "list-help", "list-post"})
MAX_LITERAL_LINE = 900  # RFC 5322 allows 998 characters a line
# Raw values set with ``set_raw`` are written unchanged (refold_source="none"); every other header is
# folded as with the default policy.
_POLICY = MAIL_POLICY.clone(refold_source="none")


def _sender() -> str:
    from frontline.core.settings import get_settings

    return get_settings().mail_from


def message_id_for(idempotency_key: str, sender: str | None = None) -> str:
    """Deterministic ``Message-ID`` for a key: ``<hash@sender-domain>``."""
    domain = _domain(sender or _sender())
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


@lru_cache(maxsize=64)
def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "frontline.invalid"


@lru_cache(maxsize=4096)
def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    """The addresses ``email.utils.getaddresses`` finds in these header values (parsed once per values)."""
    return tuple(addr for _name, addr in getaddresses(list(values)))


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

    ``List-Unsubscribe`` and the other :data:`LITERAL_HEADERS` go out as written (one line, unfolded, not
    RFC 2047 encoded), so mail clients find the URL and show their unsubscribe button.

    Every header value (subject, display names, extra headers) is made one line first
    (:func:`frontline.core.text.one_line`): a name with CR/LF or U+2028 from the roster becomes a space
    instead of a refused header or an injected one.
    """
    policy = _POLICY
    recipients = to if isinstance(to, list) else [to]
    leading = [("To", ", ".join(str(safe_address(r)) for r in recipients))]
    if cc:
        leading.append(("Cc", ", ".join(one_line(c) for c in cc)))
    leading.append(("Subject", one_line(subject)))

    extra: list[tuple[str, str, bool]] = []  # (name, value on one line, written as it is)
    for name, value in (headers or {}).items():
        value = one_line(value)
        literal = name.lower() in LITERAL_HEADERS and value.isascii() and len(name) + len(value) < MAX_LITERAL_LINE
        extra.append((name, value, literal))

    def build() -> EmailMessage:
        msg = EmailMessage(policy=policy)
        for name, value in leading:
            msg[name] = value
        for name, value, literal in extra:
            if literal:
                msg.set_raw(name, value)
            else:
                msg[name] = value
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        return msg

    if policy.content_manager is not CONTENT_MANAGER:
        return build()
    # the extra headers follow To/Cc/Subject: leading headers of the shape too (their names, and which
    # are written as they are, are part of the shape)
    heads = leading + [(name, value) for name, value, _literal in extra]
    raw = [False] * len(leading) + [literal for _name, _value, literal in extra]
    names = tuple((name, literal) for name, _value, literal in extra)
    text_cte, text_payload = encode_text(text, policy)
    if html is None:
        return shaped(policy, ("text", bool(cc), text_cte, names), heads, [text_payload], build, raw)
    html_cte, html_payload = encode_text(html, policy)
    shape = ("alternative", bool(cc), text_cte, html_cte, names)
    return shaped(policy, shape, heads, [text_payload, html_payload], build, raw)


@lru_cache(maxsize=4096)
def address(display_name: str, addr_spec: str) -> Address:
    """``Address(display_name=display_name, addr_spec=addr_spec)``, made once per pair (parsing the
    address is most of the cost, and an ``Address`` is immutable); raises the same errors."""
    return Address(display_name=display_name, addr_spec=addr_spec)


def safe_address(recipient: str | Address) -> str | Address:
    """A recipient with its display name on one line (see :func:`compose`)."""
    if isinstance(recipient, Address):
        return address(one_line(recipient.display_name), recipient.addr_spec)
    return one_line(recipient)


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
    already queued. The row is written in the caller's transaction: it is committed with it, or rolled
    back with it (see :func:`_insert_unless_queued`).
    """
    if session.exec(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == idempotency_key)).first():
        return None
    values = _row_values(message, kind, idempotency_key)
    row_id = _insert_unless_queued(session, values)
    if row_id is None:
        return None
    _note_queued(values)
    return session.get(OutboundMessage, row_id)


def _note_queued(values: dict[str, Any]) -> None:
    """Tell :func:`recording` about a message just queued."""
    seen = _recorded.get()
    if seen is not None:
        seen.append(
            {
                "kind": str(values["kind"]),
                "to": str(values["recipient"]),
                "subject": str(values["subject"]),
                "key": str(values["idempotency_key"]),
            }
        )


# A Message-ID of the form message_id_for writes with a plain domain: the standard library parses it into
# tokens whose text is the value itself, so a line that fits is "Message-ID: <value>" either way.
_PLAIN_MESSAGE_ID = re.compile(r"<[0-9a-f]{32}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>")


def plain_message_id(value: str) -> bool:
    """Whether ``value`` may be stored raw (``set_raw``): written as the parsed header is written
    (``tests/test_mail_policy.py`` compares them), and read back as the same text."""
    return _PLAIN_MESSAGE_ID.fullmatch(value) is not None and len(value) <= 78 - len("Message-ID: ")


def _row_values(message: EmailMessage, kind: str, idempotency_key: str) -> dict[str, Any]:
    """The outbox row of ``message``, after filling in ``From``, ``Date``, ``Message-ID`` and
    ``Auto-Submitted`` when absent (the same for :func:`enqueue` and :func:`enqueue_many`)."""
    if "From" not in message:
        message["From"] = _sender()
    if "Date" not in message:
        message["Date"] = format_datetime(utcnow())
    if "Message-ID" not in message:
        message_id = message_id_for(idempotency_key, str(message["From"]))
        if plain_message_id(message_id):
            message.set_raw("Message-ID", message_id)  # written as the parsed header would be, without parsing it
        else:
            message["Message-ID"] = message_id
    else:
        message_id = str(message["Message-ID"])
    if "Auto-Submitted" not in message:
        message["Auto-Submitted"] = "auto-generated"
    recipients = _addresses(tuple(str(v) for v in message.get_all("To", []) + message.get_all("Cc", [])))
    return dict(
        idempotency_key=idempotency_key,
        kind=kind,
        recipient=", ".join(recipients),
        subject=str(message.get("Subject", ""))[:500],
        message_id=message_id,
        mime=_as_bytes(message),
    )


_as_bytes = message_bytes  # message.as_bytes(), written directly (frontline.mail.mime); tests swap in the generator


BULK_CHUNK = 500  # keys per existence query and rows per INSERT (well under both databases' parameter limits)


def queued_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` are in the outbox already (one query per 500 keys): a caller that would
    render many messages can skip those :func:`enqueue_many` would skip anyway."""
    found: set[str] = set()
    for i in range(0, len(keys), BULK_CHUNK):
        chunk = list(keys[i : i + BULK_CHUNK])
        found |= set(
            session.exec(
                select(OutboundMessage.idempotency_key).where(col(OutboundMessage.idempotency_key).in_(chunk))
            ).all()
        )
    return found


def enqueue_many(session: Session, items: Sequence[tuple[EmailMessage, str, str]]) -> list[str]:
    """:func:`enqueue` for many ``(message, kind, idempotency_key)`` at once, in order: one existence
    query and one multi-row ``INSERT ... ON CONFLICT DO NOTHING`` per 500 messages instead of two
    statements per message. A key already queued, or seen earlier in ``items``, is skipped (its
    message untouched), exactly as calling :func:`enqueue` for each in turn would. The rows are
    written in the caller's transaction. Returns the keys queued now."""
    queued: list[str] = []
    seen: set[str] = set()
    for i in range(0, len(items), BULK_CHUNK):
        chunk = items[i : i + BULK_CHUNK]
        seen |= queued_keys(session, [key for _m, _k, key in chunk])
        rows = []
        for message, kind, key in chunk:
            if key in seen:
                continue
            seen.add(key)
            rows.append(_row_values(message, kind, key))
        written = set(_insert_many_unless_queued(session, rows))
        for values in rows:
            if values["idempotency_key"] in written:
                queued.append(str(values["idempotency_key"]))
                _note_queued(values)
    return queued


def _insert_unless_queued(session: Session, values: dict[str, Any]) -> int | None:
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING RETURNING id``: the new row's id, or None when
    a message with that key exists (also one a concurrent transaction committed meanwhile).

    A plain statement in the caller's transaction, no savepoint: the row lives and dies with the caller's
    work on both databases (a savepoint on SQLite, before anything else was written, used to commit on
    its own, so an invite survived the rollback of the dates it announced)."""
    statement = _insert_ignoring_duplicates(session, [values]).returning(col(OutboundMessage.id))
    return session.execute(statement).scalar_one_or_none()


def _insert_many_unless_queued(session: Session, rows: list[dict[str, Any]]) -> list[str]:
    """The multi-row form of :func:`_insert_unless_queued`: the keys of the rows written."""
    if not rows:
        return []
    # One statement executed for many parameter sets: SQLAlchemy sends them as multi-row INSERTs
    # ("insertmanyvalues", RETURNING included) and compiles the statement once per process, instead of
    # compiling a statement with every row's values for every batch.
    statement = _insert_ignoring_duplicates(session).returning(col(OutboundMessage.idempotency_key))
    written = set(session.execute(statement, _with_defaults(rows)).scalars().all())
    return [row["idempotency_key"] for row in rows if row["idempotency_key"] in written]


def _with_defaults(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the model's defaults (state, times): ``OutboundMessage(**values).model_dump(exclude=
    {"id"})`` without building a model object per row (a table model does not validate, so the values
    are the same; each default factory is called for each row, as the model would)."""
    fields = [(name, info) for name, info in OutboundMessage.model_fields.items() if name != "id"]
    return [
        {name: values[name] if name in values else info.get_default(call_default_factory=True) for name, info in fields}
        for values in rows
    ]


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]] | None = None) -> Any:
    """``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING``, of ``rows`` with the model's defaults when
    given (else the statement to execute with parameter sets)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(OutboundMessage)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(OutboundMessage)
    else:  # pragma: no cover - Frontline runs on SQLite and PostgreSQL only
        raise RuntimeError(f"unsupported database {dialect!r}")
    if rows is not None:
        statement = statement.values(_with_defaults(rows))
    return statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
