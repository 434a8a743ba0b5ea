"""The plan as records: one per rotation, as JSON or CSV (``frontline plan export``).

Columns are :data:`EXPORT_COLUMNS` (one entry each: adding a column is one edit) followed by the
rotation's active mentor (:data:`MENTOR_COLUMNS`, empty before pairing). CSV cells are made safe for
spreadsheets (no formula can run).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from frontline.core.errors import PlanningError
from frontline.core.security import spreadsheet_safe
from frontline.rotations.lifecycle import FIXED_STATUSES
from frontline.rotations.weeks import holidays_between
from models import Department, Employee, Rotation

EXPORT_COLUMNS: list[tuple[str, Callable[[Rotation, Employee, Department], Any]]] = [
    ("rotation_id", lambda r, e, d: r.id),
    ("employee_id", lambda r, e, d: e.employee_id),
    ("email", lambda r, e, d: e.email),
    ("department", lambda r, e, d: d.name),
    ("start", lambda r, e, d: r.start.isoformat()),
    ("end", lambda r, e, d: r.end.isoformat()),
    ("kind", lambda r, e, d: r.kind),
    ("status", lambda r, e, d: r.status),
    ("locked", lambda r, e, d: bool(r.locked or r.status in FIXED_STATUSES)),
    (
        "holidays",
        lambda r, e, d: "; ".join(
            f"{day.isoformat()} {name}" for day, name in holidays_between(e.country, r.start, r.end)
        ),
    ),
]

MENTOR_COLUMNS = ["mentor_employee_id", "mentor_email"]


def export_rows(session: Session, include_cancelled: bool = False) -> list[dict[str, Any]]:
    """One record per rotation (ordered by start, employee): the columns of ``EXPORT_COLUMNS``."""
    stmt = (
        select(Rotation, Employee, Department)
        .where(col(Rotation.employee_id) == col(Employee.id))
        .where(col(Employee.department_id) == col(Department.id))
    )
    if not include_cancelled:
        stmt = stmt.where(Rotation.status != "cancelled")
    rows = sorted(session.exec(stmt).all(), key=lambda t: (t[0].start, t[1].employee_id, t[0].id))
    from frontline.mentors.service import mentor_columns  # the active mentor pairing (empty when none yet)

    mentors = mentor_columns(session, [r.id for r, _e, _d in rows if r.id is not None])
    blank = dict.fromkeys(MENTOR_COLUMNS, "")
    return [
        {name: get(r, e, d) for name, get in EXPORT_COLUMNS} | (mentors.get(r.id, blank) if r.id else blank)
        for r, e, d in rows
    ]


def export_text(rows: list[dict[str, Any]], fmt: str) -> str:
    """``rows`` as JSON (a list of objects) or CSV (a header, then one line per row)."""
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=[name for name, _ in EXPORT_COLUMNS] + MENTOR_COLUMNS, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
        return buf.getvalue()
    raise PlanningError(f"unknown export format {fmt!r} (use json or csv)")
