"""What one department's digest says, built from a loaded week (pure: no database, no rendering).

Routing, for department *D*:

* **(a) From your people**: observations made by D's own employees on rotation, wherever addressed.
* **(b) Addressed to you**: observations any *other* rotator addressed to D
  (``Observation.target_department_id``). An observation a D member addressed to D counts once, in (a).

:func:`build_digest` runs in named phases, each testable alone: :func:`route` (own vs addressed, this
week and last), :func:`metrics_for`, :func:`contacts_summary` ("N of M contacts", 8 weeks),
:func:`top_issues` (every problem once, both routes together, its sources as tags, ranked, with quotes,
trends and shares), :func:`urgent_items`, :func:`acted_items`, :func:`rotating_people`.

**Ranking of the top issues**: ``customers affected x mean impact (1-5) x trend``, where trend is
``(this week + 1) / (last week + 1)`` kept within 0.5..3 (a growing issue rises, a fading one sinks,
one noisy week cannot dominate). Ties: more observations, then label.

**Shares** are shown only on a base large enough to mean something: a share of contacts when at least
``MIN_CONTACTS_FOR_SHARE`` (100) contacts were recorded that week, a share of observations when the
base has at least ``MIN_OBSERVATIONS_FOR_SHARE`` (20) observations; below that, counts only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from frontline.core import clock
from frontline.digests.loading import TREND_WEEKS, DigestObservation, ThemeKey, WeekData
from frontline.digests.themes import shorten
from frontline.digests.weeks import shift_week, week_monday
from frontline.observations.contacts import MIN_CONTACTS_FOR_SHARE, MIN_OBSERVATIONS_FOR_SHARE, share_text
from frontline.observations.vocabulary import ACK_STATE_SHORT_LABELS
from models import Department

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


TAG_URGENT, TAG_ADDRESSED, TAG_OWN = "urgent", "addressed to you", "from your people"


@dataclass
class WeekPoint:
    """One week of a trend: its ISO week, a count, and (for contacts) the base."""

    week: str
    value: int
    base: int = 0

    @property
    def share(self) -> str:
        return share_text(self.value, self.base)


@dataclass
class Issue:
    """One problem of the department's week, shown once whatever its sources (:data:`TAG_URGENT`,
    :data:`TAG_ADDRESSED`, :data:`TAG_OWN`)."""

    product_area: str
    category: str
    label: str
    count: int
    previous: int
    customers: int
    impact: float  # mean impact of its observations, 1..5
    score: float
    tags: list[str]
    quotes: list[Quote]
    reporters: int
    ack: dict[str, int]
    actionable: int  # observations addressed to the department (a response applies to these)
    trend8: list[WeekPoint]  # observations per week, oldest first, this week last
    customers_text: str  # "12 of 480 contacts (2.5%)", or "12 customers" on a small base
    share_text: str | None  # "35% of this week's 40 observations for you", only on a base of 20 or more
    area_text: str | None = None  # "9 of 150 export contacts (6.0%)", where contacts were split by area
    bar_pct: int = 0  # bar length, % of the largest issue's customers

    @property
    def trend(self) -> str:
        if self.previous == 0:
            return "new this week"
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
class ContactsSummary:
    """ "N of M contacts this week (x%)": customers who raised something for the department (N) out of
    all contacts rotators handled (M), this week and over the last 8 weeks."""

    customers: int
    contacts: int
    trend: list[WeekPoint]
    minimum: int = MIN_CONTACTS_FOR_SHARE

    @property
    def text(self) -> str:
        if self.contacts == 0:
            return f"{self.customers} customers this week (no contacts recorded: shares cannot be given)"
        if self.contacts < self.minimum:
            return (
                f"{self.customers} of {self.contacts} contacts this week (no percentage below {self.minimum} contacts)"
            )
        return share_text(self.customers, self.contacts, unit="contacts", suffix="this week")


@dataclass
class DigestContent:
    department_id: int
    department_name: str
    week: str
    first_day: date
    last_day: date
    metrics: list[Metric]
    urgent: list[UrgentItem]
    acted: list[ActedItem]
    rotating_now: list[RotatingPerson]
    rotating_next: list[RotatingPerson]
    observations: int
    theme_count: int
    issues: list[Issue] = field(default_factory=list)
    contacts: ContactsSummary | None = None

    @property
    def urgent_open(self) -> int:
        return sum(u.ack_state == "new" for u in self.urgent)

    @property
    def empty(self) -> bool:
        return self.observations == 0 and not self.urgent and not self.acted


def _day(value: datetime, tz: ZoneInfo) -> str:
    """ "Mon 01 Feb": the day of ``value`` in ``tz`` (the text depends on the date alone: made once per date)."""
    return _day_text(value.astimezone(tz).date())


@lru_cache(maxsize=1024)
def _day_text(day: date) -> str:
    return day.strftime("%a %d %b")


def person(week: WeekData, employee_id: int | None, name: str) -> str:
    """A person as the digest names them: told apart from namesakes ("Alex Kim (Sales)")."""
    return week.person_labels.get(employee_id, name) if employee_id is not None else name


def actor(week: WeekData, by: str | None) -> str:
    """Who acted, for people: a known address becomes the person's name; an internal actor (``demo: ...``,
    ``api:...``, ``cli:...``) is never shown."""
    if not by:
        return "someone in your department"
    name = week.actor_names.get(by.strip().lower())
    if name:
        return name
    return by if "@" in by and ":" not in by else "someone in your department"


def _quotes(members: list[DigestObservation], tz: ZoneInfo, week: WeekData) -> list[Quote]:
    """A theme's quotes: high impact first, then earliest; the same text (ignoring case and spacing) once."""
    ranked = sorted(members, key=lambda o: (-o.impact, o.created_at, o.id))
    quotes, seen = [], set()
    labels = week.person_labels
    for o in ranked:
        text = " ".join(o.text.split())
        folded = text.lower()
        if folded in seen:
            continue
        seen.add(folded)
        # person(week, o.rotator_id, o.rotator_name), inline: this runs for every observation of every digest
        who = labels.get(o.rotator_id, o.rotator_name) if o.rotator_id is not None else o.rotator_name
        quotes.append(Quote(text, who, _day(o.created_at, tz), o.impact, o.customer_count))
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


