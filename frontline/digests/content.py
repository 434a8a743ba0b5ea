"""What one department's digest says, built from a loaded week (pure: no database, no rendering).

Routing, for department *D*:

* **(a) From your people**: observations made by D's own employees on rotation, wherever addressed.
* **(b) Addressed to you**: observations any *other* rotator addressed to D
  (``Observation.target_department_id``). An observation a D member addressed to D appears once, in (a),
  marked as addressed to D.

:func:`build_digest` runs in named phases, each testable alone: :func:`route` (own vs addressed, this
week and last), :func:`metrics_for`, :func:`sections_for` (themes with quotes, trends and shares),
:func:`urgent_items`, :func:`acted_items`, :func:`rotating_people`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from frontline.core import clock
from frontline.digests.loading import DigestObservation, ThemeKey, WeekData
from frontline.digests.themes import shorten
from frontline.digests.weeks import week_monday
from frontline.observations.vocabulary import ACK_STATE_SHORT_LABELS
from models import Department

BAR_MAX_PX = 220
ACK_LABELS = ACK_STATE_SHORT_LABELS  # "new", "acknowledged", "planned", "fixed", "won't fix"


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


def summarise_themes(
    items: list[DigestObservation],
    previous: list[DigestObservation],
    week: WeekData,
    department_id: int,
    tz: ZoneInfo,
) -> list[ThemeSummary]:
    """One summary per theme of ``items`` (largest first), with last week's count of the same theme in
    ``previous``, quotes (highest impact first, each text once) and the department's response so far."""

    def key(o: DigestObservation) -> ThemeKey:
        return week.themes.get(o.id) or (o.product_area, o.category, shorten(o.text))

    groups: dict[ThemeKey, list[DigestObservation]] = defaultdict(list)
    for o in items:
        groups[key(o)].append(o)
    prev_counts = Counter(key(o) for o in previous)
    total = len(items)
    out = []
    for k, members in groups.items():
        addressed = [o for o in members if o.target_department_id == department_id]
        out.append(
            ThemeSummary(
                product_area=k[0],
                category=k[1],
                label=k[2],
                count=len(members),
                previous=prev_counts.get(k, 0),
                share=len(members) / total if total else 0.0,
                quotes=_quotes(members, tz),
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


def _quotes(members: list[DigestObservation], tz: ZoneInfo) -> list[Quote]:
    """A theme's quotes: high impact first, then earliest; the same text (ignoring case and spacing) once."""
    ranked = sorted(members, key=lambda o: (-o.impact, o.created_at, o.id))
    quotes, seen = [], set()
    for o in ranked:
        text = " ".join(o.text.split())
        if text.lower() in seen:
            continue
        seen.add(text.lower())
        quotes.append(Quote(text, o.rotator_name, _day(o.created_at, tz), o.impact, o.customer_count))
    return quotes


@dataclass
class Routed:
    """A department's observations by route: from its own people, or addressed to it by others."""

    own: list[DigestObservation]
    addressed: list[DigestObservation]
    prev_own: list[DigestObservation]
    prev_addressed: list[DigestObservation]

    @property
    def both(self) -> list[DigestObservation]:
        return self.own + self.addressed

    @property
    def prev_both(self) -> list[DigestObservation]:
        return self.prev_own + self.prev_addressed


def route(week: WeekData, department_id: int) -> Routed:
    """Phase 1: (a) from the department's people, (b) addressed to it by anyone else; this week and last."""
    d, index = department_id, week.by_department

    def addressed(name: str) -> list[DigestObservation]:
        return [o for o in index.get(f"{name}_to", d) if o.rotator_department_id != d]

    return Routed(
        list(index.get("current_from", d)),
        addressed("current"),
        list(index.get("previous_from", d)),
        addressed("previous"),
    )


def metrics_for(routed: Routed) -> list[Metric]:
    """Phase 2: the headline numbers, each with last week's."""
    both, prev_both = routed.both, routed.prev_both
    return [
        Metric("observations in your digest", len(both), len(prev_both)),
        Metric("addressed to you", len(routed.addressed), len(routed.prev_addressed)),
        Metric("from your people on rotation", len(routed.own), len(routed.prev_own)),
        Metric("customers affected", sum(o.customer_count for o in both), sum(o.customer_count for o in prev_both)),
        Metric("urgent", sum(o.urgent for o in both), sum(o.urgent for o in prev_both)),
    ]


def sections_for(routed: Routed, week: WeekData, department: Department, tz: ZoneInfo) -> list[Section]:
    """Phase 3: the two sections, "Addressed to you" then "From your people on rotation", with themes."""
    d = _department_id(department)
    parts = [
        (
            "addressed",
            "Addressed to you",
            f"What rotators from other departments think {department.name} should hear.",
            "of this week's observations addressed to you",
            routed.addressed,
            routed.prev_addressed,
        ),
        (
            "own",
            "From your people on rotation",
            f"What {department.name} colleagues heard from customers, wherever they addressed it.",
            "of this week's observations by your people",
            routed.own,
            routed.prev_own,
        ),
    ]
    return [
        Section(
            key,
            title,
            blurb,
            share_of,
            len(items),
            len(previous),
            len({o.rotator_id for o in items}),
            summarise_themes(items, previous, week, d, tz),
        )
        for key, title, blurb, share_of, items, previous in parts
    ]


def urgent_items(week: WeekData, department_id: int, tz: ZoneInfo) -> list[UrgentItem]:
    """Phase 4: urgent observations addressed to the department this week, and older ones still open;
    open ones first, then oldest first."""
    urgent_obs = [o for o in week.by_department.get("current_to", department_id) if o.urgent]
    urgent_obs += week.by_department.get("open_urgent_to", department_id)
    urgent_obs.sort(key=lambda o: (o.ack_state != "new", o.created_at, o.id))
    return [
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


def acted_items(week: WeekData, department_id: int) -> list[ActedItem]:
    """Phase 5: what the department did this week, by theme and state (largest first)."""
    groups: dict[tuple[str, str], list[DigestObservation]] = defaultdict(list)
    for o in week.by_department.get("acted_to", department_id):
        if o.ack_state != "new":
            groups[(o.theme or shorten(o.text), o.ack_state)].append(o)
    return [
        ActedItem(label, state, len(items), ", ".join(sorted({o.ack_by for o in items if o.ack_by})) or "someone")
        for (label, state), items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]


def rotating_people(week: WeekData, department_id: int) -> tuple[list[RotatingPerson], list[RotatingPerson]]:
    """Phase 6: the department's people on rotation during the week, and those starting after it."""
    monday = week_monday(week.week)
    sunday = monday + timedelta(days=6)
    now_, next_ = [], []
    for r, e in week.by_department.rotations.get(department_id, []):
        person = RotatingPerson(e.name, r.start, r.end)
        if r.start <= sunday and r.end >= monday:
            now_.append(person)
        elif r.start > sunday:
            next_.append(person)
    return now_, next_


def _department_id(department: Department) -> int:
    if department.id is None:
        raise ValueError(f"department {department.name!r} is not stored")
    return department.id


def build_digest(week: WeekData, department: Department) -> DigestContent:
    """The digest of ``department`` for the loaded ``week`` (the phases are listed in the module docstring)."""
    tz = clock.org_tz()
    d = _department_id(department)
    routed = route(week, d)
    sections = sections_for(routed, week, department, tz)
    rotating_now, rotating_next = rotating_people(week, d)
    monday = week_monday(week.week)
    return DigestContent(
        department_id=d,
        department_name=department.name,
        week=week.week,
        first_day=monday,
        last_day=monday + timedelta(days=6),
        metrics=metrics_for(routed),
        sections=sections,
        urgent=urgent_items(week, d, tz),
        acted=acted_items(week, d),
        rotating_now=rotating_now,
        rotating_next=rotating_next,
        observations=len(routed.both),
        theme_count=sum(len(s.themes) for s in sections),
    )
