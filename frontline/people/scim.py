"""SCIM 2.0 provisioning: Okta, Entra ID (or any SCIM client) create, update and deactivate employees.

The protocol (routes, discovery, filters, PATCH, ETags, error bodies) is scim2-server's; this module is its
storage: every SCIM User and Group is kept as the identity provider last wrote it (``ScimResource``, never a
password), and each User provisions the employee it describes, in the same transaction:

* a created User becomes an employee (or adopts the one the roster import made with the same
  ``employeeNumber``); one with a start date in the new-hire window is a new hire and fires the
  ``frontline.employee.hired`` event after the commit (:func:`frontline.people.events.emit_new_hires`,
  as the roster import does);
* a User set to ``active: false`` (or deleted) is a leaver: :func:`frontline.people.roster.mark_left`, the
  roster import's own path (left today, future rotations and their pairings cancelled). The roster's safety
  rule applies over a sliding 24-hour window: beyond ``policy.roster``'s allowance of leavers
  (``max(min_leavers_allowed, max_leaver_fraction x active staff)``) a deactivation is *held* for HR
  (``frontline scim leavers``) and the employee stays active until it is confirmed;
* a User that cannot become an employee (no e-mail, a department Frontline does not know, a bad time zone,
  a taken e-mail address) is refused with a SCIM error naming the attribute, and nothing is written.

Groups are stored and served (list, get, create, replace, patch members, delete) but change nothing in
Frontline: departments come from the enterprise ``department`` attribute, HR admins from single sign-on.

Each write records the connector ``scim``'s last success in its own transaction; refusals are recorded as its
last error by :func:`record_error` (``frontline status``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from scim2_models import (
    InvalidValueException,
    Meta,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    SchemaExtension,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    UniquenessException,
)
from scim2_server.storage import AsyncScimStorage, ScimStorage, SearchPage
from scim2_server.utils import parametrize
from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.core.security import hash_secret
from frontline.operations.connectors import record_failure, record_success
from models import Department, Employee, ScimResource, ScimToken, session_scope, utcnow
from models.db import INTERACTIVE, planning_lock

CONNECTOR = "scim"
TOKEN_PREFIX = "fls_"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
FRONTLINE = "urn:ietf:params:scim:schemas:extension:frontline:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LEAVER_WINDOW = timedelta(hours=24)
MAX_RESULTS = 200

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


# --------------------------------------------------------------------------------------------- tokens


def create_token(session: Session, name: str, actor: str = "cli") -> tuple[ScimToken, str]:
    """A new bearer token for an identity provider's SCIM client. Returns the row and the secret, which is
    shown once; only its hash is stored."""
    name = name.strip()
    if not name:
        raise ValueError("a token needs a name")
    if session.exec(select(ScimToken).where(ScimToken.name == name, col(ScimToken.revoked_at).is_(None))).first():
        raise ValueError(f"an active SCIM token called {name!r} exists; revoke it first or pick another name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ScimToken(name=name, token_hash=hash_secret(secret))
    session.add(row)
    session.flush()
    audit.record(
        session, actor=actor, action="scim_token.created", subject_type="scim_token", subject_id=row.id, name=name
    )
    return row, secret


def revoke_token(session: Session, name: str, actor: str = "cli") -> int:
    """Revoke every active SCIM token called ``name`` at once; returns how many."""
    rows = session.exec(select(ScimToken).where(ScimToken.name == name, col(ScimToken.revoked_at).is_(None))).all()
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(session, actor=actor, action="scim_token.revoked", subject_type="scim_token", subject_id=row.id)
    return len(rows)


def list_tokens(session: Session) -> list[ScimToken]:
    return list(session.exec(select(ScimToken).order_by(col(ScimToken.id))).all())


def authenticate(secret: str) -> str | None:
    """The name of the active token whose secret this is (looked up by its hash), or None."""
    if not secret or len(secret) > 200:
        return None
    with session_scope() as session:
        row = session.exec(
            select(ScimToken).where(ScimToken.token_hash == hash_secret(secret), col(ScimToken.revoked_at).is_(None))
        ).first()
        return row.name if row else None


# --------------------------------------------------------------------------------------- the service


FRONTLINE_SCHEMA: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": FRONTLINE,
    "name": "FrontlineUser",
    "description": "What Frontline needs beyond the core and enterprise User schemas",
    "attributes": [
        {
            "name": "startDate",
            "type": "string",
            "multiValued": False,
            "description": "First working day, YYYY-MM-DD (a date-time is cut to its date); default: the day the user is created",
            "required": False,
            "caseExact": False,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none",
        },
        {
            "name": "country",
            "type": "string",
            "multiValued": False,
            "description": "Two-letter ISO 3166-1 country of work (else the work address's country)",
            "required": False,
            "caseExact": False,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none",
        },
    ],
}


@cache
def provider() -> ScimProvider:
    """What the service publishes: the core User with the enterprise and Frontline extensions, and Group;
    PATCH, filters (at most ``MAX_RESULTS`` a page) and ETags; no bulk, sort or password change."""
    from scim2_server.utils import load_default_resource_types, load_default_schemas

    schemas = list(load_default_schemas().values())
    schemas.append(Schema.model_validate(FRONTLINE_SCHEMA))
    types = list(load_default_resource_types().values())
    for rt in types:
        if _name(rt) == "User":
            rt.schema_extensions = [
                *(rt.schema_extensions or []),
                SchemaExtension(schema_=FRONTLINE, required=False),
            ]
    config = ServiceProviderConfig.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/frontline/frontline#scim-provisioning",
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": True},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "A token from `frontline scim token create`",
                    "primary": True,
                }
            ],
        }
    )
    return ScimProvider.from_discovery(schemas, types, config=config)


def _model(resource_type: ResourceType) -> type[Resource[Any]]:
    model = provider().model_for(_name(resource_type))
    if model is None:  # pragma: no cover - the provider serves User and Group only
        raise NotFoundException(detail=f"no resource type {_name(resource_type)!r}")
    return cast(type[Resource[Any]], model)


def _payload(resource: Resource[Any]) -> dict[str, Any]:
    """What is stored of a resource: every attribute the client wrote, without id, meta or a password."""
    data = resource.model_dump(scim_ctx=None, mode="json", exclude_none=True, by_alias=True)
    for key in ("id", "meta", "password"):
        data.pop(key, None)
    return data


def _resource(resource_type: ResourceType, row: ScimResource) -> Resource[Any]:
    data = {**row.payload, "id": row.scim_id}
    resource = _model(resource_type).model_validate(data, scim_ctx=None)
    resource.meta = Meta(
        resource_type=row.resource_type,
        created=row.created_at,
        last_modified=row.updated_at,
        version=f'W/"{row.version}"',
    )
    return resource


# ------------------------------------------------------------------------------ user -> employee


@dataclass
class Person:
    """The employee fields a SCIM User carries (validated)."""

    employee_id: str
    name: str
    email: str
    department_id: int
    title: str
    hire_date: date
    timezone: str
    country: str
    languages: list[str]
    manager_email: str | None
    active: bool


class Incomplete(Exception):
    """A User without what Frontline needs to schedule someone (a work e-mail, a department): kept as the
    provider wrote it, not an employee until an update brings the missing attribute."""


def _invalid(attribute: str, why: str) -> InvalidValueException:
    return InvalidValueException(detail=f"{attribute}: {why}; nothing was written")


def _one_line(value: Any, attribute: str, limit: int) -> str:
    text = str(value).strip()
    if any(ord(c) < 32 or c in "\x7f\u0085\u2028\u2029" for c in text):
        raise _invalid(attribute, "control characters or line breaks are not allowed")
    if len(text) > limit:
        raise _invalid(attribute, f"longer than {limit} characters")
    return text


def _primary(items: Any, kind: str = "work") -> dict[str, Any] | None:
    """The primary entry of a multi-valued attribute, else the one of type ``kind``, else the first."""
    entries = [e for e in items or [] if isinstance(e, dict)]
    for pick in (lambda e: e.get("primary") is True, lambda e: str(e.get("type", "")).lower() == kind):
        for e in entries:
            if pick(e):
                return e
    return entries[0] if entries else None


def _person(session: Session, data: dict[str, Any], scim_id: str, today: date, current: Employee | None) -> Person:
    """Read and check what Frontline needs from a User's attributes. An attribute the provider leaves out
    keeps the employee's ``current`` value (department, start date, time zone, country), else its default.
    Long because each attribute has its own rule and its own error naming it."""
    from frontline.core.settings import get_settings
    from frontline.people.roster_csv import _zones

    enterprise = data.get(ENTERPRISE) or {}
    extra = data.get(FRONTLINE) or {}
    email_entry = _primary(data.get("emails"))
    email = str(email_entry.get("value", "")) if email_entry else ""
    if not email and _EMAIL.match(str(data.get("userName", ""))):
        email = str(data["userName"])
    email = _one_line(email, "emails", 320).lower()
    if not email and current is not None:
        email = current.email
    elif not email:
        raise Incomplete("no work e-mail address (emails)")
    if not _EMAIL.match(email):
        raise _invalid("emails", f"{email!r} is not an e-mail address")
    name_obj = data.get("name") or {}
    name = (
        data.get("displayName")
        or name_obj.get("formatted")
        or " ".join(p for p in (name_obj.get("givenName"), name_obj.get("familyName")) if p)
        or data.get("userName")
    )
    name = _one_line(name or "", "displayName", 300)
    dept_name = _one_line(enterprise.get("department") or "", f"{ENTERPRISE}:department", 200)
    if dept_name:
        dept = session.exec(
            select(Department).where(sa.func.lower(col(Department.name)) == dept_name.lower(), col(Department.active))
        ).first()
        if dept is None or dept.id is None:
            raise _invalid(
                f"{ENTERPRISE}:department",
                f"{dept_name!r} is not an active Frontline department (departments come from the roster import)",
            )
        department_id = dept.id
    elif current is not None:
        department_id = current.department_id
    else:
        raise Incomplete(f"no department ({ENTERPRISE}:department)")
    zone = _one_line(data.get("timezone") or (current.timezone if current else get_settings().timezone), "timezone", 64)
    if zone not in _zones():
        raise _invalid("timezone", f"unknown IANA time zone {zone!r} (e.g. Europe/Berlin)")
    address = _primary(data.get("addresses"))
    country = _one_line(
        extra.get("country") or (address or {}).get("country") or (current.country if current else ""), "country", 2
    ).upper()
    if country and not _COUNTRY.match(country):
        raise _invalid(f"{FRONTLINE}:country", f"{country!r} is not a two-letter ISO 3166-1 code")
    languages: list[str] = []
    for attribute in ("preferredLanguage", "locale"):
        value = _one_line(data.get(attribute) or "", attribute, 35).replace("_", "-")
        if value and not _LANGUAGE.match(value):
            raise _invalid(attribute, f"{value!r} is not a language tag (e.g. en-US)")
        if value and value.split("-")[0].lower() not in [lang.split("-")[0].lower() for lang in languages]:
            languages.append(value)
    start = _one_line(extra.get("startDate") or "", f"{FRONTLINE}:startDate", 40)
    try:
        hire_date = date.fromisoformat(start[:10]) if start else (current.hire_date if current else today)
    except ValueError:
        raise _invalid(f"{FRONTLINE}:startDate", f"{start!r} is not a date (YYYY-MM-DD)") from None
    employee_id = _one_line(
        enterprise.get("employeeNumber") or data.get("externalId") or scim_id, f"{ENTERPRISE}:employeeNumber", 100
    )
    return Person(
        employee_id=employee_id,
        name=name,
        email=email,
        department_id=department_id,
        title=_one_line(data.get("title") or "", "title", 300),
        hire_date=hire_date,
        timezone=zone,
        country=country,
        languages=languages,
        manager_email=_manager_email(session, enterprise.get("manager"), email),
        active=data.get("active", True) is not False,
    )


def _manager_email(session: Session, manager: Any, own: str) -> str | None:
    """The manager's e-mail: ``manager.value`` names the manager's SCIM id or employee number."""
    if not isinstance(manager, dict) or not manager.get("value"):
        return None
    ref = str(manager["value"])
    row = session.exec(select(ScimResource).where(ScimResource.scim_id == ref)).first()
    employee = session.get(Employee, row.employee_id) if row and row.employee_id else None
    if employee is None:
        employee = session.exec(select(Employee).where(Employee.employee_id == ref)).first()
    if employee is None:
        return None  # a manager provisioned later is filled in by the next update
    return employee.email if employee.email != own else None


# --------------------------------------------------------------------------------------------- writes


@dataclass
class Outcome:
    """What one write did, for the connector status, the audit trail and the hire event."""

    detail: str
    new_hire: str | None = None


def _employee_values(person: Person) -> dict[str, Any]:
    return {
        "employee_id": person.employee_id,
        "name": person.name,
        "email": person.email,
        "department_id": person.department_id,
        "title": person.title,
        "hire_date": person.hire_date,
        "timezone": person.timezone,
        "country": person.country,
        "languages": person.languages,
        "manager_email": person.manager_email,
    }


def _linked_employee(session: Session, row: ScimResource) -> Employee | None:
    """The employee this User provisions: the linked one, else the one with its employee number (made by the
    roster import, or by a User deleted earlier), unless another live User provisions that one."""
    if row.employee_id is not None:
        return session.get(Employee, row.employee_id)
    data = row.payload
    number = str((data.get(ENTERPRISE) or {}).get("employeeNumber") or data.get("externalId") or row.scim_id).strip()
    employee = session.exec(select(Employee).where(Employee.employee_id == number)).first()
    if employee is None:
        return None
    owner = session.exec(
        select(ScimResource).where(ScimResource.employee_id == employee.id, ScimResource.id != row.id, _live())
    ).first()
    if owner is not None:
        raise UniquenessException(detail=f"employeeNumber {number!r} is already provisioned by user {owner.scim_id}")
    for old in session.exec(  # a deleted User's held deactivation: this User now speaks for the employee
        select(ScimResource).where(ScimResource.employee_id == employee.id, col(ScimResource.held_since).is_not(None))
    ).all():
        old.held_since = None
        session.add(old)
    return employee


def _provision(session: Session, row: ScimResource, today: date, now: datetime) -> Outcome:
    """Make the employee say what the User says. Long because creating, adopting, updating, deactivating
    (with the safety rule) and reactivating are one decision over the same rows."""
    from frontline.people.roster import new_hire_weeks

    employee = _linked_employee(session, row)
    try:
        person = _person(session, row.payload, row.scim_id, today, employee)
    except Incomplete as missing:
        return Outcome(f"stored user {row.payload.get('userName')!r}, not an employee yet: {missing}")
    if employee is not None and employee.employee_id != person.employee_id:
        clash = session.exec(select(Employee).where(Employee.employee_id == person.employee_id)).first()
        if clash is not None:
            raise UniquenessException(detail=f"employeeNumber {person.employee_id!r} belongs to another employee")
    holder = session.exec(select(Employee).where(Employee.email == person.email)).first()
    if holder is not None and (employee is None or holder.id != employee.id):
        raise UniquenessException(detail=f"emails: {person.email!r} belongs to employee {holder.employee_id!r}")
    values = _employee_values(person)
    if employee is None:
        employee = Employee(
            **values,
            active=person.active,
            left_on=None if person.active else today,
            created_at=now,
            updated_at=now,
        )
        session.add(employee)
        session.flush()
        row.employee_id = employee.id
        if not person.active:
            return Outcome(f"created employee {person.employee_id} (inactive)")
        if employee.hire_date >= today - timedelta(weeks=new_hire_weeks()):
            return Outcome(f"created employee {person.employee_id} (new hire)", person.employee_id)
        return Outcome(f"created employee {person.employee_id}")
    row.employee_id = employee.id
    changed = sorted(k for k, v in values.items() if getattr(employee, k) != v)
    for k in changed:
        setattr(employee, k, values[k])
    if changed:
        employee.updated_at = now
        session.add(employee)
    detail = f"updated employee {person.employee_id}" + (f" ({', '.join(changed)})" if changed else "")
    if not person.active:
        return Outcome(detail + "; " + _deactivate(session, row, employee, today, now))
    if not employee.active:
        employee.active, employee.left_on, employee.updated_at = True, None, now
        session.add(employee)
        detail += "; active again"
    elif row.held_since is not None:
        detail += "; held deactivation withdrawn"
    row.held_since = None
    return Outcome(detail)


def _deactivate(session: Session, row: ScimResource, employee: Employee, today: date, now: datetime) -> str:
    """A leaver, unless the safety rule holds the deactivation for HR (the employee then stays active)."""
    from frontline.people.roster import roster_guard

    if not employee.active or row.held_since is not None:
        return "already inactive" if not employee.active else "deactivation still held for HR"
    guard = roster_guard()
    active = session.exec(select(sa.func.count()).select_from(Employee).where(col(Employee.active))).one()
    recent = recent_leavers(session, now)
    allowed = guard.leavers_allowed(active + recent)
    if recent + 1 > allowed:
        row.held_since = now
        audit.record(
            session,
            actor=f"scim:{row.scim_id}",
            action="scim.leaver_held",
            subject_type="employee",
            subject_id=employee.employee_id,
            reason=f"{recent} deactivations in 24 h already; policy roster allows {allowed} without HR confirmation",
        )
        return (
            f"deactivation held for HR confirmation ({recent} leavers in 24 h, policy allows {allowed}; "
            "frontline scim leavers confirm)"
        )
    return _apply_leaver(session, employee, today, now, actor=f"scim:{row.scim_id}")


def _apply_leaver(session: Session, employee: Employee, today: date, now: datetime, actor: str) -> str:
    from frontline.people.roster import mark_left

    assert employee.id is not None
    reason = f"employee left (deactivated by SCIM provisioning on {today.isoformat()})"
    cancelled = mark_left(session, [employee.id], today, now, reason)
    session.refresh(employee)
    audit.record(
        session,
        actor=actor,
        action="scim.leaver",
        subject_type="employee",
        subject_id=employee.employee_id,
        rotations_cancelled=cancelled,
    )
    return f"left (deactivated; {cancelled} future rotation(s) cancelled)"


def recent_leavers(session: Session, now: datetime) -> int:
    """Leavers SCIM applied within the last 24 hours (the safety rule's window)."""
    from models import AuditEvent

    return int(
        session.exec(
            select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "scim.leaver", col(AuditEvent.at) >= now - LEAVER_WINDOW)
        ).one()
    )


