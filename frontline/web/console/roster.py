"""``/console/roster``: upload the three roster CSVs (all or nothing, every problem listed inline) and
see who joined and who left in the last import. Parsing is :mod:`frontline.people.roster_csv`'s, writing :mod:`frontline.people.roster`'s."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import UploadFile

from frontline.core.errors import LeaversNotConfirmed, RosterError
from frontline.people.roster import apply_roster, last_import
from frontline.people.roster_csv import parse_roster
from frontline.web.auth import Principal, db, page, redirect, require_csrf, require_hr, with_flash

# The HR check comes before the CSRF check, which parses the form: nobody else's upload is read at all.
router = APIRouter(
    prefix="/console", dependencies=[Depends(require_hr), Depends(require_csrf)], include_in_schema=False
)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SHOW_PEOPLE = 100


def _roster_page(
    request: Request,
    session: Session,
    problems: list[str] | None = None,
    status_code: int = 200,
    confirm: LeaversNotConfirmed | None = None,
) -> Response:
    """The page; with ``confirm``, the refusal of a large number of leavers and the box to confirm it."""
    return page(
        request,
        "web/console/roster.html",
        status_code=status_code,
        problems=problems or [],
        confirm=confirm,
        last=last_import(session, SHOW_PEOPLE),
        show=SHOW_PEOPLE,
    )


@router.get("/roster")
def roster_page(request: Request, user: Principal = Depends(require_hr), session: Session = Depends(db)) -> Response:
    return _roster_page(request, session)


async def _read(upload: object, label: str, problems: list[str]) -> tuple[str, bytes] | None:
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        problems.append(f"{upload.filename}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        return None
    return (upload.filename, data)


def _allow_leavers(value: object, problems: list[str]) -> int | None:
    """The confirmed number of leavers from the confirmation box (empty: none confirmed)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    problems.append("allow_leavers: confirm with a whole number of people, 0 or more")
    return None


@dataclass
class _Upload:
    dept: tuple[str, bytes] | None
    emp: tuple[str, bytes] | None
    absn: tuple[str, bytes] | None
    allow_leavers: int | None
    problems: list[str]


async def _upload(request: Request) -> _Upload:
    """The files, read from the form in the event loop after the HR and CSRF checks (a File() parameter
    would make FastAPI read the whole body before any dependency runs); the route is a plain ``def``."""
    form = await request.form()
    problems: list[str] = []
    dept = await _read(form.get("departments"), "departments", problems)
    emp = await _read(form.get("employees"), "employees", problems)
    absn = await _read(form.get("absences"), "absences", problems)
    return _Upload(dept, emp, absn, _allow_leavers(form.get("allow_leavers"), problems), problems)


@router.post("/roster")
def roster_upload(
    request: Request,
    user: Principal = Depends(require_hr),
    upload: _Upload = Depends(_upload),
    session: Session = Depends(db),
) -> Response:
    """A plain ``def`` (FastAPI's thread pool): the import waits for the planning lock (up to 15 s) and
    writes the roster; in the event loop that would stall every other request."""
    dept, emp, problems = upload.dept, upload.emp, upload.problems
    if dept is None and not problems:
        problems.append("departments.csv: choose the departments file")
    if emp is None and not problems:
        problems.append("employees.csv: choose the employees file")
    if problems or dept is None or emp is None:
        return _roster_page(request, session, problems, status_code=422)
    try:
        parsed = parse_roster(dept, emp, upload.absn)
        result = apply_roster(session, parsed, actor=user.email, allow_leavers=upload.allow_leavers)
    except LeaversNotConfirmed as exc:  # the page asks to confirm that many leavers (files chosen again)
        session.rollback()
        return _roster_page(request, session, exc.problems, status_code=409, confirm=exc)
    except RosterError as exc:
        session.rollback()
        return _roster_page(request, session, exc.problems, status_code=422)
    session.commit()
    from frontline.people.events import emit_new_hires

    emit_new_hires(result.new_hire_ids, source="console")  # onboarding runs at once when Prefect is configured
    return redirect(request, with_flash("/console/roster", "Imported: " + result.summary()))
