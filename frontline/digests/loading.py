"""Loading a digest week: the observations of the week and the week before (with the rotator's name and
department), open urgent items, what was acted on, the departments, rotations and opt-outs, all as
plain data (:class:`WeekData`) for :func:`frontline.digests.content.build_digest`; and the week's
themes (:func:`compute_themes`), computed once per run over both weeks and stored on the observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from frontline.core import clock
from frontline.core.errors import DigestError
from frontline.core.heap import no_cyclic_gc
from frontline.digests.grouping import group_observations
from frontline.digests.themes import ThemeInput
from frontline.digests.weeks import shift_week, week_monday, week_window
from frontline.observations.contacts import contacts_by_area, weekly_contacts
from models import Department, DigestOptOut, Employee, Observation, Rotation

ThemeKey = tuple[str, str, str]  # (product_area, category, label)


@dataclass(slots=True)
class DigestObservation:
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


@dataclass
class WeekData:
    week: str
    start: datetime
    end: datetime
    current: list[DigestObservation]
    previous: list[DigestObservation]
    open_urgent: list[DigestObservation]  # urgent, still "new", created before the week
    acted: list[DigestObservation]  # acknowledged/acted on during the week
    themes: dict[int, ThemeKey]
    departments: dict[int, Department]
    rotations: list[tuple[Rotation, Employee]]
    opt_outs: set[tuple[int, str]]
    # issue 17: the 8-week view, the base of shares, and names people can tell apart
    weekly_contacts: list[int] = field(default_factory=list)  # contacts handled, oldest of TREND_WEEKS first
    history: list[HistoryObservation] = field(default_factory=list)  # the TREND_WEEKS - 2 weeks before
    person_labels: dict[int, str] = field(default_factory=dict)  # employee id -> name told apart from namesakes
    actor_names: dict[str, str] = field(default_factory=dict)  # e-mail (lower case) -> person's name
    area_contacts: dict[str, int] = field(default_factory=dict)  # this week's contacts by product area, if split

    @cached_property
    def by_department(self) -> DepartmentIndex:
        """The week's lists bucketed by department once, in their order: each digest then reads its own
        buckets instead of rescanning the whole week (linear in departments, not quadratic)."""
        index = DepartmentIndex()
        for name in ("current", "previous"):
            for o in getattr(self, name):
                index.bucket(f"{name}_from", o.rotator_department_id).append(o)
                index.bucket(f"{name}_to", o.target_department_id).append(o)
        for o in self.open_urgent:
            index.bucket("open_urgent_to", o.target_department_id).append(o)
        for o in self.acted:
            index.bucket("acted_to", o.target_department_id).append(o)
        for rotation, employee in self.rotations:
            index.rotations.setdefault(employee.department_id, []).append((rotation, employee))
        for h in self.history:
            index.history.setdefault(h.target_department_id, []).append(h)
            if h.rotator_department_id != h.target_department_id:
                index.history.setdefault(h.rotator_department_id, []).append(h)
        return index


TREND_WEEKS = 8


@dataclass
class HistoryObservation:
    """An observation of an older week of the 8-week trend (what the trend counts, nothing more)."""

    week_index: int  # 0 = the oldest of TREND_WEEKS
    target_department_id: int
    rotator_department_id: int | None
    customer_count: int
    product_area: str
    category: str
    theme: str | None


@dataclass
class DepartmentIndex:
    """``WeekData.by_department``: observation lists by (list name, department id), rotations by department."""

    lists: dict[tuple[str, int | None], list[DigestObservation]] = field(default_factory=dict)
    rotations: dict[int | None, list[tuple[Rotation, Employee]]] = field(default_factory=dict)
    # the older weeks of the trend by department (target or rotator's; once when both are the same)
    history: dict[int | None, list[HistoryObservation]] = field(default_factory=dict)

    def bucket(self, name: str, department_id: int | None) -> list[DigestObservation]:
        return self.lists.setdefault((name, department_id), [])

    def get(self, name: str, department_id: int) -> list[DigestObservation]:
        return self.lists.get((name, department_id), [])


# The two datetimes as the dialect's plain DATETIME: :func:`_utc` makes them aware UTC, as the column type
# would, without its per-value Python layer (two calls per value, ~0.3 s CPU on the 97k rows of the job).
_OBS_COLUMNS = (
    col(Observation.id),
    sa.type_coerce(col(Observation.created_at), sa.DateTime()),
    col(Observation.text),
    col(Observation.impact),
    col(Observation.customer_count),
    col(Observation.product_area),
    col(Observation.category),
    col(Observation.target_department_id),
    col(Observation.urgent),
    col(Observation.rotator_id),
    col(Employee.name),
    col(Employee.department_id),
    col(Observation.ack_state),
    col(Observation.ack_by),
    sa.type_coerce(col(Observation.ack_at), sa.DateTime()),
    col(Observation.theme),
)


def _rows(session: Session, statement: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
    """Plain rows of a Core statement on the session's connection (after a flush, as a query would)."""
    session.flush()
    return session.connection().execute(statement).all()