def unprovisioned_users(session: Session) -> list[dict[str, Any]]:
    """Live SCIM Users that are no employee (no work e-mail or no department yet), oldest first."""
    rows = session.exec(
        select(ScimResource)
        .where(ScimResource.resource_type == "User", col(ScimResource.employee_id).is_(None))
        .order_by(col(ScimResource.id))
    ).all()
    result = []
    for r in rows:
        emails = r.payload.get("emails") or []
        result.append(
            {
                "scim_id": r.scim_id,
                "userName": r.payload.get("userName", ""),
                "missing": ", ".join(
                    what
                    for what, absent in (
                        ("e-mail", not emails and "@" not in str(r.payload.get("userName", ""))),
                        ("department", not (r.payload.get(ENTERPRISE) or {}).get("department")),
                    )
                    if absent
                ),
                "since": r.created_at,
            }
        )
    return result


def held_leavers(session: Session) -> list[dict[str, Any]]:
    """Deactivations waiting for HR: who, since when, the SCIM user."""
    rows = session.exec(
        select(ScimResource, Employee)
        .join(Employee, col(Employee.id) == col(ScimResource.employee_id))
        .where(col(ScimResource.held_since).is_not(None))
        .order_by(col(ScimResource.held_since))
    ).all()
    return [
        {
            "employee_id": e.employee_id,
            "name": e.name,
            "email": e.email,
            "held_since": r.held_since,
            "scim_id": r.scim_id,
        }
        for r, e in rows
    ]


