"""Helpdesk ticket events as they arrive (pure): the signature each product puts on its webhook, and the
ticket read out of the payload through the source's field paths (``[helpdesk.sources.<name>]``).

Signatures, as each product signs:

* **Zendesk** (webhooks, trigger or automation): ``X-Zendesk-Webhook-Signature`` =
  base64(HMAC-SHA256(secret, ``X-Zendesk-Webhook-Signature-Timestamp`` + raw body)); the timestamp must be
  within the policy's replay window of our clock.
* **Help Scout** (Webhooks app): ``X-HelpScout-Signature`` = base64(HMAC-SHA1(secret, raw body)); Help Scout
  signs no timestamp, so a replay is caught by the event key (the event name and ``userUpdatedAt``).
* **Freshdesk** (automation rule, *Trigger webhook*) signs nothing: the rule sends the shared secret, as the
  password of HTTP basic authentication (*Requires authentication*) or in a custom header
  ``X-Frontline-Secret``. Without a timestamp, a replay is caught by the event key.

Every comparison is constant-time (``hmac.compare_digest``); no secret and no payload text is put in an
error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

from frontline.core import clock
from frontline.core.policy import HelpdeskFields, HelpdeskSource

SECRET_HEADER = "x-frontline-secret"  # Freshdesk's custom header, where basic authentication is not used
MAX_FIELD_CHARS = 20000  # a subject or description longer than this is cut before redaction


class HelpdeskRefused(Exception):
    """A ticket event that cannot be taken: ``status`` the HTTP answer (400 malformed, 401 unsigned or stale,
    404 unknown source), ``field`` the mapped field at fault (400), the message says what and why."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


# ------------------------------------------------------------------------------------ signatures