def _of_departments(department_ids: list[int]) -> ColumnElement[bool]:
    """Observations addressed to one of ``department_ids`` or written by one of their people. Both terms
    on the observation table's own indexed columns (target department, rotator), so the database looks
    the batch's rows up by index instead of testing every observation of the window for every batch of
    departments (which made the scheduled job quadratic in departments)."""
    people = sa.select(col(Employee.id)).where(col(Employee.department_id).in_(department_ids))
    return sa.or_(
        col(Observation.target_department_id).in_(department_ids),
        col(Observation.rotator_id).in_(people),
    )


def _obs_rows(
    session: Session, where: list[ColumnElement[bool]], department_ids: list[int] | None, *, rotators: bool = True
) -> Sequence[sa.Row[Any]]:
    """Observation columns plus the rotator's name and department (plain rows: no ORM objects, fast), by id.

    For a batch of departments, two queries rather than one with ``OR``: those addressed to the batch
    (on the (target department, created) index, so a week's range reads that week only), then, when
    ``rotators``, those its people addressed elsewhere (on the rotator index). ``rotators=False`` for
    the lists the digests read by target department only (open urgent items, what was acted on)."""
    stmt = sa.select(*_OBS_COLUMNS).join(Employee, col(Observation.rotator_id) == col(Employee.id), isouter=True)
    for clause in where:
        stmt = stmt.where(clause)
    if department_ids is None:
        return _rows(session, stmt.order_by(col(Observation.id)))
    target = col(Observation.target_department_id)
    rows = list(_rows(session, stmt.where(target.in_(department_ids)).order_by(col(Observation.id))))
    if rotators:
        people = sa.select(col(Employee.id)).where(col(Employee.department_id).in_(department_ids))
        rows += _rows(session, stmt.where(col(Observation.rotator_id).in_(people), target.not_in(department_ids)))
        rows.sort(key=_row_id)
    return rows


def _row_id(row: sa.Row[Any]) -> int:
    return int(row[0])


def _utc(value: datetime | str) -> datetime:
    """A stored datetime as aware UTC, as the column type gives it: naive (SQLite) is UTC; an aware one
    (PostgreSQL, in the session's time zone) is converted."""
    when = clock.aware(value)
    assert when is not None
    return when if when.tzinfo is UTC else when.astimezone(UTC)


def _to_obs(r: Sequence[Any], current: bool) -> DigestObservation:
    """A row of :data:`_OBS_COLUMNS` (in :class:`DigestObservation`'s field order) as the dataclass."""
    (oid, created_at, text, impact, customers, area, category, target, urgent, rotator_id, name, *rest) = r
    rotator_department_id, ack_state, ack_by, ack_at, theme = rest
    if created_at.__class__ is datetime and created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)  # SQLite: naive UTC (the common case, inline)
    elif created_at.__class__ is not datetime or created_at.tzinfo is not UTC:
        created_at = _utc(created_at)
    if ack_at is not None and (ack_at.__class__ is not datetime or ack_at.tzinfo is not UTC):
        ack_at = _utc(ack_at)
    return DigestObservation(
        oid,
        created_at,
        text,
        impact,
        customers,
        area,
        category,
        target,
        bool(urgent),
        rotator_id,
        name if name is not None else "(unknown rotator)",
        rotator_department_id,
        ack_state,
        ack_by,
        ack_at,
        theme,
        current,
    )