def metrics_for(routed: Routed, urgent: int | None = None, urgent_before: int | None = None) -> list[Metric]:
    """Phase 2: the headline numbers, each with last week's. ``urgent``: the digest's urgent list (urgent
    items addressed to the department, this week's and older open ones), so the headline, the section,
    the text and the preview line give one number."""
    both, prev_both = routed.both, routed.prev_both
    if urgent is None:
        urgent = sum(o.urgent for o in both)
    if urgent_before is None:
        urgent_before = sum(o.urgent for o in prev_both)
    return [
        Metric("observations in your digest", len(both), len(prev_both)),
        Metric("addressed to you", len(routed.addressed), len(routed.prev_addressed)),
        Metric("from your people on rotation", len(routed.own), len(routed.prev_own)),
        Metric("customers affected", sum(o.customer_count for o in both), sum(o.customer_count for o in prev_both)),
        Metric("urgent for you", urgent, urgent_before),
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
            person(week, o.rotator_id, o.rotator_name),
            _day(o.created_at, tz),
            o.product_area,
            o.ack_state,
            actor(week, o.ack_by) if o.ack_state != "new" else None,
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
        ActedItem(label, state, len(items), ", ".join(sorted({actor(week, o.ack_by) for o in items})))
        for (label, state), items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]


def rotating_people(week: WeekData, department_id: int) -> tuple[list[RotatingPerson], list[RotatingPerson]]:
    """Phase 6: the department's people on rotation during the week, and those starting after it."""
    monday = week_monday(week.week)
    sunday = monday + timedelta(days=6)
    now_, next_ = [], []
    for r, e in week.by_department.rotations.get(department_id, []):
        who = RotatingPerson(person(week, e.id, e.name), r.start, r.end)
        if r.start <= sunday and r.end >= monday:
            now_.append(who)
        elif r.start > sunday:
            next_.append(who)
    return now_, next_


