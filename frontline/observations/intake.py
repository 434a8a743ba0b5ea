"""Front-line observations: validation, PII redaction at ingestion, storage, rate limits, urgent
escalation, and closing the loop with the rotator when someone acts on an observation.

Everything that accepts an observation goes through :func:`submit_batch`: the JSON API's
group-commit writer directly (many submissions per transaction), the web form, CLI and demo through
:func:`submit_observation` / :func:`submit` (a batch of one); everything that acts on one (acknowledge link, console, digests) goes
through :func:`set_ack_state`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from frontline.core import audit, clock
from frontline.core.policy import Policy, load_policy
from frontline.observations.redaction import redact
from models import ApiToken, Department, Employee, MentorPairing, Observation, Rotation, utcnow

ACK_STATES = ("acknowledged", "planned", "fixed", "wont_fix")
ACK_STATE_LABELS = {
    "new": "new",
    "acknowledged": "acknowledged",
    "planned": "planned: a fix or change is scheduled",
    "fixed": "fixed",
    "wont_fix": "won't fix",
}
SOURCES = ("web", "api", "cli", "import", "demo")
CATEGORY_LABELS = {
    "bug": "Bug",
    "confusing_ux": "Confusing UX",
    "missing_feature": "Missing feature",
    "policy_pricing": "Policy / pricing",
    "delivery_fulfilment": "Delivery / fulfilment",
    "documentation": "Documentation",
    "praise": "Praise",
    "other": "Other",
}
HARD_MAX_TEXT = 20000  # schema limit whatever the policy says (the policy limit is usually lower)


class RateLimited(Exception):
    """Too many submissions by one rotator in the last hour; ``retry_after`` seconds until the next."""

    def __init__(self, limit: int, retry_after: int):
        super().__init__(f"at most {limit} observations per hour; try again in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after


class ObservationConflict(Exception):
    """A ``client_request_id`` already used by another rotator."""


# ------------------------------------------------------------------------------------- policy


_policy_cache: dict[str, tuple[int, Policy]] = {}


def current_policy(path: Path | str | None = None) -> Policy:
    """The policy file, parsed once and re-read only when the file changes (hot paths call this)."""
    if path is None:
        from frontline.core.settings import get_settings

        path = get_settings().policy_path
    key = str(path)
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError:
        return load_policy(path)  # raises the clear PolicyError
    cached = _policy_cache.get(key)
    if cached and cached[0] == mtime:
        return cached[1]
    policy = load_policy(path)
    _policy_cache[key] = (mtime, policy)
    return policy


# ------------------------------------------------------------------------------------ validation


def category_label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category.replace("_", " ").capitalize())


class ObservationIn(BaseModel):
    """One observation as a rotator submits it. Policy-dependent checks (taxonomy, categories, text
    length, department names) run when validated with ``context={"policy": ..., "departments": [...]}``
    (as :func:`validate_observation` does)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=HARD_MAX_TEXT, description="What happened (free text)")
    impact: int = Field(ge=1, le=5, description="Customer impact, 1 (minor) to 5 (severe)")
    customer_count: int = Field(default=1, ge=0, description="How many customers mentioned it today")
    product_area: str = Field(min_length=1, max_length=100, description="One of the policy's product areas")
    category: str = Field(min_length=1, max_length=32, description="One of the policy's categories")
    target_department: str | None = Field(
        default=None, max_length=200, description="Department that should hear it (default: suggested from the area)"
    )
    suggestion: str | None = Field(default=None, max_length=HARD_MAX_TEXT, description="Optional suggestion")
    urgent: bool = Field(default=False, description="Needs management attention now")
    client_request_id: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="Client-chosen id; resubmitting the same id returns the first observation (safe retries)",
    )

    @field_validator("suggestion", "target_department", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("text", "suggestion")
    @classmethod
    def _policy_length(cls, value: str | None, info: ValidationInfo) -> str | None:
        policy = (info.context or {}).get("policy")
        if value is not None and policy is not None and len(value) > policy.observations.max_text_chars:
            raise PydanticCustomError(
                "too_long",
                "is {length} characters long; at most {limit} are allowed",
                {"length": len(value), "limit": policy.observations.max_text_chars},
            )
        return value

    @field_validator("customer_count")
    @classmethod
    def _sane_count(cls, value: int, info: ValidationInfo) -> int:
        policy = (info.context or {}).get("policy")
        limit = policy.observations.max_customer_count if policy is not None else 10**6
        if value > limit:
            raise PydanticCustomError("too_large", "must be at most {limit}", {"limit": limit})
        return value

    @field_validator("product_area")
    @classmethod
    def _known_area(cls, value: str, info: ValidationInfo) -> str:
        policy = (info.context or {}).get("policy")
        if policy is not None and value not in policy.observations.product_areas:
            raise PydanticCustomError(
                "unknown_area",
                "unknown product area {value}; choose one of: {choices}",
                {"value": repr(value), "choices": ", ".join(policy.observations.product_areas)},
            )
        return value

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str, info: ValidationInfo) -> str:
        policy = (info.context or {}).get("policy")
        if policy is not None and value not in policy.observations.categories:
            raise PydanticCustomError(
                "unknown_category",
                "unknown category {value}; choose one of: {choices}",
                {"value": repr(value), "choices": ", ".join(policy.observations.categories)},
            )
        return value

    @field_validator("target_department")
    @classmethod
    def _known_department(cls, value: str | None, info: ValidationInfo) -> str | None:
        departments = (info.context or {}).get("departments")
        if value is not None and departments is not None and value not in departments:
            raise PydanticCustomError("unknown_department", "no department is called {value}", {"value": repr(value)})
        return value