def compute_themes(session: Session, week: str, *, persist: bool = True) -> dict[int, ThemeKey]:
    """Themes over the week and the previous week (all departments); stores each current-week
    observation's label in ``Observation.theme`` when ``persist``. Returns ``{observation id: key}``."""
    tz = clock.org_tz()
    start, end = week_window(week, tz)
    prev_start, _ = week_window(shift_week(week, -1), tz)
    created = col(Observation.created_at)
    rows = _rows(
        session,
        sa.select(
            col(Observation.id),
            col(Observation.text),
            col(Observation.product_area),
            col(Observation.category),
            created,
            col(Observation.theme),
        )
        .where(created >= prev_start, created < end)
        .order_by(col(Observation.id)),
    )
    with no_cyclic_gc():
        themes = group_observations(session, [ThemeInput(r[0], r[1], r[2], r[3]) for r in rows])
    mapping: dict[int, ThemeKey] = {}
    for t in themes:
        for mid in t.member_ids:
            mapping[mid] = (t.product_area, t.category, t.label)
    if persist:
        changed = [
            (r[0], mapping[r[0]][2])
            for r in rows
            if (when := clock.aware(r[4])) is not None and when >= start and r[5] != mapping[r[0]][2][:200]
        ]
        if changed:
            session.connection().execute(
                sa.update(Observation)
                .where(col(Observation.id) == sa.bindparam("oid"))
                .values(theme=sa.bindparam("label")),
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
    created = col(Observation.created_at)
    current: list[DigestObservation] = []
    previous: list[DigestObservation] = []
    for r in _obs_rows(session, [created >= prev_start, created < end], department_ids):
        o = _to_obs(r, False)
        o.current = o.created_at >= start
        (current if o.current else previous).append(o)
    open_urgent = [
        _to_obs(r, False)
        for r in _obs_rows(
            session,
            [col(Observation.urgent) == True, col(Observation.ack_state) == "new", created < start],  # noqa: E712
            department_ids,
            rotators=False,
        )
    ]
    acked = col(Observation.ack_at)
    acted = [
        _to_obs(r, False) for r in _obs_rows(session, [acked >= start, acked < end], department_ids, rotators=False)
    ]
    return WeekData(
        week,
        start,
        end,
        current,
        previous,
        open_urgent,
        acted,
        themes,
        _departments(session, department_ids),
        _rotations(session, week, department_ids),
        _opt_outs(session, department_ids),
        weekly_contacts(session, [week_monday(shift_week(week, i - TREND_WEEKS + 1)) for i in range(TREND_WEEKS)]),
        _history(session, week, department_ids),
        _person_labels(session),
        _actor_names(session),
        contacts_by_area(session, week_monday(week)),
    )


def _history(session: Session, week: str, department_ids: list[int] | None) -> list[HistoryObservation]:
    """The observations of the TREND_WEEKS - 2 weeks before last week, with the theme stored by the digest
    run of their week (the 8-week trend of an issue counts those filed under the same theme)."""
    tz = clock.org_tz()
    starts = [week_window(shift_week(week, i - TREND_WEEKS + 1), tz)[0] for i in range(TREND_WEEKS - 1)]
    created = col(Observation.created_at)
    stmt = (
        sa.select(
            created,
            col(Observation.target_department_id),
            col(Employee.department_id),
            col(Observation.customer_count),
            col(Observation.product_area),
            col(Observation.category),
            col(Observation.theme),
        )
        .join(Employee, col(Observation.rotator_id) == col(Employee.id), isouter=True)
        .where(created >= starts[0], created < starts[-1])
    )
    if department_ids is not None:
        stmt = stmt.where(_of_departments(department_ids))
    out = []
    for r in _rows(session, stmt):
        when = clock.aware(r[0])
        index = max(i for i, start in enumerate(starts) if when is not None and when >= start)
        out.append(HistoryObservation(index, r[1], r[2], r[3], r[4], r[5], r[6]))
    return out


def _person_labels(session: Session) -> dict[int, str]:
    """Employees who share their name with someone else, told apart: "Alex Kim (Sales)", and with the HR id
    when two namesakes work in the same department. Everyone else is shown by name alone."""
    names = sa.select(col(Employee.name)).group_by(col(Employee.name)).having(sa.func.count() > 1)
    rows = _rows(
        session,
        sa.select(col(Employee.id), col(Employee.name), col(Employee.employee_id), col(Department.name))
        .join(Department, col(Employee.department_id) == col(Department.id), isouter=True)
        .where(col(Employee.name).in_(names)),
    )
    seen: dict[tuple[str, str | None], int] = {}
    for _id, name, _hr, dept in rows:
        seen[(name, dept)] = seen.get((name, dept), 0) + 1
    return {
        r[0]: f"{r[1]} ({r[3] or 'no department'}{', ' + r[2] if seen[(r[1], r[3])] > 1 else ''})"
        for r in rows
        if r[0] is not None
    }


def _actor_names(session: Session) -> dict[str, str]:
    """Who acknowledged, by e-mail: employees and department heads, so the digest names people."""
    names = {e.lower(): n for e, n in _rows(session, sa.select(col(Employee.email), col(Employee.name)))}
    for e, n in _rows(session, sa.select(col(Department.head_email), col(Department.head_name))):
        names.setdefault(e.lower(), n)
    return names


def _departments(session: Session, department_ids: list[int] | None) -> dict[int, Department]:
    """The departments asked for; all active ones by default (a deactivated department gets no digest)."""
    stmt = select(Department).order_by(col(Department.id))
    if department_ids is not None:
        stmt = stmt.where(col(Department.id).in_(department_ids))
    else:
        stmt = stmt.where(col(Department.active).is_(True))
    return {d.id: d for d in session.exec(stmt) if d.id is not None}


def _rotations(session: Session, week: str, department_ids: list[int] | None) -> list[tuple[Rotation, Employee]]:
    """Rotations of the week and the four weeks after it (who rotates now, who next)."""
    monday = week_monday(week)
    stmt = (
        select(Rotation, Employee)
        .join(Employee, col(Rotation.employee_id) == col(Employee.id))
        .where(
            Rotation.status != "cancelled", Rotation.end >= monday, Rotation.start <= monday + timedelta(days=7 + 28)
        )
    )
    if department_ids is not None:
        stmt = stmt.where(col(Employee.department_id).in_(department_ids))
    return list(session.exec(stmt.order_by(col(Rotation.start), col(Employee.name))).all())


def _opt_outs(session: Session, department_ids: list[int] | None) -> set[tuple[int, str]]:
    stmt = select(DigestOptOut.department_id, DigestOptOut.email)
    if department_ids is not None:
        stmt = stmt.where(col(DigestOptOut.department_id).in_(department_ids))
    return {(d, m.lower()) for d, m in session.exec(stmt)}


def all_department_ids(session: Session) -> list[int]:
    """Every active department (those a roster import deactivated get no digest)."""
    query = select(Department.id).where(col(Department.active).is_(True)).order_by(col(Department.id))
    return [i for i in session.exec(query).all() if i is not None]


def department_ids_named(session: Session, name: str | None) -> list[int] | None:
    """``None`` for all departments, else the id of the department called ``name`` (case-insensitive)."""
    if name is None:
        return None
    rows = session.exec(select(Department.id, Department.name, Department.active)).all()
    match = [(i, active) for i, n, active in rows if i is not None and n.lower() == name.strip().lower()]
    if not match:
        known = ", ".join(sorted(n for _i, n, active in rows if active)[:20])
        raise DigestError(f"no department named {name!r} (known: {known})")
    if not any(active for _i, active in match):
        raise DigestError(f"department {name!r} is no longer in the roster (deactivated): it gets no digest")
    return [i for i, active in match if active]
