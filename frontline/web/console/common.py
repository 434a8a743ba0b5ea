"""Helpers shared by the console pages: parsing query values, the policy, scope by role, optional modules."""

from __future__ import annotations

import importlib
from datetime import date
from types import ModuleType

from sqlmodel import Session

from frontline.core.policy import Policy
from frontline.people.directory import departments
from frontline.web.auth import ConsoleDenied, Principal
from models import Department


def parse_date(value: str | None, what: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConsoleDenied(f"{what}: {value!r} is not a date (YYYY-MM-DD).", status_code=400) from None


def parse_int(value: str | None, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConsoleDenied(f"{what}: {value!r} is not a number.", status_code=400) from None


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