def confirm_leavers(session: Session, employee_ids: list[str] | None, actor: str = "cli") -> list[str]:
    """Apply held deactivations (all of them, or those of ``employee_ids``): the people leave as any leaver
    does. Returns the employee ids that left. Raises ValueError naming an id that has none held."""
    planning_lock(session, f"scim leavers confirm by {actor}")  # before reading: it cancels rotations, pairings
    held = {h["employee_id"]: h for h in held_leavers(session)}
    wanted = list(held) if employee_ids is None else employee_ids
    unknown = [i for i in wanted if i not in held]
    if unknown:
        raise ValueError(f"no deactivation is held for {', '.join(unknown)} (see frontline scim leavers)")
    today, now = clock.today(), utcnow()
    for employee_id in wanted:
        row = session.exec(select(ScimResource).where(ScimResource.scim_id == held[employee_id]["scim_id"])).one()
        employee = session.exec(select(Employee).where(Employee.employee_id == employee_id)).one()
        row.held_since = None
        session.add(row)
        _apply_leaver(session, employee, today, now, actor=actor)
    if wanted:
        record_success(session, CONNECTOR, f"HR confirmed {len(wanted)} held deactivation(s)", now)
    return wanted


def record_error(message: str) -> None:
    """The connector's last error (own transaction: the refused request wrote nothing)."""
    with session_scope() as session:
        record_failure(session, CONNECTOR, message, utcnow())


