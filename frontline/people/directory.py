"""Looking departments and employees up (read-only): by id, by external id, by e-mail address."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlmodel import Session, col, select

from models import Department, Employee


def departments(
    session: Session, only: Collection[int] | None = None, *, include_inactive: bool = False
) -> list[Department]:
    """Active departments by name: all of them, or those with an id in ``only`` (with ``include_inactive``,
    also those a roster import deactivated)."""
    query = select(Department).order_by(col(Department.name))
    if not include_inactive:
        query = query.where(col(Department.active).is_(True))
    if only is not None:
        query = query.where(col(Department.id).in_(list(only) or [-1]))
    return list(session.exec(query).all())


def department_names(session: Session) -> dict[int | None, str]:
    """Department id -> name."""
    return {d.id: d.name for d in session.exec(select(Department)).all()}


def employees_by_external_id(session: Session, employee_ids: Iterable[str]) -> dict[str, Employee]:
    """``employee_id`` -> employee, for those of ``employee_ids`` that exist."""
    ids = list(employee_ids)
    if not ids:
        return {}
    return {e.employee_id: e for e in session.exec(select(Employee).where(col(Employee.employee_id).in_(ids))).all()}


def employee_by_id_or_email(session: Session, key: str) -> Employee | None:
    """The employee whose ``employee_id`` is ``key`` or whose e-mail address is ``key`` (any case)."""
    return session.exec(
        select(Employee).where((col(Employee.employee_id) == key) | (col(Employee.email) == key.lower()))
    ).first()