def _trend_factor(count: int, previous: int) -> float:
    return min(3.0, max(0.5, (count + 1) / (previous + 1)))


def _weekly_counts(
    week: WeekData, department_id: int, key: ThemeKey | None, routed: Routed, value: str
) -> list[WeekPoint]:
    """Per week of the last :data:`TREND_WEEKS` (oldest first): the department's observations (both routes)
    of the theme ``key`` (all when None), counted as observations (``value`` "count") or customers."""
    if key is None:
        return _trends(week, department_id, routed, value)[None]
    return _trends(week, department_id, routed, value, [key])[key]


def _trends(
    week: WeekData,
    department_id: int,
    routed: Routed,
    value: str,
    keys: list[ThemeKey] | None = None,
    recent_keys: tuple[list[ThemeKey], list[ThemeKey]] | None = None,
) -> dict[ThemeKey | None, list[WeekPoint]]:
    """:func:`_weekly_counts` of every theme in ``keys`` (and of all, under ``None``) from one pass over
    the department's observations: a digest's trends cost its observations, not observations x issues.
    ``recent_keys``: the theme keys of ``routed.prev_both`` and ``routed.both``, item for item, when the
    caller has them (else computed here, and only when ``keys`` asks for themes)."""
    d = department_id
    names = _trend_weeks(week.week)
    total = [0] * TREND_WEEKS
    by_label: dict[str, list[int]] = {}  # older weeks: by the label stored by its week's digest
    by_key: dict[ThemeKey, list[int]] = {}  # last week and this week: by the theme key
    customers = value != "count"
    for h in week.by_department.history.get(d, []):
        if h.rotator_department_id != d and h.target_department_id != d:
            continue
        n = h.customer_count if customers else 1
        total[h.week_index] += n
        if keys and h.theme is not None:  # (a theme may span areas and categories)
            by_label.setdefault(h.theme, [0] * TREND_WEEKS)[h.week_index] += n
    for index, items in ((TREND_WEEKS - 2, routed.prev_both), (TREND_WEEKS - 1, routed.both)):
        if not keys:
            total[index] += sum(o.customer_count for o in items) if customers else len(items)
            continue
        if recent_keys is not None:
            item_keys = recent_keys[index - TREND_WEEKS + 2]
        else:
            item_keys = [_key(week, o) for o in items]
        for o, k in zip(items, item_keys, strict=True):
            n = o.customer_count if customers else 1
            total[index] += n
            counts = by_key.get(k)
            if counts is None:
                counts = by_key[k] = [0] * TREND_WEEKS
            counts[index] += n
    out: dict[ThemeKey | None, list[WeekPoint]] = {None: [WeekPoint(w, v) for w, v in zip(names, total, strict=True)]}
    zeros = [0] * TREND_WEEKS
    older_weeks = TREND_WEEKS - 2
    for k in keys or []:
        older, recent = by_label.get(k[2], zeros), by_key.get(k, zeros)
        out[k] = [WeekPoint(w, older[i] if i < older_weeks else recent[i]) for i, w in enumerate(names)]
    return out


@lru_cache(maxsize=64)
def _trend_weeks(week: str) -> tuple[str, ...]:
    """The :data:`TREND_WEEKS` ISO weeks ending with ``week``, oldest first."""
    return tuple(shift_week(week, i - TREND_WEEKS + 1) for i in range(TREND_WEEKS))


def _key(week: WeekData, o: DigestObservation) -> ThemeKey:
    return week.themes.get(o.id) or (o.product_area, o.category, shorten(o.text))


def contacts_summary(routed: Routed, week: WeekData, department_id: int) -> ContactsSummary:
    """Customers who raised something for the department out of all contacts handled, this week and over
    the last 8 weeks (each week with its own base)."""
    trend = _weekly_counts(week, department_id, None, routed, "customers")
    contacts = week.weekly_contacts or [0] * TREND_WEEKS
    for point, base in zip(trend, contacts, strict=False):
        point.base = base
    return ContactsSummary(trend[-1].value, trend[-1].base, trend)


