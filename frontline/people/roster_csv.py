"""Reading roster files: three CSV files (departments, employees, absences) checked row by row (pure).

:func:`parse_roster` reads and validates every row of every file without touching the database. It
collects *every* problem as ``file:row: column: message`` (row = the line number a user sees, header =
line 1) and raises :class:`~frontline.core.errors.RosterError` if there is any; otherwise it returns a
:class:`ParsedRoster` for :func:`frontline.people.roster.apply_roster` to write.

Each input is a path or a ``(name, text_or_bytes)`` pair (uploads), decoded as UTF-8 with or without BOM.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import available_timezones

from frontline.core.errors import RosterError
from frontline.core.text import forbidden_character, one_line

if TYPE_CHECKING:
    from _csv import Reader

DEPARTMENT_COLUMNS = ["department", "head_name", "head_email", "max_away_fraction"]
EMPLOYEE_COLUMNS = [
    "employee_id",
    "name",
    "email",
    "department",
    "title",
    "hire_date",
    "timezone",
    "country",
    "languages",
    "skills",
    "mentor",
    "mentor_capacity",
    "last_rotation",
    "manager_email",
    "preferred_weeks",
    "unavailable_weeks",
]
ABSENCE_COLUMNS = ["employee_id", "start", "end", "reason"]
OPTIONAL_COLUMNS = {
    "max_away_fraction",
    "title",
    "languages",
    "skills",
    "mentor",
    "mentor_capacity",
    "last_rotation",
    "manager_email",
    "reason",
    "preferred_weeks",
    "unavailable_weeks",
}

RosterSource = Path | str | tuple[str, str | bytes]

_EMAIL = re.compile(
    r"^[^\s@<>(),;:\"\[\]\\]+@(?:[^\s@<>(),;:\"\[\]\\.]+\.)+[^\s@<>(),;:\"\[\]\\.0-9][^\s@<>(),;:\"\[\]\\.]+$"
)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0", ""}


@dataclass(frozen=True)
class DepartmentRow:
    line: int
    name: str
    head_name: str
    head_email: str
    max_away_fraction: float | None


@dataclass(frozen=True)
class EmployeeRow:
    line: int
    employee_id: str
    name: str
    email: str
    department: str
    title: str
    hire_date: date
    timezone: str
    country: str
    languages: list[str]
    skills: list[str]
    is_mentor: bool
    mentor_capacity: int
    last_rotation: date | None
    manager_email: str | None = None  # told once per change of this person's rotation (dates or cancellation)
    # soft wishes (Mondays); None = the column is not in the file (what is stored stays)
    preferred_weeks: tuple[date, ...] | None = None
    unavailable_weeks: tuple[date, ...] | None = None


@dataclass(frozen=True)
class AbsenceRow:
    line: int
    employee_id: str
    start: date
    end: date
    reason: str


@dataclass
class ParsedRoster:
    """A validated roster. ``absences`` is None when no absences file was given (absences untouched)."""

    departments: list[DepartmentRow]
    employees: list[EmployeeRow]
    absences: list[AbsenceRow] | None
    files: dict[str, str] = field(default_factory=dict)


# --- reading -----------------------------------------------------------------------------------


def _source(source: RosterSource) -> tuple[str, str | bytes | None, str | None]:
    """(display name, content, problem)."""
    if isinstance(source, tuple):
        name, content = source
        return str(name), content, None
    path = Path(source)
    try:
        return str(source), path.read_bytes(), None
    except FileNotFoundError:
        return str(source), None, "file not found"
    except OSError as exc:
        return str(source), None, f"cannot read the file: {exc.strerror or exc}"


def _decode(content: str | bytes) -> tuple[str | None, str | None]:
    if isinstance(content, str):
        return content.removeprefix("\ufeff"), None
    try:
        return content.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        return None, f"{line}: (file): not UTF-8 text (byte {exc.start}); save the file as UTF-8"


class _Table:
    """One CSV file: the header check and the records with the line each starts on."""

    def __init__(self, source: RosterSource, columns: list[str], problems: list[str]):
        self.name, content, problem = _source(source)
        self.columns = columns
        self.problems = problems
        self.ok = False
        self.header: list[str] = []
        self._records: list[tuple[int, dict[str, str]]] | None = None
        self._text = ""
        self.reported: set[tuple[int, str]] = set()
        if problem or content is None:
            self.problem(1, "(file)", problem or "cannot read the file")
            return
        text, problem = _decode(content)
        if problem:
            problems.append(f"{self.name}:{problem}")
            return
        self._text = text or ""
        self.ok = self._read_header()

    def problem(self, line: int, column: str, message: str) -> None:
        if (line, column) not in self.reported:  # a cell with a control character: that problem says it all
            self.problems.append(f"{self.name}:{line}: {column}: {message}")

    def _reader(self) -> Reader:
        # Lines end at CR, LF or CRLF only: str.splitlines would also split at U+2028, U+0085, form feed...
        # inside a cell, turning one bad character into a cascade of misleading row errors.
        return csv.reader(io.StringIO(self._text, newline=""), strict=True)

    def _read_header(self) -> bool:
        reader = self._reader()
        try:
            header = next(reader, None)
        except csv.Error as exc:
            self.problem(1, "(header)", f"not valid CSV: {exc}")
            return False
        if header is None or not any(h.strip() for h in header):
            self.problem(
                1, "(header)", f"the file is empty; the first line must be the header: {','.join(self.columns)}"
            )
            return False
        self.header = [h.strip().lower() for h in header]
        ok = True
        seen: set[str] = set()
        for name in self.header:
            if name in seen:
                self.problem(1, name, "column appears twice in the header")
                ok = False
            seen.add(name)
            if name not in self.columns:
                self.problem(1, name or "(empty)", f"unknown column (expected: {','.join(self.columns)})")
                ok = False
        for name in self.columns:
            if name not in seen and name not in OPTIONAL_COLUMNS:
                self.problem(1, name, "missing column")
                ok = False
        return ok

    def records(self) -> list[tuple[int, dict[str, str]]]:
        """(line the record starts on, column -> stripped cell) for every non-blank record; read once."""
        if self._records is None:
            self._records = list(self._read_records())
        return self._records

    def _read_records(self) -> Iterator[tuple[int, dict[str, str]]]:
        reader = self._reader()
        next(reader, None)
        header = self.header
        width = len(header)
        last_line = reader.line_num
        while True:
            start = last_line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.problem(start, "(row)", f"not valid CSV: {exc}")
                return
            last_line = reader.line_num
            if len(row) > width:
                if any(cell.strip() for cell in row):
                    self.problem(start, "(row)", f"{len(row)} values but the header has {width} columns")
                continue
            cells = dict(zip(header, (cell.strip() for cell in row), strict=False))
            for name, raw in zip(header, row, strict=False):
                char = forbidden_character(raw)
                if char is not None:  # reported once; the rest of the row is still checked (this cell cleaned)
                    self.problem(start, name, f"contains {char}; remove it (every field is one line of text)")
                    self.reported.add((start, name))
                    cells[name] = one_line(raw)
            if len(row) < width:
                if not any(cells.values()):
                    continue  # blank lines are allowed
                cells.update((name, "") for name in header[len(row) :])
            elif not any(cells.values()):
                continue
            yield start, cells


class _Row:
    """Field parsers for one record; each records its problem and returns None when the cell is bad."""

    def __init__(self, table: _Table, line: int, cells: dict[str, str]):
        self.table, self.line, self.cells = table, line, cells
        self.bad = False

    def problem(self, column: str, message: str) -> None:
        self.bad = True
        self.table.problem(self.line, column, message)

    def unique(self, seen: dict[Any, int], key: Any, column: str, duplicate: str) -> None:
        """Remember that ``key`` is first on this row, or record ``duplicate`` with the row it was first on."""
        if key in seen:
            self.problem(column, f"{duplicate} (first on row {seen[key]})")
        else:
            seen[key] = self.line

    def text(self, column: str, *, required: bool = True, max_len: int = 300) -> str | None:
        value = self.cells.get(column, "")
        if not value and required:
            self.problem(column, "required value is empty")
            return None
        if len(value) > max_len:
            self.problem(column, f"longer than {max_len} characters")
            return None
        return value

    def email(self, column: str) -> str | None:
        value = self.text(column, max_len=320)
        if value is None:
            return None
        if not _EMAIL.match(value) or ".." in value or value.startswith(".") or ".@" in value:
            self.problem(column, f"{value!r} is not a valid e-mail address")
            return None
        return value.lower()

    def date(self, column: str, *, required: bool = True) -> date | None:
        value = self.cells.get(column, "")
        if not value:
            if required:
                self.problem(column, "required date is empty (use YYYY-MM-DD)")
            return None
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            self.problem(column, f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)")
            return None

    def weeks(self, column: str) -> tuple[_dt.date, ...]:
        """``;``-separated weeks (``YYYY-MM-DD``, ``YYYY-Www`` or ``A..B``) as their Mondays."""
        from frontline.people.preferences import parse_weeks

        weeks, problems = parse_weeks(self.cells.get(column, ""))
        for problem in problems:
            self.problem(column, problem)
        return tuple(weeks)

    def items(self, column: str) -> list[str]:
        seen: list[str] = []
        for part in self.cells.get(column, "").split(";"):
            part = part.strip()
            if part and part not in seen:
                seen.append(part)
        return seen


_ZONES: set[str] | None = None


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones()
    return _ZONES


def _parse_departments(table: _Table) -> list[DepartmentRow]:
    rows: list[DepartmentRow] = []
    first_line: dict[str, int] = {}
    for line, cells in table.records():
        r = _Row(table, line, cells)
        name = r.text("department", max_len=200)
        head_name = r.text("head_name")
        head_email = r.email("head_email")
        fraction = None
        raw = cells.get("max_away_fraction", "")
        if raw:
            try:
                fraction = float(raw)
                if not 0 < fraction <= 1:
                    r.problem("max_away_fraction", f"{raw} is not greater than 0 and at most 1 (e.g. 0.1 = 10%)")
            except ValueError:
                r.problem("max_away_fraction", f"{raw!r} is not a number (a fraction such as 0.1)")
        if name is not None:
            r.unique(first_line, name.casefold(), "department", f"duplicate department {name!r}")
        if not r.bad and name is not None and head_name is not None and head_email is not None:
            rows.append(DepartmentRow(line, name, head_name, head_email, fraction))
    return rows


def _parse_employees(table: _Table, departments: set[str] | None, departments_file: str) -> list[EmployeeRow]:
    rows: list[EmployeeRow] = []
    id_line: dict[str, int] = {}
    email_line: dict[str, int] = {}
    zones = _zones()
    for line, cells in table.records():
        r = _Row(table, line, cells)
        employee_id = r.text("employee_id", max_len=100)
        name = r.text("name")
        email = r.email("email")
        department = r.text("department", max_len=200)
        title = r.text("title", required=False) or ""
        hire_date = r.date("hire_date")
        tz = r.text("timezone", max_len=64)
        if tz is not None and tz not in zones:
            r.problem("timezone", f"unknown IANA time zone {tz!r} (e.g. Europe/Berlin)")
        country = r.text("country", max_len=10)
        if country is not None and not _COUNTRY.match(country):
            r.problem("country", f"{country!r} is not a two-letter country code (ISO 3166-1, e.g. DE)")
        languages = r.items("languages")
        for lang in languages:
            if not _LANGUAGE.match(lang):
                r.problem("languages", f"{lang!r} is not a language code such as en or pt-BR")
        skills = r.items("skills")
        for skill in skills:
            if len(skill) > 100:
                r.problem("skills", f"skill {skill[:20]!r}... is longer than 100 characters")
        is_mentor, capacity = _mentor(r, cells)
        last_rotation = r.date("last_rotation", required=False)
        manager_email = r.email("manager_email") if cells.get("manager_email", "") else None
        if manager_email is not None and email is not None and manager_email == email:
            r.problem("manager_email", f"{manager_email!r} is the employee's own address (leave it empty)")
        preferred = r.weeks("preferred_weeks") if "preferred_weeks" in table.header else None
        unavailable = r.weeks("unavailable_weeks") if "unavailable_weeks" in table.header else None
        if department is not None and departments is not None and department.casefold() not in departments:
            r.problem("department", f"unknown department {department!r} (not in {departments_file})")
        if employee_id is not None:
            r.unique(id_line, employee_id, "employee_id", f"duplicate employee_id {employee_id!r}")
        if email is not None:
            r.unique(email_line, email, "email", f"duplicate email {email!r}")
        if r.bad or employee_id is None or name is None or email is None or department is None:
            continue
        if hire_date is None or tz is None or country is None:
            continue
        rows.append(
            EmployeeRow(
                line,
                employee_id,
                name,
                email,
                department,
                title,
                hire_date,
                tz,
                country.upper(),
                languages,
                skills,
                is_mentor,
                capacity,
                last_rotation,
                manager_email,
                preferred,
                unavailable,
            )
        )
    return rows


def _mentor(r: _Row, cells: dict[str, str]) -> tuple[bool, int]:
    """(is a mentor, mentor capacity): an empty capacity is 1 for a mentor, else 0."""
    raw_mentor = cells.get("mentor", "").lower()
    is_mentor = raw_mentor in _YES
    if raw_mentor not in _YES | _NO:
        r.problem("mentor", f"{cells.get('mentor')!r} is not yes or no")
    capacity = 0
    raw_cap = cells.get("mentor_capacity", "")
    if raw_cap:
        try:
            capacity = int(raw_cap)
        except ValueError:
            r.problem("mentor_capacity", f"{raw_cap!r} is not a whole number")
        else:
            if capacity < 0:
                r.problem("mentor_capacity", f"{capacity} is negative")
            elif raw_mentor in _NO and capacity > 0:
                r.problem("mentor_capacity", f"capacity {capacity} given but mentor is no (leave it empty)")
            elif is_mentor and capacity == 0:
                r.problem("mentor_capacity", "a mentor needs a capacity of at least 1 (or leave it empty for 1)")
    elif is_mentor:
        capacity = 1
    return is_mentor, capacity


def _parse_absences(table: _Table, employees: set[str] | None, employees_file: str) -> list[AbsenceRow]:
    rows: list[AbsenceRow] = []
    span_line: dict[tuple[str, date, date], int] = {}
    for line, cells in table.records():
        r = _Row(table, line, cells)
        employee_id = r.text("employee_id", max_len=100)
        start = r.date("start")
        end = r.date("end")
        reason = r.text("reason", required=False, max_len=200) or ""
        if employee_id is not None and employees is not None and employee_id not in employees:
            r.problem("employee_id", f"unknown employee {employee_id!r} (not in {employees_file})")
        if start and end:
            if end < start:
                r.problem("end", f"end {end} is before start {start}")
            elif employee_id is not None:
                r.unique(span_line, (employee_id, start, end), "start", f"duplicate absence {start}..{end}")
        if not r.bad and employee_id is not None and start is not None and end is not None:
            rows.append(AbsenceRow(line, employee_id, start, end, reason))
    return rows


def parse_roster(
    departments_csv: RosterSource, employees_csv: RosterSource, absences_csv: RosterSource | None = None
) -> ParsedRoster:
    """Read and validate the roster files. Raises :class:`RosterError` listing every problem."""
    problems: list[str] = []
    dept_table = _Table(departments_csv, DEPARTMENT_COLUMNS, problems)
    emp_table = _Table(employees_csv, EMPLOYEE_COLUMNS, problems)
    abs_table = _Table(absences_csv, ABSENCE_COLUMNS, problems) if absences_csv is not None else None

    departments = _parse_departments(dept_table) if dept_table.ok else []
    # Every named department counts for the employees, even one whose row has another problem.
    dept_names = (
        {c["department"].casefold() for _l, c in dept_table.records() if c["department"]} if dept_table.ok else None
    )
    employees = _parse_employees(emp_table, dept_names, dept_table.name) if emp_table.ok else []
    if emp_table.ok and not emp_table.records():
        # A full import without anyone would mark the whole company as left: surely a wrong file.
        emp_table.problem(2, "(file)", "no employees (a full import must list everyone who works here)")
    absences: list[AbsenceRow] | None = None
    if abs_table is not None:
        ids = {cells.get("employee_id", "") for _l, cells in emp_table.records()} if emp_table.ok else None
        absences = _parse_absences(abs_table, ids, emp_table.name) if abs_table.ok else []
    if problems:
        raise RosterError(_dedupe(problems))
    # Employees name departments case-insensitively; store the spelling of departments.csv.
    canonical = {d.name.casefold(): d.name for d in departments}
    employees = [replace(e, department=canonical[e.department.casefold()]) for e in employees]
    files = {"departments": dept_table.name, "employees": emp_table.name}
    if abs_table is not None:
        files["absences"] = abs_table.name
    return ParsedRoster(departments, employees, absences, files)


def _dedupe(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))
