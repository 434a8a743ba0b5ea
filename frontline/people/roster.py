"""Roster import: three CSV files (departments, employees, absences) into the database, all or nothing.

Two steps, one code path for the CLI, the flow and the web console:

* :func:`frontline.people.roster_csv.parse_roster` reads and validates every row of every file (no
  database). It collects *every* problem as ``file:row: column: message`` (row = the line number a user
  sees, header = line 1) and raises :class:`RosterError` if there is any.
* :func:`apply_roster` checks the parsed roster against the database (e-mail addresses still held by
  people outside the import), then upserts everything in the caller's transaction. Nothing is written
  when a problem is found.

Semantics (documented in the README, *Roster import*):

* departments are upserted by name; departments missing from the file are *deactivated*
  (``Department.active`` false, ``deactivated_on`` = today; never deleted, their observations stay): their
  heads lose the console and the department leaves every target list (observation form, digests, console
  filters); a department that reappears is active again;
* employees are upserted by ``employee_id``; an active employee missing from the file is marked as left
  (``active=False``, ``left_on=today``, never deleted) and their rotations starting today or later are cancelled; an
  employee who reappears is active again;
* **a partial file is refused**: an import that would mark more than ``policy.roster`` allows
  (``max(min_leavers_allowed, max_leaver_fraction x active staff)``, default max(5, 10%)) as left raises
  :class:`LeaversNotConfirmed`, naming the count, unless the caller confirms at least that many
  (``allow_leavers``; ``frontline roster import --allow-leavers N``, the console's confirmation);
* ``last_rotation`` never moves backwards (Frontline records rotations itself);
* with an absences file, the absences of every employee in the import are replaced by the file's rows;
  without one, absences are left alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlmodel import Session, col

from frontline.core import audit, clock
from frontline.core.errors import LeaversNotConfirmed, RosterError
from frontline.core.policy import Roster
from frontline.people.directory import department_names, employees_by_external_id
from frontline.people.roster_csv import (
    EMPLOYEE_COLUMNS,
    AbsenceRow,
    EmployeeRow,
    ParsedRoster,
    RosterSource,
    parse_roster,
)
from models import Absence, AuditEvent, Department, Employee, MentorPairing, Rotation, WeekPreference, utcnow
from models.db import planning_lock

__all__ = [
    "ImportResult",
    "RosterPreview",
    "apply_roster",
    "import_roster",
    "future_rotation_count",
    "last_import",
    "mark_left",
    "preview_roster",
]

BATCH = 2000  # rows per bulk INSERT/UPDATE
ID_BATCH = 1000  # ids per IN (...) list


@dataclass
class ImportResult:
    departments_created: int = 0
    departments_updated: int = 0
    departments_unchanged: int = 0
    departments_deactivated: int = 0
    employees_created: int = 0
    employees_updated: int = 0
    employees_unchanged: int = 0
    employees_left: int = 0
    rotations_cancelled: int = 0
    absences: int | None = None
    absences_added: int = 0
    absences_removed: int = 0
    preference_weeks_added: int = 0
    preference_weeks_removed: int = 0
    new_hire_ids: list[str] = field(default_factory=list)
    left_ids: list[str] = field(default_factory=list)
    deactivated_departments: list[str] = field(default_factory=list)

    @property
    def new_hires(self) -> int:
        """Created employees who are new hires: never rotated, hired within the policy's
        ``new_hire_within_weeks`` before the import day or later (a first import creates everyone, but only
        these are new)."""
        return len(self.new_hire_ids)

    def counts(self) -> dict[str, int]:
        """The numbers (no id lists), e.g. for an artifact table or the audit trail."""
        data = {k: v for k, v in asdict(self).items() if not isinstance(v, list)}
        data["absences"] = self.absences if self.absences is not None else 0
        data["new_hires"] = self.new_hires
        return data

    def summary(self) -> str:
        parts = [
            f"departments {self.departments_created} new / {self.departments_updated} updated"
            + (f" / {self.departments_deactivated} deactivated" if self.departments_deactivated else ""),
            f"employees {self.employees_created} new / {self.employees_updated} updated / "
            f"{self.employees_unchanged} unchanged / {self.employees_left} left",
            f"{self.new_hires} new hire(s)",
        ]
        if self.rotations_cancelled:
            parts.append(f"{self.rotations_cancelled} future rotation(s) cancelled")
        if self.absences is not None:
            parts.append(f"absences {self.absences} (+{self.absences_added} / -{self.absences_removed})")
        if self.preference_weeks_added or self.preference_weeks_removed:
            parts.append(
                f"preferred/unavailable weeks +{self.preference_weeks_added} / -{self.preference_weeks_removed}"
            )
        return "; ".join(parts)


@dataclass(frozen=True)
class RosterPreview:
    """What an import would do to the people and departments already in the database."""

    active: int  # active employees now
    leaving: list[str]  # employee_ids of active employees missing from the file
    rotations_cancelled: int  # their rotations starting today or later
    allowed: int  # leavers accepted without confirmation (policy.roster)
    departments_deactivated: list[str]  # active departments missing from the file

    @property
    def needs_confirmation(self) -> bool:
        return len(self.leaving) > self.allowed

    def summary(self) -> str:
        text = f"{len(self.leaving)} of {self.active} active employees would be marked as left"
        if self.rotations_cancelled:
            text += f" ({self.rotations_cancelled} future rotation(s) cancelled)"
        if self.departments_deactivated:
            text += f"; departments deactivated: {', '.join(self.departments_deactivated)}"
        return text


def import_roster(
    session: Session,
    departments_csv: RosterSource,
    employees_csv: RosterSource,
    absences_csv: RosterSource | None = None,
    actor: str = "cli",
    today: date | None = None,
    allow_leavers: int | None = None,
) -> ImportResult:
    """Parse and apply in one go (raises :class:`RosterError` before writing anything)."""
    parsed = parse_roster(departments_csv, employees_csv, absences_csv)
    return apply_roster(session, parsed, actor=actor, today=today, allow_leavers=allow_leavers)


def roster_guard() -> Roster:
    """``policy.roster``; its defaults when the policy file cannot be read (the guard never switches off)."""
    from frontline.core.errors import PolicyError
    from frontline.core.policy import load_policy

    try:
        return load_policy().roster
    except PolicyError:
        return Roster()


def new_hire_weeks() -> int:
    """``policy.new_hire_within_weeks``; its default when the policy file cannot be read."""
    from frontline.core.errors import PolicyError
    from frontline.core.policy import Policy, load_policy

    try:
        return load_policy().new_hire_within_weeks
    except PolicyError:
        return Policy.model_fields["new_hire_within_weeks"].default


def preview_roster(
    session: Session,
    parsed: ParsedRoster,
    today: date | None = None,
    *,
    allow_leavers: int | None = None,
    guard: Roster | None = None,
) -> RosterPreview:
    """Everything an import would be refused for that only the database can tell, and what it would do
    to the people there; writes nothing. Raises :class:`RosterError` (an e-mail address still held by
    someone outside the import) or :class:`LeaversNotConfirmed` (more leavers than allowed and than
    ``allow_leavers``)."""
    today = today or clock.today()
    _check_against_database(session, parsed)
    in_file = {e.employee_id for e in parsed.employees}
    active = [
        (pk, eid)
        for pk, eid in session.execute(
            select(col(Employee.id), col(Employee.employee_id)).where(col(Employee.active).is_(True))
        ).tuples()
    ]
    leaving = sorted(eid for _pk, eid in active if eid not in in_file)
    leaving_pks = [pk for pk, eid in active if eid not in in_file]
    names = {d.name.casefold() for d in parsed.departments}
    gone = sorted(
        name
        for name in session.execute(select(col(Department.name)).where(col(Department.active).is_(True))).scalars()
        if name.casefold() not in names
    )
    guard = guard or roster_guard()
    preview = RosterPreview(
        active=len(active),
        leaving=leaving,
        rotations_cancelled=len(_future_rotation_ids(session, leaving_pks, today)),
        allowed=guard.leavers_allowed(len(active)),
        departments_deactivated=gone,
    )
    if preview.needs_confirmation and len(leaving) > (allow_leavers or 0):
        raise _not_confirmed(parsed, preview, guard)
    return preview


def _not_confirmed(parsed: ParsedRoster, preview: RosterPreview, guard: Roster) -> LeaversNotConfirmed:
    n, file = len(preview.leaving), parsed.files.get("employees", "employees.csv")
    rotations = f" and cancel {preview.rotations_cancelled} future rotation(s)" if preview.rotations_cancelled else ""
    problem = (
        f"{file}: this import would mark {n} of {preview.active} active employees as left{rotations}; more than "
        f"{preview.allowed} (policy roster: {guard.max_leaver_fraction:.0%} of active staff, at least "
        f"{guard.min_leavers_allowed}) needs an explicit confirmation of the count. If {file} is not the full list "
        f"of everyone who works here, fix it; if {n} people really left, confirm {n} (nothing was written)"
    )
    return LeaversNotConfirmed(problem, n, preview.active, preview.allowed, preview.rotations_cancelled)


def apply_roster(
    session: Session,
    parsed: ParsedRoster,
    actor: str = "cli",
    today: date | None = None,
    *,
    allow_leavers: int | None = None,
    guard: Roster | None = None,
) -> ImportResult:
    """Write a parsed roster in the session's transaction (the caller commits). Raises :class:`RosterError`
    before writing anything if the database reveals a problem, :class:`LeaversNotConfirmed` when it would
    mark more people as left than ``policy.roster`` allows and ``allow_leavers`` confirms.

    Phases: check against the database -> departments -> employees -> leavers (and their future
    rotations) -> absences -> the audit event."""
    today = today or clock.today()
    # Before reading: leavers' future rotations are cancelled here, and a plan or pairing run reading
    # meanwhile would write them back (a leaver invited to a rotation). A dry run (preview) takes none.
    planning_lock(session, f"roster import by {actor}")
    preview_roster(session, parsed, today, allow_leavers=allow_leavers, guard=guard)
    result = ImportResult()
    now = utcnow()
    dept_ids = _upsert_departments(session, parsed, result, now, today)
    existing = _upsert_employees(session, parsed, dept_ids, result, now, today - timedelta(weeks=new_hire_weeks()))
    _mark_leavers(session, parsed, existing, result, today, now)
    if parsed.absences is not None:
        _replace_absences(session, parsed.employees, parsed.absences, result)
    _replace_preferences(session, parsed.employees, result)
    audit.record(
        session,
        actor=actor,
        action="roster.import",
        subject_type="roster",
        reason=f"roster import from {', '.join(parsed.files.values()) or 'uploaded files'}",
        **result.counts(),
        files=parsed.files,
        new_hire_ids=result.new_hire_ids[:200],
        left_ids=result.left_ids[:200],
        deactivated_departments=result.deactivated_departments[:200],
        allow_leavers=allow_leavers,
    )
    session.flush()
    return result


def _check_against_database(session: Session, parsed: ParsedRoster) -> None:
    """Problems only the database can reveal: an e-mail still held by someone outside this import."""
    in_file = {e.employee_id for e in parsed.employees}
    holders = {
        email: eid
        for email, eid in session.execute(select(col(Employee.email), col(Employee.employee_id)))
        if eid not in in_file
    }
    problems = [
        f"{parsed.files.get('employees', 'employees.csv')}:{e.line}: email: {e.email!r} belongs to employee "
        f"{holders[e.email]!r}, who is not in this import (a leaver keeps their address)"
        for e in parsed.employees
        if e.email in holders
    ]
    if problems:
        raise RosterError(problems)


def _upsert_departments(
    session: Session, parsed: ParsedRoster, result: ImportResult, now: datetime, today: date
) -> dict[str, int]:
    """Departments upserted by name (case-insensitive), active again if they were not; active departments
    missing from the file deactivated (history kept). Returns name -> id of the file's departments."""
    existing = {d.name.casefold(): d for d in session.execute(select(Department)).scalars()}
    for row in parsed.departments:
        dept = existing.get(row.name.casefold())
        values: dict[str, Any] = {
            "name": row.name,
            "head_name": row.head_name,
            "head_email": row.head_email,
            "max_away_fraction": row.max_away_fraction,
            "active": True,
            "deactivated_on": None,
        }
        if dept is None:
            dept = Department(
                name=row.name,
                head_name=row.head_name,
                head_email=row.head_email,
                max_away_fraction=row.max_away_fraction,
                created_at=now,
                updated_at=now,
            )
            session.add(dept)
            result.departments_created += 1
        elif any(getattr(dept, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(dept, k, v)
            dept.updated_at = now
            session.add(dept)
            result.departments_updated += 1
        else:
            result.departments_unchanged += 1
        existing[row.name.casefold()] = dept
    in_file = {row.name.casefold() for row in parsed.departments}
    for key, dept in sorted(existing.items()):
        if key not in in_file and dept.active:
            dept.active, dept.deactivated_on, dept.updated_at = False, today, now
            session.add(dept)
            result.deactivated_departments.append(dept.name)
    result.departments_deactivated = len(result.deactivated_departments)
    session.flush()
    ids: dict[str, int] = {}
    for row in parsed.departments:
        dept_id = existing[row.name.casefold()].id
        if dept_id is None:
            raise RuntimeError(f"department {row.name!r} has no id after the flush")
        ids[row.name] = dept_id
    return ids


# The employee fields a roster sets: one per employees.csv column but the key, in the same order.
_NOT_EMPLOYEE_FIELDS = {"employee_id", "preferred_weeks", "unavailable_weeks"}  # stored elsewhere
_EMPLOYEE_FIELDS = tuple(
    {"department": "department_id", "mentor": "is_mentor"}.get(c, c)
    for c in EMPLOYEE_COLUMNS
    if c not in _NOT_EMPLOYEE_FIELDS
)


def _employee_values(row: EmployeeRow, department_id: int) -> dict[str, Any]:
    """The employee fields of ``row`` (list fields copied)."""
    values: dict[str, Any] = {}
    for name in _EMPLOYEE_FIELDS:
        value = department_id if name == "department_id" else getattr(row, name)
        values[name] = list(value) if isinstance(value, list) else value
    return values


def _upsert_employees(
    session: Session,
    parsed: ParsedRoster,
    dept_ids: dict[str, int],
    result: ImportResult,
    now: datetime,
    new_hires_since: date,
) -> dict[str, Row[Any]]:
    """Employees upserted by ``employee_id`` (plain rows and bulk statements: fast for 100k people).
    Returns the rows that existed before, by ``employee_id``. A created employee never rotated and hired
    on or after ``new_hires_since`` is a new hire (``result.new_hire_ids``)."""
    columns = [col(getattr(Employee, k)) for k in ("id", "employee_id", "active", *_EMPLOYEE_FIELDS)]
    existing: dict[str, Row[Any]] = {r.employee_id: r for r in session.execute(select(*columns))}
    new_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    renamed: list[dict[str, Any]] = []
    for row in parsed.employees:
        values = _employee_values(row, dept_ids[row.department])
        old = existing.get(row.employee_id)
        if old is None:
            new_rows.append(
                {
                    **values,
                    "employee_id": row.employee_id,
                    "active": True,
                    "left_on": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if row.last_rotation is None and row.hire_date >= new_hires_since:
                result.new_hire_ids.append(row.employee_id)  # a real new hire, not a first import's veteran
            continue
        if old.last_rotation is not None and (row.last_rotation is None or row.last_rotation < old.last_rotation):
            values["last_rotation"] = old.last_rotation  # never move backwards
        changed = {k: v for k, v in values.items() if getattr(old, k) != v}
        if not old.active:
            changed.update(active=True, left_on=None)
        if not changed:
            result.employees_unchanged += 1
            continue
        if "email" in changed:  # park the address first so that swapped addresses never collide
            renamed.append({"id": old.id, "email": changed["email"]})
            changed["email"] = f"renaming-{old.id}@frontline.invalid"
        updates.append({"id": old.id, **changed, "updated_at": now})
    result.employees_updated = len(updates)
    for batch in (updates, renamed):
        for start in range(0, len(batch), BATCH):
            session.execute(update(Employee), batch[start : start + BATCH])
    for start in range(0, len(new_rows), BATCH):
        session.execute(insert(Employee), new_rows[start : start + BATCH])
    result.employees_created = len(new_rows)
    return existing


def _mark_leavers(
    session: Session,
    parsed: ParsedRoster,
    existing: dict[str, Row[Any]],
    result: ImportResult,
    today: date,
    now: datetime,
) -> None:
    """Active employees missing from the import have left (today); their future rotations are cancelled."""
    in_file = {e.employee_id for e in parsed.employees}
    leavers = [r for r in existing.values() if r.active and r.employee_id not in in_file]
    result.left_ids = [r.employee_id for r in leavers]
    result.employees_left = len(leavers)
    reason = f"employee left (missing from the roster import of {today.isoformat()})"
    result.rotations_cancelled = mark_left(session, [r.id for r in leavers], today, now, reason)


def mark_left(session: Session, employee_ids: list[int], today: date, now: datetime, reason: str) -> int:
    """Mark these employees (``Employee.id``) as left today and cancel their rotations starting today or later
    (with their mentor pairings), giving ``reason``. The one leaver path of the roster import and SCIM
    provisioning. Returns how many rotations were cancelled."""
    for start in range(0, len(employee_ids), ID_BATCH):
        session.execute(
            update(Employee)
            .where(col(Employee.id).in_(employee_ids[start : start + ID_BATCH]))
            .values(active=False, left_on=today, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return _cancel_future_rotations(session, employee_ids, today, now, reason) if employee_ids else 0


def future_rotation_count(session: Session, employee_ids: list[int], today: date) -> int:
    """How many rotations of these employees start today or later and are not cancelled."""
    return len(_future_rotation_ids(session, employee_ids, today))


def _future_rotation_ids(session: Session, employee_ids: list[int], today: date) -> list[int]:
    """Rotations of these employees starting today or later and not cancelled yet."""
    found: list[int] = []
    for start in range(0, len(employee_ids), ID_BATCH):
        found += [
            rid
            for (rid,) in session.execute(
                select(col(Rotation.id)).where(
                    col(Rotation.employee_id).in_(employee_ids[start : start + ID_BATCH]),
                    col(Rotation.start) >= today,
                    col(Rotation.status) != "cancelled",
                )
            )
        ]
    return found


def _cancel_future_rotations(session: Session, employee_ids: list[int], today: date, now: datetime, reason: str) -> int:
    rotation_ids = _future_rotation_ids(session, employee_ids, today)
    if not rotation_ids:
        return 0
    session.execute(
        update(Rotation)
        .where(col(Rotation.id).in_(rotation_ids))
        .values(status="cancelled", change_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(MentorPairing)
        .where(col(MentorPairing.rotation_id).in_(rotation_ids), col(MentorPairing.status) == "active")
        .values(status="cancelled", reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return len(rotation_ids)


def _replace_absences(
    session: Session, employees: list[EmployeeRow], absences: list[AbsenceRow], result: ImportResult
) -> None:
    """The absences.csv absences of every employee in the import become the file's rows (unchanged ones stay;
    absences read from calendar feeds are left alone)."""
    pks = session.execute(select(col(Employee.employee_id), col(Employee.id))).tuples()
    ids = {eid: pk for eid, pk in pks if pk is not None}
    wanted: dict[int, set[tuple[date, date, str]]] = {ids[e.employee_id]: set() for e in employees}
    for a in absences:
        wanted[ids[a.employee_id]].add((a.start, a.end, a.reason))
    current: dict[int, dict[tuple[date, date, str], int]] = {}
    for aid, emp_id, a_start, a_end, reason in session.execute(
        select(
            col(Absence.id), col(Absence.employee_id), col(Absence.start), col(Absence.end), col(Absence.reason)
        ).where(col(Absence.source) == "roster")  # time off read from calendars is the feeds' to replace
    ):
        if emp_id in wanted:
            current.setdefault(emp_id, {})[(a_start, a_end, reason)] = aid
    stale = [aid for emp_id, spans in current.items() for span, aid in spans.items() if span not in wanted[emp_id]]
    if stale:
        for start in range(0, len(stale), ID_BATCH):
            session.execute(
                delete(Absence)
                .where(col(Absence.id).in_(stale[start : start + ID_BATCH]))
                .execution_options(synchronize_session=False)
            )
        session.flush()
    fresh = [
        {"employee_id": emp_id, "start": s, "end": e, "reason": reason, "source": "roster"}
        for emp_id, spans in wanted.items()
        for (s, e, reason) in sorted(spans)
        if (s, e, reason) not in current.get(emp_id, {})
    ]
    for start in range(0, len(fresh), BATCH):
        session.execute(insert(Absence), fresh[start : start + BATCH])
    result.absences = len(absences)
    result.absences_added = len(fresh)
    result.absences_removed = len(stale)


def _replace_preferences(session: Session, employees: list[EmployeeRow], result: ImportResult) -> None:
    """Each employee's ``roster`` preferred / unavailable weeks become the file's, for the columns the file
    has (weeks stated in a change request stay). In bulk: one read, batched deletes and inserts."""
    from frontline.people.preferences import PREFERRED, UNAVAILABLE

    if not any(e.preferred_weeks is not None or e.unavailable_weeks is not None for e in employees):
        return
    pks = session.execute(select(col(Employee.employee_id), col(Employee.id))).tuples()
    ids = {eid: pk for eid, pk in pks if pk is not None}
    wanted: dict[tuple[int, str], set[date]] = {}
    for e in employees:
        for kind, weeks in ((PREFERRED, e.preferred_weeks), (UNAVAILABLE, e.unavailable_weeks)):
            if weeks is not None:
                wanted[(ids[e.employee_id], kind)] = set(weeks)
    have: dict[tuple[int, str], dict[date, int]] = {}
    for pid, emp_id, week, kind in session.execute(
        select(
            col(WeekPreference.id), col(WeekPreference.employee_id), col(WeekPreference.week), col(WeekPreference.kind)
        ).where(col(WeekPreference.source) == "roster")
    ):
        have.setdefault((emp_id, kind), {})[week] = pid
    stale = [pid for key, weeks in have.items() if key in wanted for w, pid in weeks.items() if w not in wanted[key]]
    for start in range(0, len(stale), ID_BATCH):
        session.execute(
            delete(WeekPreference)
            .where(col(WeekPreference.id).in_(stale[start : start + ID_BATCH]))
            .execution_options(synchronize_session=False)
        )
    fresh = [
        {"employee_id": emp_id, "week": w, "kind": kind, "source": "roster", "created_at": utcnow()}
        for (emp_id, kind), weeks in wanted.items()
        for w in sorted(weeks)
        if w not in have.get((emp_id, kind), {})
    ]
    for start in range(0, len(fresh), BATCH):
        session.execute(insert(WeekPreference), fresh[start : start + BATCH])
    result.preference_weeks_added += len(fresh)
    result.preference_weeks_removed += len(stale)


# --------------------------------------------------------------------------------------------------
# The last import, for the console


def last_import(session: Session, show: int) -> dict[str, Any] | None:
    """The latest ``roster.import`` audit event with its counts and files, and the first ``show`` new
    hires and leavers it names (by name). None before the first import."""
    event = (
        session.execute(
            select(AuditEvent)
            .where(col(AuditEvent.action) == "roster.import")
            .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        )
        .scalars()
        .first()
    )
    if event is None:
        return None
    details = event.details or {}
    names = department_names(session)

    def people(ids: list[str]) -> list[dict[str, Any]]:
        found = employees_by_external_id(session, list(ids or [])[:show])
        return sorted(
            (
                {
                    "employee_id": e.employee_id,
                    "name": e.name,
                    "email": e.email,
                    "department": names.get(e.department_id, ""),
                    "hire_date": e.hire_date,
                    "left_on": e.left_on,
                }
                for e in found.values()
            ),
            key=lambda p: p["name"],
        )

    return {
        "event": event,
        "counts": {k: v for k, v in details.items() if isinstance(v, int)},
        "files": details.get("files", {}),
        "new_hires": people(details.get("new_hire_ids", [])),
        "new_hire_count": details.get("new_hires", len(details.get("new_hire_ids", []))),
        "leavers": people(details.get("left_ids", [])),
        "leaver_count": details.get("employees_left", len(details.get("left_ids", []))),
    }