def top_issues(routed: Routed, week: WeekData, department_id: int, tz: ZoneInfo, contacts: int) -> list[Issue]:
    """Every problem of the department's week once (both routes together), its sources as tags, ranked by
    customers x impact x trend (see the module docstring), with the 8-week trend of each. Each observation's
    theme key is found once, and each issue's figures come from one pass over its observations."""
    d = department_id
    both, prev_both = routed.both, routed.prev_both
    keys = [_key(week, o) for o in both]
    prev_keys = [_key(week, o) for o in prev_both]
    groups: dict[ThemeKey, list[DigestObservation]] = {}
    for o, k in zip(both, keys, strict=True):
        members = groups.get(k)
        if members is None:
            groups[k] = [o]
        else:
            members.append(o)
    trends = _trends(week, d, routed, "count", list(groups), (prev_keys, keys))
    previous = Counter(prev_keys)
    base = len(both)
    area_contacts = week.area_contacts
    issues = []
    for k, members in groups.items():
        customers = impact_sum = actionable = 0
        urgent = addressed_here = own = False
        ack: dict[str, int] = {}
        reporters = set()
        for o in members:
            customers += o.customer_count
            impact_sum += o.impact
            if o.urgent:
                urgent = True
            from_here = o.rotator_department_id == d
            if from_here:
                own = True
            if o.target_department_id == d:
                actionable += 1
                ack[o.ack_state] = ack.get(o.ack_state, 0) + 1
                if not from_here:
                    addressed_here = True
            reporters.add(o.rotator_id)
        impact = impact_sum / len(members)
        tags = [tag for tag, on in ((TAG_URGENT, urgent), (TAG_ADDRESSED, addressed_here), (TAG_OWN, own)) if on]
        before = previous.get(k, 0)
        issues.append(
            Issue(
                product_area=k[0],
                category=k[1],
                label=k[2],
                count=len(members),
                previous=before,
                customers=customers,
                impact=impact,
                score=customers * impact * _trend_factor(len(members), before),
                tags=tags,
                quotes=_quotes(members, tz, week),
                reporters=len(reporters),
                ack=ack,
                actionable=actionable,
                trend8=trends[k],
                customers_text=(
                    share_text(customers, contacts, unit="contacts")
                    if contacts >= MIN_CONTACTS_FOR_SHARE
                    else f"{customers} customer{'s' if customers != 1 else ''}"
                ),
                share_text=(
                    f"{round(100 * len(members) / base)}% of this week's {base} observations for you"
                    if base >= MIN_OBSERVATIONS_FOR_SHARE
                    else None
                ),
                area_text=(
                    share_text(customers, area_contacts[k[0]], unit=f"{k[0]} contacts")
                    if area_contacts.get(k[0], 0) >= MIN_CONTACTS_FOR_SHARE
                    else None
                ),
            )
        )
    issues.sort(key=lambda i: (-i.score, -i.count, i.label))
    top = max((i.customers for i in issues), default=0) or 1
    for i in issues:
        i.bar_pct = max(2, round(100 * i.customers / top))
    return issues


def _department_id(department: Department) -> int:
    if department.id is None:
        raise ValueError(f"department {department.name!r} is not stored")
    return department.id


def build_digest(week: WeekData, department: Department) -> DigestContent:
    """The digest of ``department`` for the loaded ``week`` (the phases are listed in the module docstring)."""
    tz = clock.org_tz()
    d = _department_id(department)
    routed = route(week, d)
    rotating_now, rotating_next = rotating_people(week, d)
    monday = week_monday(week.week)
    urgent = urgent_items(week, d, tz)
    urgent_before = sum(o.urgent for o in week.by_department.get("previous_to", d))
    contacts = contacts_summary(routed, week, d)
    issues = top_issues(routed, week, d, tz, contacts.contacts)
    return DigestContent(
        department_id=d,
        department_name=department.name,
        week=week.week,
        first_day=monday,
        last_day=monday + timedelta(days=6),
        metrics=metrics_for(routed, len(urgent), urgent_before),
        urgent=urgent,
        acted=acted_items(week, d),
        rotating_now=rotating_now,
        rotating_next=rotating_next,
        observations=len(routed.both),
        theme_count=len(issues),
        issues=issues,
        contacts=contacts,
    )