def department_names(session: Session) -> list[str]:
    return list(session.exec(select(Department.name).order_by(Department.name)).all())


def validate_observation(
    data: ObservationIn | dict[str, Any], policy: Policy, departments: Iterable[str]
) -> ObservationIn:
    """Validate against the policy and the departments; raises ``pydantic.ValidationError``."""
    raw = data.model_dump(exclude_unset=True) if isinstance(data, ObservationIn) else data
    return ObservationIn.model_validate(raw, context={"policy": policy, "departments": set(departments)})


def suggested_department(product_area: str, policy: Policy, departments: Iterable[str]) -> str | None:
    """The department the form proposes for ``product_area``: the policy's ``area_departments`` entry,
    else a department named like the area, else the support department (None when none exists)."""
    names = list(departments)
    by_lower = {n.lower(): n for n in names}
    for candidate in (
        policy.observations.area_departments.get(product_area),
        product_area,
        policy.support_department,
    ):
        if candidate and candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    return None


def error_list(exc: ValidationError) -> list[dict[str, Any]]:
    """FastAPI-style error entries (``loc``, ``msg``, ``type``) without echoing the input back."""
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _validation_error(field: str, message: str) -> ValidationError:
    return ValidationError.from_exception_data(
        "ObservationIn",
        [InitErrorDetails(type=PydanticCustomError("value_error", message), loc=(field,), input=None)],
    )


# ------------------------------------------------------------------------------------ queries


def current_rotation(session: Session, employee_id: int, on: date | None = None) -> Rotation | None:
    on = on or clock.today()
    return session.exec(
        select(Rotation)
        .where(Rotation.employee_id == employee_id, Rotation.status != "cancelled")
        .where(Rotation.start <= on, Rotation.end >= on)
        .order_by(Rotation.start.desc())
    ).first()


def mentor_for(session: Session, rotation_id: int | None) -> Employee | None:
    if rotation_id is None:
        return None
    return session.exec(
        select(Employee)
        .join(MentorPairing, MentorPairing.mentor_id == Employee.id)
        .where(MentorPairing.rotation_id == rotation_id, MentorPairing.status == "active")
        .order_by(MentorPairing.id.desc())
    ).first()


def recent_observations(session: Session, rotator_id: int, limit: int = 10) -> list[Observation]:
    return list(
        session.exec(
            select(Observation)
            .where(Observation.rotator_id == rotator_id)
            .order_by(Observation.created_at.desc(), Observation.id.desc())
            .limit(limit)
        ).all()
    )


