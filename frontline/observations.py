"""Front-line observations: validation, PII redaction at ingestion, storage, rate limits, urgent
escalation, and closing the loop with the rotator when someone acts on an observation.

Everything that accepts an observation (web form, JSON API, CLI, demo) goes through
:func:`submit_observation`; everything that acts on one (acknowledge link, console, digests) goes
through :func:`set_ack_state`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from frontline import audit
from frontline.policy import Policy, load_policy
from frontline.redaction import redact
from models import Department, Employee, MentorPairing, Observation, Rotation, utcnow

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
        from frontline.settings import get_settings

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
    target_department: Optional[str] = Field(
        default=None, max_length=200, description="Department that should hear it (default: suggested from the area)"
    )
    suggestion: Optional[str] = Field(default=None, max_length=HARD_MAX_TEXT, description="Optional suggestion")
    urgent: bool = Field(default=False, description="Needs management attention now")
    client_request_id: Optional[str] = Field(
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
    def _policy_length(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
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
                "unknown_area", "unknown product area {value}; choose one of: {choices}",
                {"value": repr(value), "choices": ", ".join(policy.observations.product_areas)},
            )
        return value

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str, info: ValidationInfo) -> str:
        policy = (info.context or {}).get("policy")
        if policy is not None and value not in policy.observations.categories:
            raise PydanticCustomError(
                "unknown_category", "unknown category {value}; choose one of: {choices}",
                {"value": repr(value), "choices": ", ".join(policy.observations.categories)},
            )
        return value

    @field_validator("target_department")
    @classmethod
    def _known_department(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        departments = (info.context or {}).get("departments")
        if value is not None and departments is not None and value not in departments:
            raise PydanticCustomError(
                "unknown_department", "no department is called {value}", {"value": repr(value)}
            )
        return value


def department_names(session: Session) -> list[str]:
    return list(session.exec(select(Department.name).order_by(Department.name)).all())


def validate_observation(data: ObservationIn | dict[str, Any], policy: Policy, departments: Iterable[str]) -> ObservationIn:
    """Validate against the policy and the departments; raises ``pydantic.ValidationError``."""
    raw = data.model_dump(exclude_unset=True) if isinstance(data, ObservationIn) else data
    return ObservationIn.model_validate(raw, context={"policy": policy, "departments": set(departments)})


def suggested_department(product_area: str, policy: Policy, departments: Iterable[str]) -> Optional[str]:
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


def org_today() -> date:
    from frontline.settings import get_settings

    return utcnow().astimezone(get_settings().tz).date()


def current_rotation(session: Session, employee_id: int, on: date | None = None) -> Optional[Rotation]:
    on = on or org_today()
    return session.exec(
        select(Rotation)
        .where(Rotation.employee_id == employee_id, Rotation.status != "cancelled")
        .where(Rotation.start <= on, Rotation.end >= on)
        .order_by(Rotation.start.desc())
    ).first()


def mentor_for(session: Session, rotation_id: Optional[int]) -> Optional[Employee]:
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


def _intake_facts_statement():
    """Built once (see :func:`_intake_facts`): reusing one statement object with bound parameters
    skips re-building and re-keying a five-subquery SELECT on every submission."""
    from sqlalchemy import bindparam

    crid = bindparam("crid", type_=Observation.__table__.c.client_request_id.type)
    rotator = bindparam("rotator_id", type_=Observation.__table__.c.rotator_id.type)
    since = bindparam("since", type_=Observation.__table__.c.created_at.type)
    today = bindparam("today", type_=Rotation.__table__.c.start.type)
    in_window = (Observation.rotator_id == rotator, Observation.created_at > since)
    return select(
        select(Observation.id).where(Observation.client_request_id == crid).limit(1).scalar_subquery(),
        select(Observation.rotator_id).where(Observation.client_request_id == crid).limit(1).scalar_subquery(),
        select(func.count(Observation.id)).where(*in_window).scalar_subquery(),
        select(func.min(Observation.created_at)).where(*in_window).scalar_subquery(),
        select(Rotation.id)
        .where(Rotation.employee_id == rotator, Rotation.status != "cancelled")
        .where(Rotation.start <= today, Rotation.end >= today)
        .order_by(Rotation.start.desc())
        .limit(1)
        .scalar_subquery(),
    )


_INTAKE_FACTS = None
_DEPARTMENT_IDS = select(Department.name, Department.id)


def _intake_facts(session: Session, rotator_id: int, crid: Optional[str], now: datetime, today: date):
    """One round trip for what a submission must know first: an earlier observation with this
    ``client_request_id`` (id, rotator), the rotator's submissions in the last hour (count, oldest),
    and their current rotation."""
    global _INTAKE_FACTS
    if _INTAKE_FACTS is None:
        _INTAKE_FACTS = _intake_facts_statement()
    params = {"crid": crid or "", "rotator_id": rotator_id, "since": now - timedelta(hours=1), "today": today}
    return session.exec(_INTAKE_FACTS, params=params).one()


def _raise_if_over_limit(count: int, oldest: Optional[datetime], limit: int, now: datetime) -> None:
    if count >= limit:
        if isinstance(oldest, str):  # SQLite may hand back an aggregate's text
            oldest = datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:  # SQLite returns naive UTC
            from datetime import timezone

            oldest = oldest.replace(tzinfo=timezone.utc)
        retry = (oldest + timedelta(hours=1) - now).total_seconds() if oldest else 60
        raise RateLimited(limit, max(1, math.ceil(retry)))


# ------------------------------------------------------------------------------------ submit


@dataclass
class Submission:
    observation: Observation
    created: bool  # False: an idempotent replay of an earlier client_request_id
    department_name: Optional[str] = None  # the target department's name (when already known)


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
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    policy = policy or current_policy()
    raw = data.model_dump(exclude_unset=True) if isinstance(data, ObservationIn) else dict(data)
    crid = raw.get("client_request_id")
    now = utcnow()
    hit_id, hit_rotator, recent_count, oldest, rotation_id = _intake_facts(session, rotator.id, crid, now, org_today())
    if crid and hit_id is not None:
        if hit_rotator != rotator.id:
            raise ObservationConflict(f"client_request_id {crid!r} was already used by someone else")
        return Submission(session.get(Observation, hit_id), False)
    ids_by_name = dict(session.exec(_DEPARTMENT_IDS).all())
    names = departments if departments is not None else list(ids_by_name)
    obs_in = validate_observation(raw, policy, names)
    target_name = obs_in.target_department or suggested_department(obs_in.product_area, policy, names)
    if target_name is None or target_name not in ids_by_name:
        raise _validation_error("target_department", "choose the department that should hear about this")
    department_id = ids_by_name[target_name]
    _raise_if_over_limit(recent_count, oldest, policy.observations.submissions_per_hour, now)

    text, text_counts = redact(obs_in.text)
    suggestion, suggestion_counts = redact(obs_in.suggestion) if obs_in.suggestion else (None, {})
    counts = dict(text_counts)
    for kind, n in suggestion_counts.items():
        counts[kind] = counts.get(kind, 0) + n
    obs = Observation(
        client_request_id=crid,
        rotator_id=rotator.id,
        rotation_id=rotation_id,
        created_at=now,
        text=text,
        suggestion=suggestion,
        impact=obs_in.impact,
        customer_count=obs_in.customer_count,
        product_area=obs_in.product_area,
        category=obs_in.category,
        target_department_id=department_id,
        urgent=obs_in.urgent,
        source=source,
        redactions=counts,
    )
    if not crid:  # no unique key that a concurrent request could take: no savepoint needed
        session.add(obs)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(obs)
                session.flush()
        except IntegrityError:
            earlier = session.exec(select(Observation).where(Observation.client_request_id == crid)).first()
            if earlier is None or earlier.rotator_id != rotator.id:
                raise ObservationConflict(f"client_request_id {crid!r} was already used by someone else") from None
            return Submission(earlier, False)
    audit.record(
        session,
        actor=rotator.email,
        action="observation.submitted",
        subject_type="observation",
        subject_id=obs.id,
        source=source,
        urgent=obs.urgent,
        product_area=obs.product_area,
        category=obs.category,
        target_department=target_name,
        redactions=counts,
    )
    if obs.urgent:
        send_escalation(session, obs, level=1, rotator=rotator)
    return Submission(obs, True, target_name)


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
    from frontline.links import ack_url
    from frontline.mail import compose, enqueue
    from frontline.templating import render_html, render_text

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
    from frontline.mail import compose, enqueue
    from frontline.templating import render_html, render_text

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
            session, actor=by, action="observation.ack", subject_type="observation", subject_id=obs.id,
            state=state, previous=previous,
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
            enqueue(session, message, kind="observation_update", idempotency_key=f"observation-update:{obs.id}:{state}")
        changed.append(obs)
    return changed


# ------------------------------------------------------------------------------------ API tokens

API_TOKEN_PREFIX = "flo_"


def create_api_token(session: Session, name: str, employee: Employee | None = None) -> tuple["ApiToken", str]:
    """A new bearer token for ``POST /api/observations``: per rotator (``employee``) or per
    integration (None: each request names the rotator). Returns the row and the secret, which is
    shown once; only its hash is stored."""
    import secrets

    from frontline.security import hash_secret
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
    audit.record(session, actor="cli", action="api_token.created", subject_type="api_token", subject_id=row.id,
                 name=name, employee=employee.employee_id if employee else None)
    return row, secret


def revoke_api_token(session: Session, name: str) -> int:
    """Revoke every active token called ``name``; returns how many."""
    from models import ApiToken

    rows = session.exec(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at == None)).all()  # noqa: E711
    for row in rows:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(session, actor="cli", action="api_token.revoked", subject_type="api_token", subject_id=row.id,
                     name=name)
    return len(rows)


_TOKEN_BY_HASH = None


def authenticate_api_token(session: Session, secret: str):
    """The active token for ``secret`` (looked up by its hash) as a row (``id``, ``name``,
    ``employee_id``, ``revoked_at``), or None."""
    from frontline.security import hash_secret
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
