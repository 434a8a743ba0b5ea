"""``/console/roster``: upload the three roster CSVs (all or nothing, every problem listed inline) and
see who joined and who left in the last import. Parsing and writing are :mod:`frontline.people.roster`'s."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response
from sqlmodel import Session, select

from frontline.web.auth import Principal, db, page, redirect, require_csrf, require_hr, with_flash
from models import AuditEvent, Department, Employee

router = APIRouter(prefix="/console", dependencies=[Depends(require_csrf)], include_in_schema=False)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SHOW_PEOPLE = 100


def _last_import(session: Session) -> dict | None:
    event = session.exec(
        select(AuditEvent)
        .where(AuditEvent.action == "roster.import")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    ).first()
    if event is None:
        return None
    details = event.details or {}
    departments = {d.id: d.name for d in session.exec(select(Department)).all()}

    def people(ids: list[str]) -> list[dict]:
        ids = list(ids or [])[:SHOW_PEOPLE]
        if not ids:
            return []
        rows = session.exec(select(Employee).where(Employee.employee_id.in_(ids))).all()
        return sorted(
            (
                {
                    "employee_id": e.employee_id,
                    "name": e.name,
                    "email": e.email,
                    "department": departments.get(e.department_id, ""),
                    "hire_date": e.hire_date,
                    "left_on": e.left_on,
                }
                for e in rows
            ),
            key=lambda p: p["name"],
        )

    return {
        "event": event,
        "counts": {k: v for k, v in details.items() if isinstance(v, int)},
        "files": details.get("files", {}),
        "new_hires": people(details.get("new_hire_ids", [])),
        "new_hire_count": details.get("employees_created", len(details.get("new_hire_ids", []))),
        "leavers": people(details.get("left_ids", [])),
        "leaver_count": details.get("employees_left", len(details.get("left_ids", []))),
    }


def _roster_page(request: Request, session: Session, problems: list[str] | None = None, status_code: int = 200):
    return page(
        request,
        "web/console/roster.html",
        status_code=status_code,
        problems=problems or [],
        last=_last_import(session),
        show=SHOW_PEOPLE,
    )


@router.get("/roster")
def roster_page(request: Request, user: Principal = Depends(require_hr), session: Session = Depends(db)) -> Response:
    return _roster_page(request, session)


async def _read(upload: UploadFile | None, label: str, problems: list[str]) -> tuple[str, bytes] | None:
    if upload is None or not upload.filename:
        return None
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        problems.append(f"{upload.filename}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        return None
    return (upload.filename, data)


@router.post("/roster")
async def roster_upload(
    request: Request,
    departments: UploadFile | None = File(None),
    employees: UploadFile | None = File(None),
    absences: UploadFile | None = File(None),
    user: Principal = Depends(require_hr),
    session: Session = Depends(db),
) -> Response:
    from frontline.people.roster import RosterError, apply_roster, parse_roster

    problems: list[str] = []
    dept = await _read(departments, "departments", problems)
    emp = await _read(employees, "employees", problems)
    absn = await _read(absences, "absences", problems)
    if dept is None and not problems:
        problems.append("departments.csv: choose the departments file")
    if emp is None and not problems:
        problems.append("employees.csv: choose the employees file")
    if problems:
        return _roster_page(request, session, problems, status_code=422)
    try:
        parsed = parse_roster(dept, emp, absn)
        result = apply_roster(session, parsed, actor=user.email)
    except RosterError as exc:
        session.rollback()
        return _roster_page(request, session, exc.problems, status_code=422)
    session.commit()
    from frontline.people.events import emit_new_hires

    emit_new_hires(result.new_hire_ids, source="console")  # onboarding runs at once when Prefect is configured
    return redirect(request, with_flash("/console/roster", "Imported: " + result.summary()))