def _raise_if_over_limit(count: int, oldest: datetime | None, limit: int, now: datetime) -> None:
    if count >= limit:
        if isinstance(oldest, str):  # SQLite may hand back an aggregate's text
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:  # SQLite returns naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        retry = (oldest + timedelta(hours=1) - now).total_seconds() if oldest else 60
        raise RateLimited(limit, max(1, math.ceil(retry)))


# ------------------------------------------------------------------------------------ submit


class RotatorInactive(Exception):
    """The rotator no longer exists or is no longer active (checked in the writing transaction)."""


class TokenRevoked(Exception):
    """The API token of the request is unknown or revoked (checked in the writing transaction)."""


class WrongRotator(Exception):
    """A rotator's API token used to submit for someone else."""


class UnknownEmployee(Exception):
    """An integration token named no rotator (``kind`` "missing") or an HR employee id that does not
    exist (``kind`` "value_error")."""

    def __init__(self, message: str, kind: str = "value_error"):
        super().__init__(message)
        self.kind = kind


@dataclass
class Submission:
    observation: Observation
    created: bool  # False: an idempotent replay of an earlier client_request_id
    department_name: str | None = None  # the target department's name (when already known)


@dataclass
class Pending:
    """One submission waiting to be written by :func:`submit_batch`: the raw fields, the source, and who
    submits, either ``rotator_id`` (an Employee.id) or the API token that authenticated the request
    (``token_hash``; re-checked as unrevoked inside the writing transaction) with, for an integration
    token, the rotator's HR id (``employee_hr_id``; for a rotator token it must match if given)."""

    data: dict[str, Any]
    source: str
    rotator_id: int | None = None
    token_hash: str | None = None
    employee_hr_id: str | None = None
    require_active: bool = True  # refuse (RotatorInactive) unless the rotator is active in the database


@dataclass
class Stored:
    """A stored observation as plain values (usable after the session is closed)."""

    id: int
    created_at: datetime
    text: str
    suggestion: str | None
    impact: int
    customer_count: int
    product_area: str
    category: str
    target_department: str
    urgent: bool
    ack_state: str
    redactions: dict[str, int]
    client_request_id: str | None
    created: bool  # False: an idempotent replay of an earlier client_request_id
    employee_id: str = ""  # the rotator's HR employee id


_OBS = Observation.__table__
_STORED_COLUMNS = (
    _OBS.c.id,
    _OBS.c.created_at,
    _OBS.c.text,
    _OBS.c.suggestion,
    _OBS.c.impact,
    _OBS.c.customer_count,
    _OBS.c.product_area,
    _OBS.c.category,
    _OBS.c.target_department_id,
    _OBS.c.urgent,
    _OBS.c.ack_state,
    _OBS.c.redactions,
    _OBS.c.client_request_id,
    _OBS.c.rotator_id,
)


class _BatchStatements:
    """The statements of :func:`submit_batch`, built once and reused with bound values (hot path)."""

    def __init__(self) -> None:
        from sqlalchemy import bindparam, insert, or_

        from models import ApiToken, AuditEvent

        rot, emp, tok = Rotation.__table__, Employee.__table__, ApiToken.__table__
        self.by_crid = select(*_STORED_COLUMNS).where(_OBS.c.client_request_id.in_(bindparam("crids", expanding=True)))
        self.recent = (
            select(_OBS.c.rotator_id, func.count(_OBS.c.id), func.min(_OBS.c.created_at))
            .where(_OBS.c.rotator_id.in_(bindparam("ids", expanding=True)), _OBS.c.created_at > bindparam("since"))
            .group_by(_OBS.c.rotator_id)
        )
        self.rotations = (
            select(rot.c.employee_id, rot.c.id)
            .where(rot.c.employee_id.in_(bindparam("ids", expanding=True)), rot.c.status != "cancelled")
            .where(
                rot.c.start <= bindparam("today", type_=rot.c.start.type),
                rot.c.end >= bindparam("today", type_=rot.c.end.type),
            )
            .order_by(rot.c.employee_id, rot.c.start.desc(), rot.c.id.desc())
        )
        self.employees = select(emp.c.id, emp.c.employee_id, emp.c.email, emp.c.active).where(
            or_(
                emp.c.id.in_(bindparam("ids", expanding=True)),
                emp.c.employee_id.in_(bindparam("hr_ids", expanding=True)),
            )
        )
        self.tokens = select(tok.c.token_hash, tok.c.employee_id).where(
            tok.c.token_hash.in_(bindparam("hashes", expanding=True)),
            tok.c.revoked_at == None,  # noqa: E711
        )
        self.departments = select(Department.__table__.c.name, Department.__table__.c.id)
        self.insert = insert(_OBS).returning(_OBS.c.id, sort_by_parameter_order=True)
        self.audit = insert(AuditEvent.__table__)