# --------------------------------------------------------------------------------------------- storage


class FrontlineStorage(ScimStorage):
    """scim2-server's storage over Frontline's database: one transaction per call.

    A write that may deactivate someone (a User written with ``active: false``, a User deleted) cancels
    rotations and pairings, so it takes the planning lock (:func:`models.db.planning_lock`) as the first
    thing in its transaction, before it reads or writes anything: a plan or pairing run then cannot write
    back what it cancelled, and it never holds SQLite's write lock while it waits. It waits at most
    ``lock_wait`` seconds (the web's cap), then raises :class:`~frontline.core.errors.PlanningBusy`."""

    def __init__(self, lock_wait: float | None = None) -> None:
        super().__init__()
        self.lock_wait = lock_wait

    @contextmanager
    def _writing(self, resource_type: ResourceType, deactivates: bool, what: str) -> Iterator[Session]:
        with session_scope() as session:
            if self.lock_wait is not None:
                session.info[INTERACTIVE] = self.lock_wait
            if deactivates and _name(resource_type) == "User":
                planning_lock(session, f"SCIM {what}")
            yield session

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        with session_scope() as session:
            return _resource(resource_type, self._row(session, resource_type, resource_id))

    @staticmethod
    def _row(session: Session, resource_type: ResourceType, resource_id: str) -> ScimResource:
        row = session.exec(
            select(ScimResource).where(
                ScimResource.scim_id == resource_id,
                ScimResource.resource_type == _name(resource_type),
                _live(),
            )
        ).first()
        if row is None:
            raise NotFoundException(detail=f"no {_name(resource_type)} with id {resource_id!r}")
        return row

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """Unfiltered lists of one type are paged by the database (Okta's import walks them 100 at a time);
        ``userName``/``externalId``/``id eq`` use their columns; other filters read every resource of the type
        and match it with scim2-models (see the README for the cost)."""
        found: list[Resource[Any]] = []
        scim_filter = search_request.filter
        start = search_request.start_index_0 or 0
        with session_scope() as session:
            if scim_filter is None and len(resource_types) == 1:
                rt = resource_types[0]
                where = (ScimResource.resource_type == _name(rt), _live())
                total = session.exec(select(sa.func.count()).select_from(ScimResource).where(*where)).one()
                page = select(ScimResource).where(*where).order_by(col(ScimResource.id)).offset(start)
                if search_request.count is not None:
                    page = page.limit(search_request.count)
                return SearchPage(int(total), [_resource(rt, r) for r in session.exec(page).all()])
            for rt in resource_types:
                query = select(ScimResource).where(ScimResource.resource_type == _name(rt), _live())
                query = _narrow(query, scim_filter)
                rows = session.exec(query.order_by(col(ScimResource.id))).all()
                resources = [_resource(rt, r) for r in rows]
                if scim_filter is not None:
                    typed = parametrize(ScimFilter, _model(rt))(str(scim_filter))
                    resources = [r for r in resources if typed.match(r)]
                found += resources
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        data = _payload(resource)
        scim_id = uuid.uuid4().hex
        new_hire = None
        with self._writing(resource_type, data.get("active", True) is False, "create (inactive)") as session:
            now = utcnow()
            row = ScimResource(
                resource_type=_name(resource_type),
                scim_id=scim_id,
                payload=data,
                created_at=now,
                updated_at=now,
                **_keys(resource_type, data),
            )
            self._check_unique(session, row)
            session.add(row)
            session.flush()
            outcome = self._apply(session, resource_type, row, now)
            new_hire = outcome.new_hire
            out = _resource(resource_type, row)
        self._after(new_hire)
        return out

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        data = _payload(resource)
        deactivates = data.get("active", True) is False
        with self._writing(resource_type, deactivates, f"deactivation of user {resource.id}") as session:
            row = self._row(session, resource_type, cast(str, resource.id))
            _check_version(row, expected_version)
            now = utcnow()
            row.payload = data
            for k, v in _keys(resource_type, data).items():
                setattr(row, k, v)
            row.version += 1
            row.updated_at = now
            self._check_unique(session, row)
            session.add(row)
            session.flush()
            self._apply(session, resource_type, row, now)
            out = _resource(resource_type, row)
        return out

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        """A deleted User is a deactivated one (the employee is never deleted; the safety rule applies);
        its SCIM record is gone (404) and its userName free again."""
        with self._writing(resource_type, True, f"deletion of user {resource_id}") as session:
            row = self._row(session, resource_type, resource_id)
            _check_version(row, expected_version)
            now = utcnow()
            detail = f"deleted {_name(resource_type)} {resource_id}"
            if _name(resource_type) == "User" and row.employee_id is not None:
                employee = session.get(Employee, row.employee_id)
                if employee is not None:
                    detail += f": employee {employee.employee_id} " + _deactivate(
                        session, row, employee, clock.today(), now
                    )
            row.user_name_key, row.external_id = None, None
            row.resource_type = f"{row.resource_type}:deleted"
            row.updated_at = now
            session.add(row)
            audit.record(session, actor="scim", action="scim.deleted", subject_type="scim", subject_id=resource_id)
            record_success(session, CONNECTOR, detail, now)

    @staticmethod
    def _check_unique(session: Session, row: ScimResource) -> None:
        if row.user_name_key is None:
            return
        clash = session.exec(
            select(ScimResource).where(
                ScimResource.resource_type == row.resource_type,
                ScimResource.user_name_key == row.user_name_key,
                ScimResource.scim_id != row.scim_id,
            )
        ).first()
        if clash is not None:
            raise UniquenessException(
                detail=f"userName {row.payload.get('userName')!r} is taken by user {clash.scim_id}"
            )

    @staticmethod
    def _apply(session: Session, resource_type: ResourceType, row: ScimResource, now: datetime) -> Outcome:
        today = clock.today()
        if _name(resource_type) != "User":
            outcome = Outcome(f"stored {_name(resource_type)} {row.payload.get('displayName', row.scim_id)!r}")
        else:
            outcome = _provision(session, row, today, now)
        session.add(row)
        audit.record(
            session,
            actor="scim",
            action=f"scim.{_name(resource_type).lower()}",
            subject_type="scim",
            subject_id=row.scim_id,
            reason=outcome.detail,
        )
        record_success(session, CONNECTOR, outcome.detail, now)
        return outcome

    @staticmethod
    def _after(new_hire: str | None) -> None:
        """After the commit: the new-hire event, as the roster import sends it."""
        if new_hire:
            from frontline.people.events import emit_new_hires

            emit_new_hires([new_hire], source="scim")


