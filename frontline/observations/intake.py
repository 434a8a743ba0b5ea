"""Taking observations in: validation against the policy, PII redaction at ingestion, storage,
idempotency (``client_request_id``) and the per-rotator hourly limit.

Everything that accepts an observation goes through :func:`submit_batch`: the JSON API's group-commit
writer directly (many submissions per transaction), the web form, CLI and demo through
:func:`submit_observation` / :func:`submit` (a batch of one). An urgent observation is escalated at
once (:mod:`frontline.observations.escalation`); acting on one (acknowledge link, console, digests)
goes through :func:`frontline.observations.acknowledgement.set_ack_state`; API tokens live in
:mod:`frontline.observations.api_tokens`.

:func:`submit_batch` runs in named phases, each a function that can be tested alone:

1. :func:`validate_items` (:func:`validate_submission` each): the fields against the policy and the
   departments (pure);
2. :func:`resolve_rotators`: who submits each item (API token or rotator id; revoked, inactive, wrong);
3. :func:`load_history`: what the database already holds for the batch (earlier ``client_request_id``
   rows, submissions in the last hour, current rotations);
4. :func:`plan_batch`: per item, in order: refused rotator, then replay or conflict of a
   ``client_request_id`` (:func:`find_repeat`), then invalid fields, then the hourly limit
   (:func:`check_rate`); the rows to insert, redacted (:func:`row_values`) (pure);
5. :func:`insert_rows`: one multi-row insert;
6. :func:`record_stored`: the answers, one ``observation.submitted`` audit event each, and the
   escalation mail of each urgent one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from frontline.core import clock
from frontline.core.policy import Policy
from frontline.core.security import unstorable_character
from frontline.observations.escalation import send_escalation
from frontline.observations.policy import current_policy
from frontline.observations.redaction import allow_list, redact
from frontline.observations.routing import Router, current_router
from frontline.observations.vocabulary import SOURCES
from models import ApiToken, AuditEvent, Department, Employee, Observation, Rotation, utcnow

HARD_MAX_TEXT = 20000  # schema limit whatever the policy says (the policy limit is usually lower)


# ------------------------------------------------------------------------------------ refusals


class RateLimited(Exception):
    """Too many submissions by one rotator in the last hour; ``retry_after`` seconds until the next."""

    def __init__(self, limit: int, retry_after: int):
        super().__init__(f"at most {limit} observations per hour; try again in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after


class ObservationConflict(Exception):
    """A ``client_request_id`` already used by another rotator."""


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


# every reason one submission of a batch is refused while the others go on
REFUSALS = (
    ValidationError,
    RateLimited,
    ObservationConflict,
    RotatorInactive,
    TokenRevoked,
    WrongRotator,
    UnknownEmployee,
)
WHO_REFUSALS = (TokenRevoked, WrongRotator, UnknownEmployee, RotatorInactive)


# ------------------------------------------------------------------------------------ records


def _policy_of(info: ValidationInfo) -> Policy | None:
    return (info.context or {}).get("policy")


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

    @field_validator("*", mode="before")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        """NUL, other control characters and lone surrogates: a 422 for the field, not a database error."""
        if isinstance(value, str) and (reason := unstorable_character(value)):
            raise PydanticCustomError("unstorable_character", reason)
        return value

    @field_validator("suggestion", "target_department", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("text", "suggestion")
    @classmethod
    def _policy_length(cls, value: str | None, info: ValidationInfo) -> str | None:
        policy = _policy_of(info)
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
        policy = _policy_of(info)
        limit = policy.observations.max_customer_count if policy is not None else 10**6
        if value > limit:
            raise PydanticCustomError("too_large", "must be at most {limit}", {"limit": limit})
        return value

    @field_validator("product_area", "category")
    @classmethod
    def _known_choice(cls, value: str, info: ValidationInfo) -> str:
        policy = _policy_of(info)
        if policy is None:
            return value
        kind, what, choices = {
            "product_area": ("unknown_area", "product area", policy.observations.product_areas),
            "category": ("unknown_category", "category", policy.observations.categories),
        }[info.field_name or ""]
        if value not in choices:
            raise PydanticCustomError(
                kind,
                f"unknown {what} {{value}}; choose one of: {{choices}}",
                {"value": repr(value), "choices": ", ".join(choices)},
            )
        return value

    @field_validator("target_department")
    @classmethod
    def _known_department(cls, value: str | None, info: ValidationInfo) -> str | None:
        departments = (info.context or {}).get("departments")
        if value is not None and departments is not None and value not in departments:
            raise PydanticCustomError("unknown_department", "no department is called {value}", {"value": repr(value)})
        return value


# An observation as stored (text and suggestion after PII redaction), as plain values usable after the
# session is closed: what submit_batch answers for each stored or replayed submission, and what
# POST /api/observations returns (no docstring: it would become the API schema's description).
class ObservationOut(BaseModel):
    id: int
    created_at: datetime
    employee_id: str  # the rotator's HR employee id
    text: str = Field(description="As stored, after PII redaction")
    suggestion: str | None
    impact: int
    customer_count: int
    product_area: str
    category: str
    target_department: str
    urgent: bool
    ack_state: str
    redactions: dict[str, int] = Field(description="How many items of each kind were redacted")
    client_request_id: str | None
    replayed: bool = Field(description="True when this answers a repeated client_request_id")


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


# ------------------------------------------------------------------------------------ validation


def department_names(session: Session) -> list[str]:
    """The departments an observation may be addressed to: the active ones (a department missing from the
    last roster import is deactivated and no longer a target)."""
    return list(
        session.exec(select(Department.name).where(col(Department.active).is_(True)).order_by(col(Department.name)))
    )


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


@dataclass(frozen=True)
class Valid:
    """A submission whose fields passed validation, with the department it goes to."""

    observation: ObservationIn
    target: str  # the department's name: the one chosen, else the suggested one
    routed_by: str = "rotator"  # rotator (chosen) | router (learnt suggestion) | table (policy suggestion)


def validate_submission(
    data: dict[str, Any],
    policy: Policy,
    allowed: Iterable[str],
    department_ids: dict[str, int],
    router: Callable[[], Router | None] | None = None,
) -> Valid:
    """Phase 1: the fields against the policy and the departments ``allowed`` as targets, and the
    department it goes to: the rotator's choice, else the learnt router's suggestion (``router`` gives
    it, loaded only when needed), else the policy table's. Raises ``pydantic.ValidationError``."""
    names = list(allowed)
    obs_in = validate_observation(data, policy, names)
    if obs_in.target_department:
        return Valid(obs_in, obs_in.target_department, "rotator")
    learnt = router() if router is not None else None
    if learnt is not None:
        guess = learnt.suggest(obs_in.text, obs_in.product_area, obs_in.category, department_ids.keys() & set(names))
        if guess is not None:
            return Valid(obs_in, guess, "router")
    target = suggested_department(obs_in.product_area, policy, names)
    if target is None or target not in department_ids:
        raise _validation_error("target_department", "choose the department that should hear about this")
    return Valid(obs_in, target, "table")


