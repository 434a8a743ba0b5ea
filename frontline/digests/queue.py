"""Sending digests: one message per recipient (``Department.digest_recipients``, else the head, less
those who unsubscribed), queued through the outbox with the key
``digest:<department id>:<week>:<recipient>`` so a re-run queues nothing new; or preview files instead.
Departments with nothing to report are skipped unless ``Department.digest_when_empty``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import audit
from frontline.core.errors import DigestError
from frontline.core.heap import no_cyclic_gc
from frontline.digests.content import DigestContent, build_digest
from frontline.digests.loading import ThemeKey, WeekData, compute_themes, load_week
from frontline.digests.render import render_digest
from frontline.digests.weeks import parse_week
from models import Department, DigestOptOut, OutboundMessage


@dataclass
class Outcome:
    department: str
    observations: int
    themes: int
    queued: int = 0
    skipped: str = ""  # why nothing was queued ("" when queued, or already queued)
    already: int = 0
    files: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        status = f"queued {self.queued}" if self.queued else (self.skipped or "already queued")
        return {
            "department": self.department,
            "observations": self.observations,
            "themes": self.themes,
            "status": status,
        }


def idempotency_key(department_id: int, week: str, recipient: str) -> str:
    return f"digest:{department_id}:{week}:{recipient.lower()}"


def recipients_for(department: Department, opt_outs: set[tuple[int, str]]) -> list[str]:
    wanted = department.digest_recipients or [department.head_email]
    out, seen = [], set()
    for r in wanted:
        m = r.strip()
        if m and m.lower() not in seen and (department.id, m.lower()) not in opt_outs:
            seen.add(m.lower())
            out.append(m)
    return out


def _digests_with_news(data: WeekData, outcomes: list[Outcome]) -> Iterator[tuple[Department, DigestContent, Outcome]]:
    """Build each department's digest, record an :class:`Outcome` for every department in ``outcomes``,
    and yield ``(department, content, outcome)`` for those with something to report (or opted in)."""
    for dept in data.departments.values():
        content = build_digest(data, dept)
        out = Outcome(dept.name, content.observations, content.theme_count)
        outcomes.append(out)
        if content.empty and not dept.digest_when_empty:
            out.skipped = "nothing to report"
            continue
        yield dept, content, out


def compose_digest(dept: Department, content: DigestContent, recipient: str) -> EmailMessage:
    """The digest message of ``dept`` for one recipient: rendered (HTML with CSS inlined, text twin) and
    composed with its unsubscribe and list headers."""
    from frontline.mail.outbox import compose

    rendered = render_digest(content, recipient)
    return compose(
        to=recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        headers={
            "List-Unsubscribe": f"<{rendered.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{dept.name} digest <digest-{dept.id}.frontline>",
        },
    )


def _queued_keys(session: Session, keys: list[str]) -> set[str]:
    """The keys of ``keys`` already in the outbox: one query per :data:`BULK_CHUNK` keys (not one per key)."""
    from frontline.mail.outbox import BULK_CHUNK

    found: set[str] = set()
    for i in range(0, len(keys), BULK_CHUNK):
        chunk = keys[i : i + BULK_CHUNK]
        found |= set(
            session.exec(select(OutboundMessage.idempotency_key).where(col(OutboundMessage.idempotency_key).in_(chunk)))
        )
    return found


def queue_digests(
    session: Session,
    week: str,
    *,
    department_ids: list[int] | None = None,
    themes: dict[int, ThemeKey] | None = None,
) -> list[Outcome]:
    """Render and queue the digests of ``department_ids`` (default: all) for ``week``.

    The statements do not grow with the departments: the week is loaded once, the keys already queued
    are found with one query (per 500 keys), only the other digests are rendered, and they are written
    with :func:`frontline.mail.outbox.enqueue_many` (one multi-row insert per 500 messages). The rows are
    byte for byte those :func:`frontline.mail.outbox.enqueue` would write one by one."""
    from frontline.mail.outbox import enqueue_many

    parse_week(week)
    with no_cyclic_gc():  # the week's rows stay alive while each digest makes thousands of objects
        if themes is None:
            themes = compute_themes(session, week, persist=True)
        data = load_week(session, week, department_ids=department_ids, themes=themes)
        outcomes: list[Outcome] = []
        wanted: list[tuple[Department, DigestContent, Outcome, list[tuple[str, str]]]] = []
        for dept, content, out in _digests_with_news(data, outcomes):
            recipients = recipients_for(dept, data.opt_outs)
            if not recipients:
                out.skipped = "no recipients (all unsubscribed)"
                continue
            wanted.append(
                (dept, content, out, [(r, idempotency_key(content.department_id, week, r)) for r in recipients])
            )
        already = _queued_keys(session, [key for *_x, pairs in wanted for _r, key in pairs])
        batch: list[tuple[EmailMessage, str, str]] = []
        owner: dict[str, Outcome] = {}
        for dept, content, out, pairs in wanted:
            for recipient, key in pairs:
                if key in already or key in owner:
                    out.already += 1
                    continue
                owner[key] = out
                batch.append((compose_digest(dept, content, recipient), "digest", key))
        written = set(enqueue_many(session, batch))
        for key, out in owner.items():
            if key in written:
                out.queued += 1
            else:
                out.already += 1  # queued meanwhile by a concurrent run
    return outcomes


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "department"


def preview_digests(
    session: Session, week: str, out_dir: Path, *, department_ids: list[int] | None = None
) -> list[Outcome]:
    """Write ``<department>-<week>.html`` and ``.txt`` files instead of queuing (nothing is stored)."""
    parse_week(week)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DigestError(f"cannot create the preview folder {out_dir}: {exc.strerror or exc}") from None
    with no_cyclic_gc():
        data = load_week(session, week, department_ids=department_ids)
        outcomes: list[Outcome] = []
        for dept, content, out in _digests_with_news(data, outcomes):
            recipient = (recipients_for(dept, set()) or [dept.head_email])[0]
            rendered = render_digest(content, recipient, preview=True)
            base = out_dir / f"{_slug(dept.name)}-{week}"
            try:
                base.with_suffix(".html").write_text(rendered.html, encoding="utf-8")
                base.with_suffix(".txt").write_text(
                    f"Subject: {rendered.subject}\n\n{rendered.text}\n", encoding="utf-8"
                )
            except OSError as exc:
                raise DigestError(f"cannot write the preview {base}.html/.txt: {exc.strerror or exc}") from None
            out.files = [str(base.with_suffix(".html")), str(base.with_suffix(".txt"))]
            out.skipped = "preview written"
    return outcomes


def digest_department(session: Session, department_id: int) -> Department | None:
    return session.get(Department, department_id)


def unsubscribe(session: Session, department_id: int, email: str) -> bool:
    """Record that ``email`` wants no more digests of the department, and audit it; ``False`` when it
    was already recorded (nothing is written)."""
    address = email.strip().lower()
    exists = session.exec(
        select(DigestOptOut.id).where(DigestOptOut.department_id == department_id, DigestOptOut.email == address)
    ).first()
    if exists:
        return False
    session.add(DigestOptOut(department_id=department_id, email=address))
    session.flush()
    audit.record(session, actor=email, action="digest.unsubscribe", subject_type="department", subject_id=department_id)
    return True