_STATEMENTS: _BatchStatements | None = None


def submit_batch(
    session: Session,
    items: list[Pending],
    *,
    policy: Policy | None = None,
    departments: list[str] | None = None,
) -> list[Stored | Exception]:
    """Validate, redact and store several submissions in the session's transaction (group commit):
    one result per item, in order, either :class:`Stored` or the exception that refused it
    (``pydantic.ValidationError``, :class:`RateLimited`, :class:`ObservationConflict`,
    :class:`RotatorInactive`, :class:`TokenRevoked`, :class:`WrongRotator`, :class:`UnknownEmployee`).
    Refused items write nothing.

    The same rules as one-at-a-time submission hold inside the batch: a ``client_request_id`` seen
    earlier (in the database or earlier in this batch) is a replay (same rotator) or a conflict
    (another rotator); the hourly limit counts the rotator's stored submissions plus those accepted
    earlier in the batch. Every stored observation gets its ``observation.submitted`` audit event in
    the same transaction, and an urgent one its escalation mail. A concurrent writer taking the same
    ``client_request_id`` makes the flush raise ``IntegrityError`` (the caller retries the items one by
    one: they then come back as replays)."""
    global _STATEMENTS
    if _STATEMENTS is None:
        _STATEMENTS = _BatchStatements()
    st = _STATEMENTS
    for item in items:
        if item.source not in SOURCES:
            raise ValueError(f"unknown source {item.source!r}")
    policy = policy or current_policy()
    session.flush()  # the statements below run on the session's connection, without autoflush
    conn = session.connection()
    now = utcnow()
    today = clock.today()
    ids_by_name = dict(conn.execute(st.departments).all())
    names_by_id = {v: k for k, v in ids_by_name.items()}
    names = departments if departments is not None else list(ids_by_name)
    hashes = sorted({i.token_hash for i in items if i.token_hash})
    live_tokens = dict(conn.execute(st.tokens, {"hashes": hashes}).all()) if hashes else {}
    want_ids = {i.rotator_id for i in items if i.rotator_id is not None} | {e for e in live_tokens.values() if e}
    want_hr = {i.employee_hr_id for i in items if i.employee_hr_id}
    by_id, by_hr = {}, {}
    for row in conn.execute(st.employees, {"ids": sorted(want_ids), "hr_ids": sorted(want_hr)}).all():
        by_id[row.id] = by_hr[row.employee_id] = row
    who: list[Any] = []  # per item: the employee row, or the exception refusing the item
    for item in items:
        try:
            if item.token_hash is not None:
                if item.token_hash not in live_tokens:
                    raise TokenRevoked("unknown or revoked API token")
                token_employee = live_tokens[item.token_hash]
                if token_employee is not None:
                    emp = by_id.get(token_employee)
                    if item.employee_hr_id is not None and (emp is None or emp.employee_id != item.employee_hr_id):
                        raise WrongRotator("this token submits only for its own rotator")
                else:
                    if not item.employee_hr_id:
                        raise UnknownEmployee("an integration token must name the rotator (HR employee id)", "missing")
                    emp = by_hr.get(item.employee_hr_id)
                    if emp is None:
                        raise UnknownEmployee(f"no employee with id {item.employee_hr_id!r}")
            else:
                emp = by_id.get(item.rotator_id)
            if emp is None or (item.require_active and not emp.active):
                raise RotatorInactive("this rotator can no longer submit observations")
            who.append(emp)
        except (TokenRevoked, WrongRotator, UnknownEmployee, RotatorInactive) as exc:
            who.append(exc)
    rotator_ids = sorted({e.id for e in who if not isinstance(e, Exception)})
    crids = sorted({i.data.get("client_request_id") for i in items if i.data.get("client_request_id")})

    earlier: dict[str, Any] = {}
    if crids:
        for row in conn.execute(st.by_crid, {"crids": crids}).all():
            earlier[row.client_request_id] = row
    recent = {
        r[0]: [r[1], clock.aware(r[2])]
        for r in conn.execute(st.recent, {"ids": rotator_ids, "since": now - timedelta(hours=1)})
    }
    rotation_of: dict[int, int] = {}
    for employee_id, rotation_id in conn.execute(st.rotations, {"ids": rotator_ids, "today": today}).all():
        rotation_of.setdefault(employee_id, rotation_id)

    def stored_from_row(row, emp) -> Stored:
        return Stored(
            row.id,
            clock.aware(row.created_at),
            row.text,
            row.suggestion,
            row.impact,
            row.customer_count,
            row.product_area,
            row.category,
            names_by_id.get(row.target_department_id, ""),
            bool(row.urgent),
            row.ack_state,
            dict(row.redactions or {}),
            row.client_request_id,
            False,
            emp.employee_id,
        )

    results: list[Any] = [None] * len(items)
    rows: list[dict[str, Any]] = []
    placed: list[tuple[int, dict[str, Any], str]] = []  # (item index, row values, department name)
    claimed: dict[str, int] = {}  # client_request_id -> index of the item of this batch storing it
    limit = policy.observations.submissions_per_hour
    for index, item in enumerate(items):
        try:
            emp = who[index]
            if isinstance(emp, Exception):
                raise emp
            crid = item.data.get("client_request_id")
            if crid and crid in earlier:
                row = earlier[crid]
                if row.rotator_id != emp.id:
                    raise ObservationConflict(f"client_request_id {crid!r} was already used by someone else")
                results[index] = stored_from_row(row, emp)
                continue
            if crid and crid in claimed:
                first = claimed[crid]
                if who[first].id != emp.id:
                    raise ObservationConflict(f"client_request_id {crid!r} was already used by someone else")
                results[index] = ("same-as", first)
                continue
            obs_in = validate_observation(item.data, policy, names)
            target_name = obs_in.target_department or suggested_department(obs_in.product_area, policy, names)
            if target_name is None or target_name not in ids_by_name:
                raise _validation_error("target_department", "choose the department that should hear about this")
            count, oldest = recent.get(emp.id, (0, None))
            _raise_if_over_limit(count, oldest, limit, now)
            text, text_counts = redact(obs_in.text)
            suggestion, suggestion_counts = redact(obs_in.suggestion) if obs_in.suggestion else (None, {})
            counts = dict(text_counts)
            for kind, n in suggestion_counts.items():
                counts[kind] = counts.get(kind, 0) + n
            values = {
                "client_request_id": crid,
                "rotator_id": emp.id,
                "rotation_id": rotation_of.get(emp.id),
                "created_at": now,
                "text": text,
                "suggestion": suggestion,
                "impact": obs_in.impact,
                "customer_count": obs_in.customer_count,
                "product_area": obs_in.product_area,
                "category": obs_in.category,
                "target_department_id": ids_by_name[target_name],
                "urgent": obs_in.urgent,
                "source": item.source,
                "redactions": counts,
                "theme": None,
                "ack_state": "new",
                "ack_by": None,
                "ack_at": None,
                "ack_note": None,
                "escalated_at": None,
                "escalation_level": 0,
            }
            recent[emp.id] = [count + 1, oldest or now]
            if crid:
                claimed[crid] = index
            rows.append(values)
            placed.append((index, values, target_name))
        except (
            ValidationError,
            RateLimited,
            ObservationConflict,
            RotatorInactive,
            TokenRevoked,
            WrongRotator,
            UnknownEmployee,
        ) as exc:
            results[index] = exc

    if rows:
        new_ids = [r[0] for r in conn.execute(st.insert, rows).all()]
        audits = []
        for (index, values, target_name), new_id in zip(placed, new_ids, strict=True):
            item = items[index]
            results[index] = Stored(
                new_id,
                now,
                values["text"],
                values["suggestion"],
                values["impact"],
                values["customer_count"],
                values["product_area"],
                values["category"],
                target_name,
                values["urgent"],
                "new",
                values["redactions"],
                values["client_request_id"],
                True,
                who[index].employee_id,
            )
            audits.append(
                {
                    "at": now,
                    "actor": who[index].email,
                    "action": "observation.submitted",
                    "subject_type": "observation",
                    "subject_id": str(new_id),
                    "reason": None,
                    "details": {
                        "source": item.source,
                        "urgent": values["urgent"],
                        "product_area": values["product_area"],
                        "category": values["category"],
                        "target_department": target_name,
                        "redactions": values["redactions"],
                    },
                }
            )
        conn.execute(st.audit, audits)
        for (index, values, _name), new_id in zip(placed, new_ids, strict=True):
            if values["urgent"]:
                send_escalation(
                    session, session.get(Observation, new_id), level=1, rotator=session.get(Employee, who[index].id)
                )
    for index, result in enumerate(results):
        if isinstance(result, tuple):  # a repeat of a client_request_id stored earlier in this batch
            first = results[result[1]]
            results[index] = first if isinstance(first, Exception) else Stored(**{**first.__dict__, "created": False})
    return results


