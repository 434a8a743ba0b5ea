"""Weekly department digests: what customers told each department, how big it is, whether it grows.

Period: one ISO week (``2027-W05``) in the organisation time zone (``get_settings().tz``), Monday 00:00 to
the next Monday 00:00 local time. The scheduled run on Monday covers the week that just ended.

Routing, for department *D*:

* **(a) From your people**: observations made by D's own employees on rotation, wherever addressed.
* **(b) Addressed to you**: observations any *other* rotator addressed to D
  (``Observation.target_department_id``). An observation a D member addressed to D appears once, in (a),
  marked as addressed to D.

Themes (:mod:`frontline.digests.themes`) are computed once per run over the week *and* the previous week, so a
theme's count can be compared with last week's. Each current-week observation stores its theme label in
``Observation.theme``. A theme's action link (acknowledge / planned / fixed / won't fix) applies to that
week's observations of the theme that are addressed to D, through
:func:`frontline.observations.intake.set_ack_state`, which also tells the reporting rotators.

Delivery: one message per recipient (``Department.digest_recipients``, else the head), queued through
the outbox with the key ``digest:<department id>:<week>:<recipient>``; a re-run queues nothing new.
Departments with nothing to report are skipped unless ``Department.digest_when_empty``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, or_, update
from sqlmodel import Session, select

from frontline.core import clock
from frontline.core.clock import iso_week
from frontline.core.errors import DigestError
from frontline.digests.themes import ThemeInput, find_themes, shorten
from models import Department, DigestOptOut, Employee, Observation, Rotation

MAX_HTML_BYTES = 100_000
SIZE_BUDGET = 95_000  # re-render with tighter limits above this (headers and MIME add a little)
BAR_MAX_PX = 220
ACK_LABELS = {
    "new": "new",
    "acknowledged": "acknowledged",
    "planned": "planned",
    "fixed": "fixed",
    "wont_fix": "won't fix",
}
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


# ---------------------------------------------------------------------------------------------- weeks


def parse_week(week: str) -> tuple[int, int]:
    m = _WEEK.match(week.strip())
    if not m:
        raise DigestError(f"week {week!r}: expected ISO week like 2027-W05")
    year, num = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, num, 1)
    except ValueError:
        raise DigestError(f"week {week!r}: {year} has no ISO week {num}") from None
    return year, num


def week_monday(week: str) -> date:
    year, num = parse_week(week)
    return date.fromisocalendar(year, num, 1)


def shift_week(week: str, weeks: int) -> str:
    return iso_week(week_monday(week) + timedelta(weeks=weeks))


def week_window(week: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the week in UTC: local Monday 00:00 to the next local Monday 00:00."""
    monday = week_monday(week)
    start = datetime.combine(monday, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def last_completed_week(now: datetime | None = None, tz: ZoneInfo | None = None) -> str:
    """The ISO week before the one containing ``now`` (organisation time zone)."""
    tz = tz or clock.org_tz()
    now = now or datetime.now(UTC)
    return iso_week(now.astimezone(tz).date() - timedelta(days=7))


# ------------------------------------------------------------------------------------------ loading


@dataclass
class Obs:
    id: int
    created_at: datetime
    text: str
    impact: int
    customer_count: int
    product_area: str
    category: str
    target_department_id: int
    urgent: bool
    rotator_id: int | None
    rotator_name: str
    rotator_department_id: int | None
    ack_state: str
    ack_by: str | None
    ack_at: datetime | None
    theme: str | None
    current: bool  # in the digest week (else: the previous week, or an older open urgent item)


ThemeKey = tuple[str, str, str]  # (product_area, category, label)


@dataclass
class WeekData:
    week: str
    start: datetime
    end: datetime
    current: list[Obs]
    previous: list[Obs]
    open_urgent: list[Obs]  # urgent, still "new", created before the week
    acted: list[Obs]  # acknowledged/acted on during the week
    themes: dict[int, ThemeKey]
    departments: dict[int, Department]
    rotations: list[tuple[Rotation, Employee]]
    opt_outs: set[tuple[int, str]]


_OBS_COLUMNS = (
    Observation.id,
    Observation.created_at,
    Observation.text,
    Observation.impact,
    Observation.customer_count,
    Observation.product_area,
    Observation.category,
    Observation.target_department_id,
    Observation.urgent,
    Observation.rotator_id,
    Employee.name,
    Employee.department_id,
    Observation.ack_state,
    Observation.ack_by,
    Observation.ack_at,
    Observation.theme,
)


def _obs_rows(session: Session, where: list, department_ids: list[int] | None) -> list[tuple]:
    """Observation columns plus the rotator's name and department (plain rows: no ORM objects, fast)."""
    stmt = select(*_OBS_COLUMNS).join(Employee, Observation.rotator_id == Employee.id, isouter=True)
    for clause in where:
        stmt = stmt.where(clause)
    if department_ids is not None:
        stmt = stmt.where(
            or_(Observation.target_department_id.in_(department_ids), Employee.department_id.in_(department_ids))
        )
    return list(session.exec(stmt.order_by(Observation.id)).all())


def _to_obs(r: tuple, current: bool) -> Obs:
    return Obs(
        id=r[0],
        created_at=clock.aware(r[1]),
        text=r[2],
        impact=r[3],
        customer_count=r[4],
        product_area=r[5],
        category=r[6],
        target_department_id=r[7],
        urgent=bool(r[8]),
        rotator_id=r[9],
        rotator_name=r[10] if r[10] is not None else "(unknown rotator)",
        rotator_department_id=r[11],
        ack_state=r[12],
        ack_by=r[13],
        ack_at=clock.aware(r[14]),
        theme=r[15],
        current=current,
    )


def compute_themes(session: Session, week: str, *, persist: bool = True) -> dict[int, ThemeKey]:
    """Themes over the week and the previous week (all departments); stores each current-week
    observation's label in ``Observation.theme`` when ``persist``. Returns ``{observation id: key}``."""
    tz = clock.org_tz()
    start, end = week_window(week, tz)
    prev_start, _ = week_window(shift_week(week, -1), tz)
    rows = session.exec(
        select(
            Observation.id,
            Observation.text,
            Observation.product_area,
            Observation.category,
            Observation.created_at,
            Observation.theme,
        )
        .where(Observation.created_at >= prev_start, Observation.created_at < end)
        .order_by(Observation.id)
    ).all()
    themes = find_themes(ThemeInput(r[0], r[1], r[2], r[3]) for r in rows)
    mapping: dict[int, ThemeKey] = {}
    for t in themes:
        for mid in t.member_ids:
            mapping[mid] = (t.product_area, t.category, t.label)
    if persist:
        changed = [
            (r[0], mapping[r[0]][2]) for r in rows if clock.aware(r[4]) >= start and r[5] != mapping[r[0]][2][:200]
        ]
        if changed:
            table = Observation.__table__
            session.connection().execute(
                update(table).where(table.c.id == bindparam("oid")).values(theme=bindparam("label")),
                [{"oid": oid, "label": label[:200]} for oid, label in changed],
            )
    return mapping


def load_week(
    session: Session,
    week: str,
    *,
    department_ids: list[int] | None = None,
    themes: dict[int, ThemeKey] | None = None,
) -> WeekData:
    """Everything the digests of ``department_ids`` (default: all) need for ``week``, as plain data."""
    tz = clock.org_tz()
    start, end = week_window(week, tz)
    prev_start, _ = week_window(shift_week(week, -1), tz)
    if themes is None:
        themes = compute_themes(session, week, persist=False)
    window = _obs_rows(session, [Observation.created_at >= prev_start, Observation.created_at < end], department_ids)
    current, previous = [], []
    for r in window:
        is_current = clock.aware(r[1]) >= start
        (current if is_current else previous).append(_to_obs(r, is_current))
    open_urgent = [
        _to_obs(r, False)
        for r in _obs_rows(
            session,
            [Observation.urgent == True, Observation.ack_state == "new", Observation.created_at < start],  # noqa: E712
            department_ids,
        )
    ]
    acted = [
        _to_obs(r, False)
        for r in _obs_rows(session, [Observation.ack_at >= start, Observation.ack_at < end], department_ids)
    ]
    dept_stmt = select(Department).order_by(Department.id)
    if department_ids is not None:
        dept_stmt = dept_stmt.where(Department.id.in_(department_ids))
    departments = {d.id: d for d in session.exec(dept_stmt)}
    monday = week_monday(week)
    rot_stmt = (
        select(Rotation, Employee)
        .join(Employee, Rotation.employee_id == Employee.id)
        .where(
            Rotation.status != "cancelled", Rotation.end >= monday, Rotation.start <= monday + timedelta(days=7 + 28)
        )
    )
    if department_ids is not None:
        rot_stmt = rot_stmt.where(Employee.department_id.in_(department_ids))
    rotations = list(session.exec(rot_stmt.order_by(Rotation.start, Employee.name)).all())
    opt_stmt = select(DigestOptOut.department_id, DigestOptOut.email)
    if department_ids is not None:
        opt_stmt = opt_stmt.where(DigestOptOut.department_id.in_(department_ids))
    opt_outs = {(d, m.lower()) for d, m in session.exec(opt_stmt)}
    return WeekData(week, start, end, current, previous, open_urgent, acted, themes, departments, rotations, opt_outs)


# ------------------------------------------------------------------------------------------ content


@dataclass
class Metric:
    label: str
    value: int
    previous: int

    @property
    def change(self) -> str:
        diff = self.value - self.previous
        if self.previous == 0:
            return "new this week" if self.value else "none either week"
        if diff == 0:
            return "same as last week"
        pct = round(100 * diff / self.previous)
        return f"{'+' if diff > 0 else '−'}{abs(diff)} ({'+' if pct > 0 else '−'}{abs(pct)}%) vs last week"

    @property
    def direction(self) -> str:
        return "up" if self.value > self.previous else "down" if self.value < self.previous else "flat"


@dataclass
class Quote:
    text: str
    reporter: str
    day: str
    impact: int
    customers: int


@dataclass
class ThemeSummary:
    product_area: str
    category: str
    label: str
    count: int
    previous: int
    share: float  # of the section's observations this week, 0..1
    quotes: list[Quote]
    reporters: int
    customers: int
    ack: dict[str, int]  # state -> observations addressed to the department
    actionable: int  # observations of the theme addressed to the department (the action applies to these)
    bar_px: int = 0

    @property
    def percent(self) -> int:
        return round(100 * self.share)

    @property
    def trend(self) -> str:
        if self.previous == 0:
            return "new"
        diff = self.count - self.previous
        return "same as last week" if diff == 0 else f"{'+' if diff > 0 else '−'}{abs(diff)} vs last week"

    @property
    def ack_summary(self) -> str:
        if not self.actionable:
            return ""
        parts = [
            f"{n} {'awaiting your response' if s == 'new' else ACK_LABELS.get(s, s)}"
            for s, n in sorted(self.ack.items())
            if n
        ]
        return ", ".join(parts)


@dataclass
class Section:
    key: str  # "addressed" | "own"
    title: str
    blurb: str
    share_of: str  # "of this week's observations addressed to you"
    total: int
    previous: int
    rotators: int
    themes: list[ThemeSummary]


@dataclass
class UrgentItem:
    text: str
    reporter: str
    day: str
    product_area: str
    ack_state: str
    ack_by: str | None
    open_days: int


@dataclass
class ActedItem:
    label: str
    state: str
    count: int
    by: str


@dataclass
class RotatingPerson:
    name: str
    start: date
    end: date


@dataclass
class DigestContent:
    department_id: int
    department_name: str
    week: str
    first_day: date
    last_day: date
    metrics: list[Metric]
    sections: list[Section]
    urgent: list[UrgentItem]
    acted: list[ActedItem]
    rotating_now: list[RotatingPerson]
    rotating_next: list[RotatingPerson]
    observations: int
    theme_count: int

    @property
    def empty(self) -> bool:
        return self.observations == 0 and not self.urgent and not self.acted


def _day(value: datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%a %d %b")


def _themes_for(
    items: list[Obs], previous: list[Obs], week: WeekData, department_id: int, tz: ZoneInfo
) -> list[ThemeSummary]:
    def key(o: Obs) -> ThemeKey:
        return week.themes.get(o.id) or (o.product_area, o.category, shorten(o.text))

    groups: dict[ThemeKey, list[Obs]] = defaultdict(list)
    for o in items:
        groups[key(o)].append(o)
    prev_counts = Counter(key(o) for o in previous)
    total = len(items)
    out = []
    for k, members in groups.items():
        # quotes: most central first (theme member order) is unknown here; prefer high impact, then earliest
        ranked = sorted(members, key=lambda o: (-o.impact, o.created_at, o.id))
        quotes, seen = [], set()
        for o in ranked:
            text = " ".join(o.text.split())
            if text.lower() in seen:
                continue
            seen.add(text.lower())
            quotes.append(Quote(text, o.rotator_name, _day(o.created_at, tz), o.impact, o.customer_count))
        addressed = [o for o in members if o.target_department_id == department_id]
        out.append(
            ThemeSummary(
                product_area=k[0],
                category=k[1],
                label=k[2],
                count=len(members),
                previous=prev_counts.get(k, 0),
                share=len(members) / total if total else 0.0,
                quotes=quotes,
                reporters=len({o.rotator_id for o in members}),
                customers=sum(o.customer_count for o in members),
                ack=dict(Counter(o.ack_state for o in addressed)),
                actionable=len(addressed),
            )
        )
    out.sort(key=lambda t: (-t.count, -t.customers, t.label))
    top = out[0].count if out else 1
    for t in out:
        t.bar_px = max(4, round(BAR_MAX_PX * t.count / top))
    return out


def build_digest(week: WeekData, department: Department) -> DigestContent:
    tz = clock.org_tz()
    d = department.id
    own = [o for o in week.current if o.rotator_department_id == d]
    addressed = [o for o in week.current if o.target_department_id == d and o.rotator_department_id != d]
    prev_own = [o for o in week.previous if o.rotator_department_id == d]
    prev_addressed = [o for o in week.previous if o.target_department_id == d and o.rotator_department_id != d]
    both, prev_both = own + addressed, prev_own + prev_addressed
    metrics = [
        Metric("observations in your digest", len(both), len(prev_both)),
        Metric("addressed to you", len(addressed), len(prev_addressed)),
        Metric("from your people on rotation", len(own), len(prev_own)),
        Metric("customers affected", sum(o.customer_count for o in both), sum(o.customer_count for o in prev_both)),
        Metric("urgent", sum(o.urgent for o in both), sum(o.urgent for o in prev_both)),
    ]
    sections = [
        Section(
            "addressed",
            "Addressed to you",
            f"What rotators from other departments think {department.name} should hear.",
            "of this week's observations addressed to you",
            len(addressed),
            len(prev_addressed),
            len({o.rotator_id for o in addressed}),
            _themes_for(addressed, prev_addressed, week, d, tz),
        ),
        Section(
            "own",
            "From your people on rotation",
            f"What {department.name} colleagues heard from customers, wherever they addressed it.",
            "of this week's observations by your people",
            len(own),
            len(prev_own),
            len({o.rotator_id for o in own}),
            _themes_for(own, prev_own, week, d, tz),
        ),
    ]
    urgent_obs = [o for o in week.current if o.urgent and o.target_department_id == d]
    urgent_obs += [o for o in week.open_urgent if o.target_department_id == d]
    urgent_obs.sort(key=lambda o: (o.ack_state != "new", o.created_at, o.id))
    urgent = [
        UrgentItem(
            " ".join(o.text.split()),
            o.rotator_name,
            _day(o.created_at, tz),
            o.product_area,
            o.ack_state,
            o.ack_by,
            max(0, (week.end - o.created_at).days),
        )
        for o in urgent_obs
    ]
    acted_groups: dict[tuple[str, str], list[Obs]] = defaultdict(list)
    for o in week.acted:
        if o.target_department_id == d and o.ack_state != "new":
            acted_groups[(o.theme or shorten(o.text), o.ack_state)].append(o)
    acted = [
        ActedItem(label, state, len(items), ", ".join(sorted({o.ack_by for o in items if o.ack_by})) or "someone")
        for (label, state), items in sorted(acted_groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    monday = week_monday(week.week)
    sunday = monday + timedelta(days=6)
    now_, next_ = [], []
    for r, e in week.rotations:
        if e.department_id != d:
            continue
        person = RotatingPerson(e.name, r.start, r.end)
        if r.start <= sunday and r.end >= monday:
            now_.append(person)
        elif r.start > sunday:
            next_.append(person)
    return DigestContent(
        department_id=d,
        department_name=department.name,
        week=week.week,
        first_day=monday,
        last_day=sunday,
        metrics=metrics,
        sections=sections,
        urgent=urgent,
        acted=acted,
        rotating_now=now_,
        rotating_next=next_,
        observations=len(both),
        theme_count=sum(len(s.themes) for s in sections),
    )


# ---------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Limits:
    themes: int = 8
    quotes: int = 3
    quote_chars: int = 300
    urgent: int = 10
    acted: int = 10


LIMIT_STEPS = [Limits(), Limits(6, 2, 220, 8, 8), Limits(4, 1, 160, 5, 5), Limits(3, 1, 100, 3, 3)]


@dataclass
class RenderedDigest:
    subject: str
    html: str
    text: str
    unsubscribe_url: str
    limits: Limits


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _context(content: DigestContent, recipient: str, limits: Limits) -> dict[str, Any]:
    from frontline.core.links import THEME_ACTIONS, digest_unsubscribe_url, theme_action_url
    from frontline.core.settings import get_settings

    sections = []
    for s in content.sections:
        themes = []
        for t in s.themes[: limits.themes]:
            actions = []
            if t.actionable:  # one signed token per theme; the pre-selected action rides in the query string
                base = theme_action_url(
                    content.department_id, content.week, t.product_area, t.category, t.label, recipient
                )
                actions = [(ACK_LABELS[a], f"{base}?action={a}") for a in THEME_ACTIONS]
            themes.append(
                {
                    "t": t,
                    "quotes": [{"text": _trim(q.text, limits.quote_chars), "q": q} for q in t.quotes[: limits.quotes]],
                    "more_quotes": max(0, t.count - min(len(t.quotes), limits.quotes)),
                    "actions": actions,
                }
            )
        sections.append(
            {
                "s": s,
                "themes": themes,
                "more_themes": max(0, len(s.themes) - limits.themes),
                "more_themes_count": sum(t.count for t in s.themes[limits.themes :]),
            }
        )
    urgent = [{"u": u, "text": _trim(u.text, limits.quote_chars)} for u in content.urgent[: limits.urgent]]
    top = max((t for sec in content.sections for t in sec.themes[:1]), key=lambda t: t.count, default=None)
    preheader = f"{content.observations} observation{'s' if content.observations != 1 else ''}"
    if content.urgent:
        preheader += f", {len(content.urgent)} urgent"
    if top is not None:
        preheader += f"; top theme: {top.label} ({top.count})"
    return {
        "c": content,
        "sections": sections,
        "urgent": urgent,
        "more_urgent": max(0, len(content.urgent) - limits.urgent),
        "acted": content.acted[: limits.acted],
        "more_acted": max(0, len(content.acted) - limits.acted),
        "ack_labels": ACK_LABELS,
        "preheader": preheader,
        "bar_max": BAR_MAX_PX,
        "recipient": recipient,
        "unsubscribe_url": digest_unsubscribe_url(content.department_id, recipient),
        "app_url": get_settings().base_url,
        "console_url": f"{get_settings().base_url}/console/observations?department={content.department_id}",
    }


def subject_for(content: DigestContent) -> str:
    n = content.observations
    return (
        f"{content.department_name}: customer observations, week {content.week} "
        f"({content.first_day:%d %b}–{content.last_day:%d %b %Y}), {n} observation{'s' if n != 1 else ''}"
    )


_INLINER = None


def inline_css(html: str) -> str:
    global _INLINER
    if _INLINER is None:
        import css_inline

        _INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
    return _INLINER.inline(html)


def render_digest(content: DigestContent, recipient: str, *, inline: bool = True) -> RenderedDigest:
    """HTML (CSS inlined) and plain text for one recipient, tightened until the HTML fits the budget."""
    from frontline.core.templating import render_html, render_text

    for limits in LIMIT_STEPS:
        ctx = _context(content, recipient, limits)
        html = render_html("email/digest.html", **ctx)
        if inline:
            html = inline_css(html)
        if len(html.encode()) <= SIZE_BUDGET or limits is LIMIT_STEPS[-1]:
            break
    text = render_text("email/digest.txt", **ctx)
    return RenderedDigest(subject_for(content), html, text, ctx["unsubscribe_url"], limits)


def recipients_for(department: Department, opt_outs: set[tuple[int, str]]) -> list[str]:
    wanted = department.digest_recipients or [department.head_email]
    out, seen = [], set()
    for r in wanted:
        m = r.strip()
        if m and m.lower() not in seen and (department.id, m.lower()) not in opt_outs:
            seen.add(m.lower())
            out.append(m)
    return out


# ---------------------------------------------------------------------------------------- queueing


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


def _digests_with_news(data, outcomes: list[Outcome]):
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


def queue_digests(
    session: Session,
    week: str,
    *,
    department_ids: list[int] | None = None,
    themes: dict[int, ThemeKey] | None = None,
) -> list[Outcome]:
    """Render and queue the digests of ``department_ids`` (default: all) for ``week``."""
    from frontline.mail.outbox import compose, enqueue

    parse_week(week)
    if themes is None:
        themes = compute_themes(session, week, persist=True)
    data = load_week(session, week, department_ids=department_ids, themes=themes)
    outcomes: list[Outcome] = []
    for dept, content, out in _digests_with_news(data, outcomes):
        recipients = recipients_for(dept, data.opt_outs)
        if not recipients:
            out.skipped = "no recipients (all unsubscribed)"
            continue
        for recipient in recipients:
            key = idempotency_key(dept.id, week, recipient)
            from models import OutboundMessage

            if session.exec(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)).first():
                out.already += 1
                continue
            rendered = render_digest(content, recipient)
            message = compose(
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
            if enqueue(session, message, kind="digest", idempotency_key=key) is not None:
                out.queued += 1
            else:
                out.already += 1
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
    data = load_week(session, week, department_ids=department_ids)
    outcomes: list[Outcome] = []
    for dept, content, out in _digests_with_news(data, outcomes):
        recipient = (recipients_for(dept, set()) or [dept.head_email])[0]
        rendered = render_digest(content, recipient)
        base = out_dir / f"{_slug(dept.name)}-{week}"
        try:
            base.with_suffix(".html").write_text(rendered.html, encoding="utf-8")
            base.with_suffix(".txt").write_text(f"Subject: {rendered.subject}\n\n{rendered.text}\n", encoding="utf-8")
        except OSError as exc:
            raise DigestError(f"cannot write the preview {base}.html/.txt: {exc.strerror or exc}") from None
        out.files = [str(base.with_suffix(".html")), str(base.with_suffix(".txt"))]
        out.skipped = "preview written"
    return outcomes


def department_ids_named(session: Session, name: str | None) -> list[int] | None:
    """``None`` for all departments, else the id of the department called ``name`` (case-insensitive)."""
    if name is None:
        return None
    rows = session.exec(select(Department.id, Department.name)).all()
    match = [i for i, n in rows if n.lower() == name.strip().lower()]
    if not match:
        known = ", ".join(sorted(n for _i, n in rows)[:20])
        raise DigestError(f"no department named {name!r} (known: {known})")
    return match


# ---------------------------------------------------------------------------------- acting, opting out


def theme_observations(session: Session, payload: dict[str, Any]) -> list[Observation]:
    """The observations a theme action link applies to: the week's observations of that theme addressed
    to the link's department."""
    start, end = week_window(payload["w"], clock.org_tz())
    rows = session.exec(
        select(Observation)
        .where(
            Observation.target_department_id == payload["d"],
            Observation.theme == payload["t"][:200],
            Observation.created_at >= start,
            Observation.created_at < end,
        )
        .order_by(Observation.id)
    ).all()
    area, category = payload["a"].strip().lower(), payload["c"].strip().lower()
    return [o for o in rows if o.product_area.strip().lower() == area and o.category.strip().lower() == category]


def unsubscribe(session: Session, department_id: int, email: str) -> bool:
    """Record the opt-out; ``False`` when it was already recorded."""
    email = email.strip().lower()
    exists = session.exec(
        select(DigestOptOut.id).where(DigestOptOut.department_id == department_id, DigestOptOut.email == email)
    ).first()
    if exists:
        return False
    session.add(DigestOptOut(department_id=department_id, email=email))
    session.flush()
    return True