def validate_items(items: Sequence[Pending], ctx: BatchContext) -> list[Valid | Exception]:
    """Phase 1 over a batch: per item, its validated fields or the ``ValidationError`` refusing them
    (kept, not raised: a replay of an earlier ``client_request_id`` is answered whatever its fields)."""
    out: list[Valid | Exception] = []
    for item in items:
        try:
            out.append(validate_submission(item.data, ctx.policy, ctx.allowed_targets, ctx.department_ids, ctx.router))
        except ValidationError as exc:
            out.append(exc)
    return out


# ------------------------------------------------------------------------------------ batch: statements


_STORED_COLUMNS = (
    col(Observation.id),
    col(Observation.created_at),
    col(Observation.text),
    col(Observation.suggestion),
    col(Observation.impact),
    col(Observation.customer_count),
    col(Observation.product_area),
    col(Observation.category),
    col(Observation.target_department_id),
    col(Observation.urgent),
    col(Observation.ack_state),
    col(Observation.redactions),
    col(Observation.client_request_id),
    col(Observation.rotator_id),
)


class _BatchStatements:
    """The statements of :func:`submit_batch`, built once and reused with bound values (hot path)."""

    def __init__(self) -> None:
        crids: sa.BindParameter[list[str]] = sa.bindparam("crids", expanding=True)
        ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
        today: sa.BindParameter[date] = sa.bindparam("today", type_=sa.Date())
        self.by_crid = sa.select(*_STORED_COLUMNS).where(col(Observation.client_request_id).in_(crids))
        self.recent = (
            sa.select(
                col(Observation.rotator_id),
                sa.func.count(col(Observation.id)),
                sa.func.min(col(Observation.created_at)),
            )
            .where(col(Observation.rotator_id).in_(ids), col(Observation.created_at) > sa.bindparam("since"))
            .group_by(col(Observation.rotator_id))
        )
        self.rotations = (
            sa.select(col(Rotation.employee_id), col(Rotation.id))
            .where(col(Rotation.employee_id).in_(ids), col(Rotation.status) != "cancelled")
            .where(col(Rotation.start) <= today, col(Rotation.end) >= today)
            .order_by(col(Rotation.employee_id), col(Rotation.start).desc(), col(Rotation.id).desc())
        )
        self.employees = sa.select(
            col(Employee.id), col(Employee.employee_id), col(Employee.email), col(Employee.active)
        ).where(
            sa.or_(
                col(Employee.id).in_(ids),
                col(Employee.employee_id).in_(sa.bindparam("hr_ids", expanding=True)),
            )
        )
        self.tokens = sa.select(col(ApiToken.token_hash), col(ApiToken.employee_id)).where(
            col(ApiToken.token_hash).in_(sa.bindparam("hashes", expanding=True)),
            col(ApiToken.revoked_at).is_(None),
        )
        self.departments = sa.select(col(Department.name), col(Department.id), col(Department.active))
        self.insert = sa.insert(Observation).returning(col(Observation.id), sort_by_parameter_order=True)
        self.audit = sa.insert(AuditEvent)