def _name(resource_type: ResourceType) -> str:
    return resource_type.name or ""


def _live() -> Any:
    return col(ScimResource.resource_type).not_like("%:deleted")


def _keys(resource_type: ResourceType, data: dict[str, Any]) -> dict[str, Any]:
    user_name = data.get("userName") if _name(resource_type) == "User" else None
    return {
        "user_name_key": str(user_name).casefold() if user_name else None,
        "external_id": str(data["externalId"])[:320] if data.get("externalId") else None,
    }


def _narrow(query: Any, scim_filter: ScimFilter[Any] | None) -> Any:
    """Use the indexed columns for the filters identity providers send before each create
    (``userName eq``, ``externalId eq``, ``id eq``); the filter itself is still applied to what is found."""
    from scim2_models.path import CompareOperator, Comparison

    node = scim_filter.ast if scim_filter is not None else None
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq or not isinstance(node.value, str):
        return query
    attribute = str(node.attr_path).split(":")[-1].lower()
    if attribute == "username":
        return query.where(ScimResource.user_name_key == node.value.casefold())
    if attribute == "externalid":
        return query.where(ScimResource.external_id == node.value)
    if attribute == "id":
        return query.where(ScimResource.scim_id == node.value)
    return query


def _check_version(row: ScimResource, expected: str | None) -> None:
    if expected is not None and expected != f'W/"{row.version}"':
        raise PreconditionFailedException(detail=f'the resource changed (version W/"{row.version}")')


class AsyncFrontlineStorage(AsyncScimStorage):
    """The storage for scim2-server's ASGI application: each call in a worker thread."""

    def __init__(self, lock_wait: float | None = None) -> None:
        self.storage = FrontlineStorage(lock_wait)

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        return await asyncio.to_thread(self.storage.get, resource_type, resource_id)

    async def search(
        self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *, position: Any = None
    ) -> SearchPage:
        return await asyncio.to_thread(self.storage.search, resource_types, search_request)

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        return await asyncio.to_thread(self.storage.create, resource_type, resource)

    async def update(
        self, resource_type: ResourceType, resource: Resource[Any], *, expected_version: str | None = None
    ) -> Resource[Any]:
        return await asyncio.to_thread(self.storage.update, resource_type, resource, expected_version=expected_version)

    async def delete(
        self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None
    ) -> None:
        await asyncio.to_thread(self.storage.delete, resource_type, resource_id, expected_version=expected_version)


__all__ = [
    "CONNECTOR",
    "AsyncFrontlineStorage",
    "FrontlineStorage",
    "authenticate",
    "confirm_leavers",
    "create_token",
    "held_leavers",
    "unprovisioned_users",
    "list_tokens",
    "provider",
    "record_error",
    "revoke_token",
]