def submit(
    session: Session,
    rotator: Employee,
    data: ObservationIn | dict[str, Any],
    source: str,
    *,
    policy: Policy | None = None,
    departments: list[str] | None = None,
) -> Submission:
    """:func:`submit_observation` that also tells whether a new row was created."""
    raw = data.model_dump(exclude_unset=True) if isinstance(data, ObservationIn) else dict(data)
    pending = Pending(raw, source, rotator_id=rotator.id, require_active=False)  # callers decide who may submit
    if not raw.get("client_request_id"):
        result = submit_batch(session, [pending], policy=policy, departments=departments)[0]
    else:  # a concurrent request may take the same client_request_id: insert under a savepoint
        try:
            with session.begin_nested():
                result = submit_batch(session, [pending], policy=policy, departments=departments)[0]
        except IntegrityError:
            result = submit_batch(session, [pending], policy=policy, departments=departments)[0]
    if isinstance(result, Exception):
        raise result
    return Submission(session.get(Observation, result.id), result.created, result.target_department)


def submit_observation(
    session: Session, rotator: Employee, data: ObservationIn | dict[str, Any], source: str, **kwargs: Any
) -> Observation:
    """Validate, redact (text and suggestion) and store one observation by ``rotator``.

    Records the redaction counts (never the values), links the rotator's current rotation, audits,
    enforces the per-rotator hourly limit (:class:`RateLimited`, counted in the database so it holds
    across processes) and, for an urgent observation, queues the escalation mail at once. A repeated
    ``client_request_id`` returns the first observation unchanged. Raises ``pydantic.ValidationError``
    for bad input (nothing is written)."""
    return submit(session, rotator, data, source, **kwargs).observation