@cache
def _statements() -> _BatchStatements:
    return _BatchStatements()


# ------------------------------------------------------------------------------------ batch: phases


@dataclass(frozen=True)
class BatchContext:
    """What every phase of one batch shares: one clock reading, the policy and the departments."""

    now: datetime
    today: date
    policy: Policy
    department_ids: dict[str, int]  # name -> id, every department
    allowed_targets: list[str]  # the names a submission may address (the caller's list, else every active one)
    router: Callable[[], Router | None] | None = None  # the learnt router, loaded on first use

    @property
    def department_names(self) -> dict[int, str]:
        return {v: k for k, v in self.department_ids.items()}


def load_context(conn: Connection, policy: Policy, departments: list[str] | None) -> BatchContext:
    rows = conn.execute(_statements().departments).all()
    ids_by_name: dict[str, int] = {r[0]: r[1] for r in rows}
    active = {r[0] for r in rows if r[2]}
    allowed = [d for d in departments if d in active] if departments is not None else sorted(active)
    loaded: list[Router | None] = []

    def router() -> Router | None:
        if not loaded:
            loaded.append(current_router(conn))
        return loaded[0]

    return BatchContext(utcnow(), clock.today(), policy, ids_by_name, allowed, router)


class RotatorRow(NamedTuple):
    """The submitting employee, as the batch reads them."""

    id: int
    employee_id: str  # HR id
    email: str
    active: bool


def rotator_of(
    item: Pending,
    live_tokens: dict[str, int | None],
    by_id: dict[int, RotatorRow],
    by_hr: dict[str, RotatorRow],
) -> RotatorRow:
    """Who submits ``item`` (pure): the token's rotator, the rotator an integration token names, or the
    given rotator id. Raises :class:`TokenRevoked`, :class:`WrongRotator`, :class:`UnknownEmployee` or
    :class:`RotatorInactive`."""
    emp: RotatorRow | None
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
        emp = by_id.get(item.rotator_id) if item.rotator_id is not None else None
    if emp is None or (item.require_active and not emp.active):
        raise RotatorInactive("this rotator can no longer submit observations")
    return emp


def resolve_rotators(conn: Connection, items: Sequence[Pending]) -> list[RotatorRow | Exception]:
    """Phase 2: per item, the submitting employee or the exception refusing the item. Tokens are read
    again here, in the writing transaction, so a revocation takes effect at once."""
    st = _statements()
    hashes = sorted({i.token_hash for i in items if i.token_hash})
    live_tokens: dict[str, int | None] = (
        {r[0]: r[1] for r in conn.execute(st.tokens, {"hashes": hashes}).all()} if hashes else {}
    )
    want_ids = {i.rotator_id for i in items if i.rotator_id is not None} | {e for e in live_tokens.values() if e}
    want_hr = {i.employee_hr_id for i in items if i.employee_hr_id}
    by_id: dict[int, RotatorRow] = {}
    by_hr: dict[str, RotatorRow] = {}
    for row in conn.execute(st.employees, {"ids": sorted(want_ids), "hr_ids": sorted(want_hr)}).all():
        emp = RotatorRow(*row)
        by_id[emp.id] = by_hr[emp.employee_id] = emp
    who: list[RotatorRow | Exception] = []
    for item in items:
        try:
            who.append(rotator_of(item, live_tokens, by_id, by_hr))
        except WHO_REFUSALS as exc:
            who.append(exc)
    return who


