"""Who is signed in and what they may see: the console identity of an email address.

Roles are looked up in the database every time (never stored in the cookie), so removing a role takes
effect at once: HR admin (a :class:`models.ConsoleUser` row), department head (``Department.head_email`` of
an active department: their departments only; a department deactivated by the roster import takes its
head's access with it), rotator (``Employee.email``: their own rotation and observations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, func, select

from models import ConsoleUser, Department, Employee


@dataclass(frozen=True)
class Principal:
    """Who is signed in and what they may see."""

    email: str
    name: str
    is_hr: bool = False
    head_of: dict[int, str] = field(default_factory=dict)  # department id -> name
    employee_id: int | None = None  # Employee.id when the person is an employee

    @property
    def is_head(self) -> bool:
        return bool(self.head_of)

    @property
    def roles(self) -> list[str]:
        roles = []
        if self.is_hr:
            roles.append("HR admin")
        if self.head_of:
            roles.append("head of " + ", ".join(sorted(self.head_of.values())))
        if self.employee_id is not None:
            roles.append("rotator")
        return roles

    def can_see_department(self, department_id: int | None) -> bool:
        return self.is_hr or (department_id is not None and department_id in self.head_of)


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def load_principal(session: Session, email: str) -> Principal | None:
    """The console identity of ``email``, or ``None`` when it has no role at all."""
    email = normalise_email(email)
    if not email or "@" not in email:
        return None
    hr = session.exec(
        select(ConsoleUser).where(
            func.lower(ConsoleUser.email) == email,
            ConsoleUser.role == "hr",
            col(ConsoleUser.disabled_at).is_(None),
        )
    ).first()
    heads = session.exec(
        select(Department).where(func.lower(Department.head_email) == email, col(Department.active).is_(True))
    ).all()
    employee = session.exec(
        select(Employee).where(func.lower(Employee.email) == email, col(Employee.active).is_(True))
    ).first()
    if hr is None and not heads and employee is None:
        return None
    name = employee.name if employee else (heads[0].head_name if heads else email)
    return Principal(
        email=email,
        name=name,
        is_hr=hr is not None,
        head_of={d.id: d.name for d in heads if d.id is not None},
        employee_id=employee.id if employee else None,
    )
