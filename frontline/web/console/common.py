"""Helpers shared by the console pages: parsing query values, the policy, scope by role, optional modules."""

from __future__ import annotations

import importlib
from datetime import date
from types import ModuleType
from typing import Annotated

from fastapi import Path
from sqlmodel import Session

from frontline.core.clock import parse_day
from frontline.core.policy import Policy
from frontline.people.directory import departments
from frontline.web.auth import ConsoleDenied, Principal
from models import Department

MAX_ID = 2**31 - 1  # the largest INTEGER id PostgreSQL stores (SQLite's is larger; one limit for both)

# An id in a console path: 1 to MAX_ID, else 400 with a message (not the database's overflow as a 500).
DbId = Annotated[int, Path(ge=1, le=MAX_ID)]


def parse_date(value: str | None, what: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return parse_day(value)  # also refuses days a horizon cannot be added to (9999-12-31, 0001-01-01)
    except ValueError as exc:
        raise ConsoleDenied(f"{what}: {exc}.", status_code=400) from None


def parse_int(value: str | None, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConsoleDenied(f"{what}: {value!r} is not a number.", status_code=400) from None
    if abs(number) > MAX_ID:
        raise ConsoleDenied(f"{what}: {value} is out of range.", status_code=400)
    return number


def policy() -> Policy:
    """The policy, or an error page that lists the problems."""
    from frontline.core.policy import PolicyError, load_policy

    try:
        return load_policy()
    except PolicyError as exc:
        raise ConsoleDenied("The policy file cannot be used: " + "; ".join(exc.problems), status_code=503) from None


def optional(module: str) -> ModuleType | None:
    """Another engineer's domain module, or None while it does not exist yet."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def visible_departments(session: Session, user: Principal) -> list[Department]:
    """Departments the user may see (all for HR, their own for a head), by name."""
    return departments(session, None if user.is_hr else user.head_of)


def check_department(user: Principal, department_id: int | None) -> None:
    """403 unless the user may see ``department_id`` (None = all, HR only)."""
    if department_id is None:
        return
    if not user.can_see_department(department_id):
        raise ConsoleDenied("You can only see your own department.")