@dataclass
class History:
    """What the database holds for a batch before it is written."""

    earlier: dict[str, Any]  # client_request_id -> stored row (the columns of _STORED_COLUMNS)
    recent: dict[int, tuple[int, datetime | None]]  # rotator id -> (submissions in the last hour, oldest)
    rotation_of: dict[int, int]  # rotator id -> their current rotation's id


def _request_id(item: Pending) -> str | None:
    return item.data.get("client_request_id") or None


def load_history(
    conn: Connection, items: Sequence[Pending], who: Sequence[RotatorRow | Exception], now: datetime, today: date
) -> History:
    """Phase 3: earlier rows with the batch's ``client_request_id`` values, each rotator's submissions in
    the hour before ``now``, and each rotator's rotation on ``today``."""
    st = _statements()
    rotator_ids = sorted({e.id for e in who if isinstance(e, RotatorRow)})
    crids = sorted({crid for crid in map(_request_id, items) if crid})
    earlier = {row.client_request_id: row for row in conn.execute(st.by_crid, {"crids": crids}).all()} if crids else {}
    recent = {
        r[0]: (r[1], clock.aware(r[2]))
        for r in conn.execute(st.recent, {"ids": rotator_ids, "since": now - timedelta(hours=1)}).all()
    }
    rotation_of: dict[int, int] = {}
    for employee_id, rotation_id in conn.execute(st.rotations, {"ids": rotator_ids, "today": today}).all():
        rotation_of.setdefault(employee_id, rotation_id)
    return History(earlier, recent, rotation_of)


def stored_from_row(row: Any, employee_hr_id: str, department_names: dict[int, str]) -> ObservationOut:
    """The answer to a replay: the stored row (the columns of the batch's lookup) as plain values."""
    created_at = clock.aware(row.created_at)
    assert created_at is not None  # a NOT NULL column
    return ObservationOut.model_construct(
        id=row.id,
        created_at=created_at,
        employee_id=employee_hr_id,
        text=row.text,
        suggestion=row.suggestion,
        impact=row.impact,
        customer_count=row.customer_count,
        product_area=row.product_area,
        category=row.category,
        target_department=department_names.get(row.target_department_id, ""),
        urgent=bool(row.urgent),
        ack_state=row.ack_state,
        redactions=dict(row.redactions or {}),
        client_request_id=row.client_request_id,
        replayed=True,
    )


@dataclass(frozen=True)
class SameAs:
    """A repeat, within one batch, of the ``client_request_id`` an earlier item of the batch stores."""

    index: int


def find_repeat(
    crid: str | None,
    emp: RotatorRow,
    earlier: dict[str, Any],
    claimed: dict[str, int],
    who: Sequence[RotatorRow | Exception],
    department_names: dict[int, str],
) -> ObservationOut | SameAs | None:
    """Dedupe (pure): a ``client_request_id`` stored before (a replay of that row) or claimed by an
    earlier item of this batch (:class:`SameAs`) by the same rotator; None for a new one. Raises
    :class:`ObservationConflict` when another rotator used it."""
    if not crid:
        return None
    if crid in earlier:
        row = earlier[crid]
        if row.rotator_id != emp.id:
            raise ObservationConflict(f"client_request_id {crid!r} was already used by someone else")
        return stored_from_row(row, emp.employee_id, department_names)
    if crid in claimed:
        first = who[claimed[crid]]
        if not isinstance(first, RotatorRow) or first.id != emp.id:
            raise ObservationConflict(f"client_request_id {crid!r} was already used by someone else")
        return SameAs(claimed[crid])
    return None