def _b64_hmac(secret: str, message: bytes, digest: Any) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, digest).digest()).decode("ascii")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def parse_timestamp(value: str) -> datetime | None:
    """Zendesk's signature timestamp (ISO 8601, e.g. ``2026-12-03T14:05:11Z``; Unix seconds also read)."""
    value = value.strip()
    try:
        if re.fullmatch(r"\d{9,11}", value):
            return datetime.fromtimestamp(int(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def verify_signature(
    source: HelpdeskSource, headers: Mapping[str, str], body: bytes, now: datetime, window_seconds: int
) -> None:
    """Raise :class:`HelpdeskRefused` (401) unless ``body`` carries the source's valid signature (``headers``
    with lower-case names). Zendesk's signed timestamp must be within ``window_seconds`` of ``now``."""
    secret = source.secret.get_secret_value()
    if source.kind == "zendesk":
        signature = headers.get("x-zendesk-webhook-signature", "")
        stamp = headers.get("x-zendesk-webhook-signature-timestamp", "")
        if not signature or not stamp:
            raise HelpdeskRefused(
                401, "missing X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp header"
            )
        if not _same(signature, _b64_hmac(secret, stamp.encode("utf-8") + body, hashlib.sha256)):
            raise HelpdeskRefused(401, "bad signature: X-Zendesk-Webhook-Signature does not match the secret")
        signed_at = parse_timestamp(stamp)
        if signed_at is None:
            raise HelpdeskRefused(401, "X-Zendesk-Webhook-Signature-Timestamp is not a time")
        age = (now - signed_at).total_seconds()
        if abs(age) > window_seconds:
            raise HelpdeskRefused(
                401,
                f"stale signature: signed {int(abs(age))} s {'ago' if age > 0 else 'ahead'}, "
                f"more than the {window_seconds} s replay window (helpdesk.replay_window_seconds)",
            )
    elif source.kind == "helpscout":
        signature = headers.get("x-helpscout-signature", "")
        if not signature:
            raise HelpdeskRefused(401, "missing X-HelpScout-Signature header")
        if not _same(signature, _b64_hmac(secret, body, hashlib.sha1)):
            raise HelpdeskRefused(401, "bad signature: X-HelpScout-Signature does not match the secret")
    else:  # freshdesk: the shared secret itself, by basic authentication or a custom header
        if not _freshdesk_authenticated(source, headers, secret):
            raise HelpdeskRefused(
                401, "bad credentials: HTTP basic authentication or X-Frontline-Secret does not match the secret"
            )


def _freshdesk_authenticated(source: HelpdeskSource, headers: Mapping[str, str], secret: str) -> bool:
    given = headers.get(SECRET_HEADER)
    if given is not None:
        return _same(given, secret)
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = _same(user, source.basic_user)
    password_ok = _same(password, secret)
    return user_ok and password_ok


# ------------------------------------------------------------------------------------ payload


@dataclass(frozen=True)
class Ticket:
    """What one ticket event says, read through the source's field paths."""

    ticket_id: str
    event_key: str
    assignee_email: str | None
    assignee_id: str | None
    subject: str
    description: str
    tags: list[str] = field(default_factory=list)
    updated_at: datetime = field(default_factory=clock.utcnow)

    @property
    def day(self) -> date:
        """The organisation's day the ticket was handled."""
        return self.updated_at.astimezone(clock.org_tz()).date()


_MISSING = object()


def lookup(payload: Any, headers: Mapping[str, str], path: str) -> Any:
    """The value at ``path`` (dotted keys, list indexes, ``header:<Name>``); ``_MISSING`` when a key is absent."""
    if path.startswith("header:"):
        return headers.get(path.removeprefix("header:").strip().lower(), _MISSING)
    value = payload
    for part in path.split("."):
        if isinstance(value, dict):
            if part not in value:
                return _MISSING
            value = value[part]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", part):
            index = int(part)
            if not -len(value) <= index < len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def _scalar(value: Any, name: str, path: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HelpdeskRefused(
            400, f"field {name} ({path}) must be a text or a number, not {type(value).__name__}", name
        )
    return str(value).strip() or None


class _Text(HTMLParser):
    BREAKS = {"br", "p", "div", "li", "tr", "blockquote", "h1", "h2", "h3", "h4"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(value: str, is_html: bool = False) -> str:
    """A ticket's text as plain text: HTML (``is_html``: Freshdesk's and Help Scout's bodies) reduced to its
    words (Zendesk's placeholders are plain text: a ``<`` there is the customer's), control characters
    (NUL ...) and lone surrogates replaced, runs of blank lines collapsed."""
    if is_html:
        parser = _Text()
        parser.feed(value)
        parser.close()
        value = "".join(parser.parts)
    value = value.encode("utf-8", "replace").decode("utf-8")
    value = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ", value.replace("\r\n", "\n"))
    value = re.sub(r"[ \t\u00a0]+", " ", value)
    value = re.sub(r"\n\s*\n\s*", "\n\n", value)
    return value.strip()[:MAX_FIELD_CHARS]


def _tags(value: Any, path: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [t for t in re.split(r"[,\s]+", value) if t]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):  # Help Scout: {"id": 1, "tag": "billing", "color": "#..."}
                item = item.get("tag") or item.get("name")
            if isinstance(item, str) and item.strip():
                out.append(item.strip())
        return out
    raise HelpdeskRefused(400, f"field tags ({path}) must be a list of tags or a text", "tags")


def _time(value: Any, path: str) -> datetime:
    parsed = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            parsed = datetime.fromtimestamp(value, UTC)
        except (ValueError, OverflowError, OSError):
            parsed = None
    elif isinstance(value, str):
        parsed = parse_timestamp(value)
        if parsed is None:  # Freshdesk's "Tue, 03 Dec 2026 14:05:11 +0000"-style dates
            from email.utils import parsedate_to_datetime

            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                parsed = None
    if parsed is None:
        raise HelpdeskRefused(400, f"field updated_at ({path}) is not a time (ISO 8601 or Unix seconds)", "updated_at")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of the body; :class:`HelpdeskRefused` (400) for anything else."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise HelpdeskRefused(400, "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise HelpdeskRefused(400, f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(payload, dict):
        raise HelpdeskRefused(400, f"the body must be a JSON object, not {type(payload).__name__}")
    return payload


def read_ticket(mapping: HelpdeskFields, headers: Mapping[str, str], body: bytes, is_html: bool = False) -> Ticket:
    """The ticket of one event (``headers`` with lower-case names; ``is_html``: the description is HTML). Raises :class:`HelpdeskRefused` (400)
    naming the field and its path when the body is not a JSON object, a mapped key is absent or a value
    cannot be read. An empty assignee is not an error (an unassigned ticket is ignored later)."""
    payload = decode(body)

    def get(name: str, path: str) -> Any:
        value = lookup(payload, headers, path)
        if value is _MISSING:
            raise HelpdeskRefused(400, f"field {name}: {path} is missing from the payload", name)
        return value

    ticket_id = _scalar(get("ticket_id", mapping.ticket_id), "ticket_id", mapping.ticket_id)
    if ticket_id is None:
        raise HelpdeskRefused(400, f"field ticket_id: {mapping.ticket_id} is empty", "ticket_id")
    key_parts = []
    for path in mapping.event_id:
        part = _scalar(get("event_id", path), "event_id", path)
        if part is None:
            raise HelpdeskRefused(400, f"field event_id: {path} is empty", "event_id")
        key_parts.append(part)
    email = (
        _scalar(get("assignee_email", mapping.assignee_email), "assignee_email", mapping.assignee_email)
        if (mapping.assignee_email)
        else None
    )
    agent = (
        _scalar(get("assignee_id", mapping.assignee_id), "assignee_id", mapping.assignee_id)
        if (mapping.assignee_id)
        else None
    )
    subject = _scalar(get("subject", mapping.subject), "subject", mapping.subject) or ""
    description = ""
    if mapping.description:
        description = _scalar(get("description", mapping.description), "description", mapping.description) or ""
    tags = _tags(get("tags", mapping.tags), mapping.tags) if mapping.tags else []
    return Ticket(
        ticket_id=ticket_id[:100],
        event_key=":".join(key_parts)[:300],
        assignee_email=email.lower() if email else None,
        assignee_id=agent,
        subject=plain_text(subject),
        description=plain_text(description, is_html),
        tags=tags,
        updated_at=_time(get("updated_at", mapping.updated_at), mapping.updated_at),
    )


HTML_BODIES = ("freshdesk", "helpscout")  # the products whose ticket descriptions are HTML


def not_a_ticket_event(kind: str, headers: Mapping[str, str]) -> str | None:
    """Why a signed event carries no ticket to take (Help Scout's ``convo.deleted``, ``customer.*``, ``tag.*``,
    ``satisfaction.ratings``, ...: the webhook may be subscribed to more than conversations), else None."""
    if kind != "helpscout":
        return None
    event = headers.get("x-helpscout-event", "")
    if not event.startswith("convo.") or event == "convo.deleted":
        return f"Help Scout event {event[:60]!r} carries no conversation"
    return None  # the products whose ticket descriptions are HTML


def product_area(source: HelpdeskSource, tags: list[str]) -> str | None:
    """The draft's product area: the first tag the source maps to one (case-insensitive), else its default."""
    by_lower = {k.lower(): v for k, v in source.tag_areas.items()}
    for tag in tags:
        if tag.lower() in by_lower:
            return by_lower[tag.lower()]
    return source.default_area