# ------------------------------------------------------------------------------------ escalation


def _recipients_for(department: Department, level: int) -> list[str]:
    people = [department.head_email]
    if level >= 2:
        people += list(department.digest_recipients or [])
    seen: dict[str, str] = {}
    for addr in people:
        if addr and addr.strip().lower() not in seen:
            seen[addr.strip().lower()] = addr.strip()
    return list(seen.values())


def send_escalation(
    session: Session,
    obs: Observation,
    *,
    level: int,
    department: Department | None = None,
    rotator: Employee | None = None,
) -> bool:
    """Queue the escalation mail of ``level`` (1: the head at once; 2: digest recipients and head
    after the SLA) for an urgent observation. Returns False if that level was already queued."""
    from frontline.core.links import ack_url
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    department = department or session.get(Department, obs.target_department_id)
    rotator = rotator or (session.get(Employee, obs.rotator_id) if obs.rotator_id else None)
    mentor = mentor_for(session, obs.rotation_id)
    to = _recipients_for(department, level)
    cc = [mentor.email] if mentor and mentor.email.lower() not in {a.lower() for a in to} else []
    policy = current_policy()
    ctx = {
        "obs": obs,
        "level": level,
        "department": department,
        "rotator": rotator,
        "mentor": mentor,
        "category_label": category_label(obs.category),
        "ack_link": ack_url(obs.id, department.head_email if level == 1 else None),
        "sla_hours": policy.observations.escalation_sla_hours,
    }
    prefix = "Urgent" if level == 1 else "Still unacknowledged"
    subject = f"{prefix}: front-line observation #{obs.id} ({obs.product_area}, {category_label(obs.category)})"
    message = compose(
        to=to,
        cc=cc,
        subject=subject,
        text=render_text("email/escalation.txt", **ctx),
        html=render_html("email/escalation.html", **ctx),
        headers={"X-Frontline-Observation": str(obs.id)},
    )
    row = enqueue(session, message, kind="escalation", idempotency_key=f"escalation:{obs.id}:{level}")
    if row is None:
        return False
    obs.escalation_level = max(obs.escalation_level, level)
    obs.escalated_at = utcnow()
    session.add(obs)
    audit.record(
        session,
        actor="frontline" if level == 1 else "flow:escalate-overdue",
        action="observation.escalated",
        subject_type="observation",
        subject_id=obs.id,
        level=level,
        to=to,
        cc=cc,
    )
    return True