def check_rate(count: int, oldest: datetime | str | None, limit: int, now: datetime) -> None:
    """Rate limit (pure): raises :class:`RateLimited` when ``count`` submissions in the last hour (the
    oldest at ``oldest``) already reach ``limit``."""
    if count >= limit:
        if isinstance(oldest, str):  # SQLite may hand back an aggregate's text
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:  # SQLite returns naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        retry = (oldest + timedelta(hours=1) - now).total_seconds() if oldest else 60
        raise RateLimited(limit, max(1, math.ceil(retry)))


def row_values(item: Pending, valid: Valid, emp: RotatorRow, ctx: BatchContext, rotation_id: int | None) -> dict:
    """The row to insert for an accepted item (pure): text and suggestion redacted, the redaction
    counts (never the values) kept."""
    obs_in = valid.observation
    allow = allow_list(tuple(ctx.policy.redaction.allow))
    text, text_counts = redact(obs_in.text, allow)
    suggestion, suggestion_counts = redact(obs_in.suggestion, allow) if obs_in.suggestion else (None, {})
    counts = dict(text_counts)
    for kind, n in suggestion_counts.items():
        counts[kind] = counts.get(kind, 0) + n
    return {
        "client_request_id": _request_id(item),
        "rotator_id": emp.id,
        "rotation_id": rotation_id,
        "created_at": ctx.now,
        "text": text,
        "suggestion": suggestion,
        "impact": obs_in.impact,
        "customer_count": obs_in.customer_count,
        "product_area": obs_in.product_area,
        "category": obs_in.category,
        "target_department_id": ctx.department_ids[valid.target],
        "routed_by": valid.routed_by,
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


@dataclass
class Placed:
    """An item of the batch that will be stored."""

    index: int
    values: dict[str, Any]
    target: str  # the department's name


Result = ObservationOut | Exception | SameAs | None


@dataclass
class BatchPlan:
    """What a batch will do: per item a result so far (a replay, a refusal, a :class:`SameAs`, or None
    for an item still to be stored), and the items to store, in order."""

    results: list[Result]
    placed: list[Placed] = field(default_factory=list)


def plan_batch(
    items: Sequence[Pending],
    who: Sequence[RotatorRow | Exception],
    valid: Sequence[Valid | Exception],
    history: History,
    ctx: BatchContext,
) -> BatchPlan:
    """Phase 4 (pure): decide each item in order. The same rules as one-at-a-time submission hold
    inside the batch: a refused rotator first, then a ``client_request_id`` seen earlier (a replay or a
    conflict), then invalid fields, then the hourly limit, which counts the rotator's stored
    submissions plus those accepted earlier in the batch (``history.recent`` is updated)."""
    plan = BatchPlan([None] * len(items))
    claimed: dict[str, int] = {}  # client_request_id -> index of the item of this batch storing it
    names = ctx.department_names
    limit = ctx.policy.observations.submissions_per_hour
    for index, item in enumerate(items):
        try:
            emp, checked = who[index], valid[index]
            if isinstance(emp, Exception):
                raise emp
            crid = _request_id(item)
            repeat = find_repeat(crid, emp, history.earlier, claimed, who, names)
            if repeat is not None:
                plan.results[index] = repeat
                continue
            if isinstance(checked, Exception):
                raise checked
            count, oldest = history.recent.get(emp.id, (0, None))
            check_rate(count, oldest, limit, ctx.now)
            values = row_values(item, checked, emp, ctx, history.rotation_of.get(emp.id))
            history.recent[emp.id] = (count + 1, oldest or ctx.now)
            if crid:
                claimed[crid] = index
            plan.placed.append(Placed(index, values, checked.target))
        except REFUSALS as exc:
            plan.results[index] = exc
    return plan


def insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Phase 5: insert the rows in one statement; their new ids, in order. A concurrent writer that
    stored the same ``client_request_id`` since :func:`load_history` makes this raise ``IntegrityError``."""
    if not rows:
        return []
    return [r[0] for r in conn.execute(_statements().insert, rows).all()]


def stored_answer(placed: Placed, new_id: int, emp: RotatorRow, now: datetime) -> ObservationOut:
    values = placed.values
    return ObservationOut.model_construct(
        id=new_id,
        created_at=now,
        employee_id=emp.employee_id,
        text=values["text"],
        suggestion=values["suggestion"],
        impact=values["impact"],
        customer_count=values["customer_count"],
        product_area=values["product_area"],
        category=values["category"],
        target_department=placed.target,
        urgent=values["urgent"],
        ack_state="new",
        redactions=values["redactions"],
        client_request_id=values["client_request_id"],
        replayed=False,
    )


def audit_values(placed: Placed, new_id: int, item: Pending, emp: RotatorRow, now: datetime) -> dict[str, Any]:
    """The ``observation.submitted`` audit event of a stored observation: what and where, never the text
    or the redacted values."""
    values = placed.values
    return {
        "at": now,
        "actor": emp.email,
        "action": "observation.submitted",
        "subject_type": "observation",
        "subject_id": str(new_id),
        "reason": None,
        "details": {
            "source": item.source,
            "urgent": values["urgent"],
            "product_area": values["product_area"],
            "category": values["category"],
            "target_department": placed.target,
            "routed_by": values["routed_by"],
            "redactions": values["redactions"],
        },
    }


def record_stored(
    session: Session,
    conn: Connection,
    items: Sequence[Pending],
    who: Sequence[RotatorRow | Exception],
    plan: BatchPlan,
    new_ids: list[int],
    now: datetime,
) -> None:
    """Phase 6: the answer of every stored item in ``plan.results``, one audit event each (one insert),
    and the escalation mail of each urgent one."""
    if not plan.placed:
        return
    audits = []
    for placed, new_id in zip(plan.placed, new_ids, strict=True):
        emp = who[placed.index]
        assert isinstance(emp, RotatorRow)  # placed items have a rotator
        plan.results[placed.index] = stored_answer(placed, new_id, emp, now)
        audits.append(audit_values(placed, new_id, items[placed.index], emp, now))
    conn.execute(_statements().audit, audits)
    for placed, new_id in zip(plan.placed, new_ids, strict=True):
        if placed.values["urgent"]:
            emp = who[placed.index]
            assert isinstance(emp, RotatorRow)
            obs = session.get(Observation, new_id)
            assert obs is not None  # inserted above, in this transaction
            send_escalation(session, obs, level=1, rotator=session.get(Employee, emp.id))


def answer_repeats(results: list[Result]) -> list[ObservationOut | Exception]:
    """A repeat within the batch gets the answer of the item it repeats, as a replay."""
    out: list[ObservationOut | Exception] = []
    for result in results:
        if isinstance(result, SameAs):
            first = results[result.index]
            assert isinstance(first, ObservationOut | Exception)  # decided before its repeats
            result = first if isinstance(first, Exception) else first.model_copy(update={"replayed": True})
        assert result is not None  # every item was decided
        out.append(result)
    return out


# ------------------------------------------------------------------------------------ submit


def submit_batch(
    session: Session,
    items: list[Pending],
    *,
    policy: Policy | None = None,
    departments: list[str] | None = None,
) -> list[ObservationOut | Exception]:
    """Validate, redact and store several submissions in the session's transaction (group commit):
    one result per item, in order, either :class:`ObservationOut` or the exception that refused it
    (``pydantic.ValidationError``, :class:`RateLimited`, :class:`ObservationConflict`,
    :class:`RotatorInactive`, :class:`TokenRevoked`, :class:`WrongRotator`, :class:`UnknownEmployee`).
    Refused items write nothing. The phases are listed in the module's docstring.

    Every stored observation gets its ``observation.submitted`` audit event in the same transaction, and
    an urgent one its escalation mail. A concurrent writer taking the same ``client_request_id`` makes
    the insert raise ``IntegrityError`` (the caller retries the items one by one: they then come back
    as replays)."""
    for item in items:
        if item.source not in SOURCES:
            raise ValueError(f"unknown source {item.source!r}")
    policy = policy or current_policy()
    session.flush()  # the statements below run on the session's connection, without autoflush
    conn = session.connection()
    ctx = load_context(conn, policy, departments)
    valid = validate_items(items, ctx)
    who = resolve_rotators(conn, items)
    history = load_history(conn, items, who, ctx.now, ctx.today)
    plan = plan_batch(items, who, valid, history, ctx)
    new_ids = insert_rows(conn, [placed.values for placed in plan.placed])
    record_stored(session, conn, items, who, plan, new_ids, ctx.now)
    return answer_repeats(plan.results)


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
    observation = session.get(Observation, result.id)
    if observation is None:  # cannot happen: the row was written or read in this transaction
        raise LookupError(f"observation #{result.id} vanished")
    return Submission(observation, not result.replayed, result.target_department)


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