def overdue_observations(session: Session, as_of: datetime, sla_hours: float) -> list[Observation]:
    """Urgent observations nobody acknowledged within the SLA that were escalated only once."""
    cutoff = as_of - timedelta(hours=sla_hours)
    return list(
        session.exec(
            select(Observation)
            .where(Observation.urgent == True)  # noqa: E712 - SQL expression
            .where(Observation.ack_state == "new", Observation.escalation_level < 2)
            .where(Observation.created_at <= cutoff)
            .order_by(Observation.id)
        ).all()
    )


def escalate_overdue_observations(session: Session, as_of: datetime | None = None) -> list[int]:
    """Escalate every overdue urgent observation a second time (exactly once each); returns their ids."""
    as_of = as_of or utcnow()
    sla = current_policy().observations.escalation_sla_hours
    done = []
    for obs in overdue_observations(session, as_of, sla):
        if send_escalation(session, obs, level=2):
            done.append(obs.id)
    return done


# ------------------------------------------------------------------------------------ closing the loop


def set_ack_state(
    session: Session, observation_ids: Iterable[int], state: str, by: str, note: str | None = None
) -> list[Observation]:
    """Record that ``by`` acknowledged / planned / fixed / won't fix these observations, audit it, and
    queue a "what happened to your observation" mail to each reporting rotator (one per observation
    and state). Unknown ids or states raise ``ValueError`` before anything is written."""
    from frontline.core.templating import render_html, render_text
    from frontline.mail import compose, enqueue

    if state not in ACK_STATES:
        raise ValueError(f"unknown state {state!r}; expected one of {', '.join(ACK_STATES)}")
    ids = list(dict.fromkeys(int(i) for i in observation_ids))
    rows = {o.id: o for o in session.exec(select(Observation).where(Observation.id.in_(ids))).all()} if ids else {}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise ValueError(f"no observation with id {', '.join(map(str, missing))}")
    note = note.strip() if note and note.strip() else None
    if note:
        note, _counts = redact(note)
    now = utcnow()
    changed = []
    for oid in ids:
        obs = rows[oid]
        previous = obs.ack_state
        obs.ack_state, obs.ack_by, obs.ack_at, obs.ack_note = state, by, now, note
        session.add(obs)
        audit.record(
            session,
            actor=by,
            action="observation.ack",
            subject_type="observation",
            subject_id=obs.id,
            state=state,
            previous=previous,
        )
        rotator = session.get(Employee, obs.rotator_id) if obs.rotator_id else None
        if rotator is not None and rotator.email:
            department = session.get(Department, obs.target_department_id)
            ctx = {
                "obs": obs,
                "rotator": rotator,
                "department": department,
                "state": state,
                "state_label": ACK_STATE_LABELS[state],
                "note": note,
                "category_label": category_label(obs.category),
            }
            message = compose(
                to=rotator.email,
                subject=f"Your observation #{obs.id} was marked {ACK_STATE_LABELS[state].split(':')[0]}",
                text=render_text("email/observation_update.txt", **ctx),
                html=render_html("email/observation_update.html", **ctx),
            )
            enqueue(
                session,
                message,
                kind="observation_update",
                idempotency_key=_update_key(session, obs.id, state, previous),
            )
        changed.append(obs)
    return changed


def _update_key(session: Session, obs_id: int, state: str, previous: str | None) -> str:
    """``observation-update:<id>:<state>`` the first time a state is mailed; the same state set again
    (nothing changed) reuses it, so nothing is queued. A return to a state after another one
    (planned -> won't fix -> planned) is a change: ``...:<state>:<n>``, ``n`` = updates queued so far."""
    from models import OutboundMessage

    key = f"observation-update:{obs_id}:{state}"
    if previous == state:
        return key
    exists = session.exec(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == key)).first()
    if exists is None:
        return key
    n = len(
        session.exec(
            select(OutboundMessage.id).where(
                OutboundMessage.idempotency_key.startswith(f"observation-update:{obs_id}:")
            )
        ).all()
    )
    return f"{key}:{n}"


# ------------------------------------------------------------------------------------ API tokens

API_TOKEN_PREFIX = "flo_"


def create_api_token(session: Session, name: str, employee: Employee | None = None) -> tuple[ApiToken, str]:
    """A new bearer token for ``POST /api/observations``: per rotator (``employee``) or per
    integration (None: each request names the rotator). Returns the row and the secret, which is
    shown once; only its hash is stored."""
    import secrets

    from frontline.core.security import hash_secret
    from models import ApiToken

    name = name.strip()
    if not name:
        raise ValueError("a token needs a name")
    if session.exec(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at == None)).first():  # noqa: E711
        raise ValueError(f"an active token called {name!r} exists; revoke it first or pick another name")
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, employee_id=employee.id if employee else None, token_hash=hash_secret(secret))
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor="cli",
        action="api_token.created",
        subject_type="api_token",
        subject_id=row.id,
        name=name,
        employee=employee.employee_id if employee else None,
    )
    return row, secret


def revoke_api_token(session: Session, name: str) -> int:
    """Revoke every active token called ``name``; returns how many."""
    from models import ApiToken

    rows = session.exec(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at == None)).all()  # noqa: E711
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(
            session, actor="cli", action="api_token.revoked", subject_type="api_token", subject_id=row.id, name=name
        )
    return len(rows)


_TOKEN_BY_HASH = None


def authenticate_api_token(session: Session, secret: str):
    """The active token for ``secret`` (looked up by its hash) as a row (``id``, ``name``,
    ``employee_id``, ``revoked_at``), or None."""
    from frontline.core.security import hash_secret
    from models import ApiToken

    if not secret or len(secret) > 200:
        return None
    global _TOKEN_BY_HASH
    if _TOKEN_BY_HASH is None:  # built once, reused with a bound value (hot path)
        from sqlalchemy import bindparam

        _TOKEN_BY_HASH = select(ApiToken.id, ApiToken.name, ApiToken.employee_id, ApiToken.revoked_at).where(
            ApiToken.token_hash == bindparam("token_hash", type_=ApiToken.__table__.c.token_hash.type)
        )
    row = session.exec(_TOKEN_BY_HASH, params={"token_hash": hash_secret(secret)}).first()
    if row is None or row.revoked_at is not None:
        return None
    return row  # a row with id, name, employee_id, revoked_at
