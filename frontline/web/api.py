"""JSON API: ``POST /api/observations`` (bearer token per rotator or per integration).

* A **rotator token** (``frontline api-token create --name X --employee E100``) submits as that
  person; the body may omit ``employee_id`` (if given it must match, else 403).
* An **integration token** (no ``--employee``) must name the rotator in ``employee_id`` (the HR id).
* 401 without a valid, unrevoked token; 422 with one entry per field (``loc``, ``msg``, ``type``);
  429 with ``Retry-After`` past the rotator's hourly limit; 413 over 64 KB.
* ``client_request_id`` makes retries safe: resubmitting it returns the first observation (200,
  ``replayed: true``) instead of storing another.

The handler is ``async`` and runs its short database transaction inline on the event loop on purpose:
a submission is a handful of indexed statements (about a millisecond), and running them one at a time
per worker process avoids SQLite writer-lock contention between threads (whose busy-wait back-off
showed as multi-second p99 latencies) and the thread-pool hop per request. Scale with uvicorn workers
(PostgreSQL) rather than threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import bindparam
from sqlmodel import select

from frontline.observations import (
    ObservationConflict,
    ObservationIn,
    RateLimited,
    authenticate_api_token,
    error_list,
    submit,
)
from models import Department, Employee, get_engine, session_scope

router = APIRouter(prefix="/api", tags=["observations"])
# built once and reused with a bound value: the submission path is hot
_EMPLOYEE_BY_HR_ID = select(Employee).where(
    Employee.employee_id == bindparam("hr_id", type_=Employee.__table__.c.employee_id.type)
)
bearer = HTTPBearer(auto_error=False, description="API token from `frontline api-token create`")


class ObservationCreate(ObservationIn):
    employee_id: Optional[str] = Field(
        default=None,
        max_length=100,
        description="HR employee id of the rotator: required with an integration token, optional with a rotator token",
    )


class ObservationOut(BaseModel):
    id: int
    created_at: datetime
    employee_id: str
    text: str = Field(description="As stored, after PII redaction")
    suggestion: Optional[str]
    impact: int
    customer_count: int
    product_area: str
    category: str
    target_department: str
    urgent: bool
    ack_state: str
    redactions: dict[str, int] = Field(description="How many items of each kind were redacted")
    client_request_id: Optional[str]
    replayed: bool = Field(description="True when this answers a repeated client_request_id")


class ErrorEntry(BaseModel):
    loc: list[Any]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[ErrorEntry]


class MessageOut(BaseModel):
    detail: str


@dataclass(frozen=True)
class Caller:
    token_id: int
    token_name: str
    employee_id: Optional[int]  # Employee.id of a rotator token; None for an integration token


async def authenticated(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> Caller:
    """The caller's API token. A dependency, so it is checked before the body is validated: an
    unauthenticated request gets 401, never field errors."""
    unauthorised = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)", headers=unauthorised)
    with session_scope(get_engine()) as session:
        token = authenticate_api_token(session, credentials.credentials)
    if token is None:
        raise HTTPException(401, "unknown or revoked API token", headers=unauthorised)
    return Caller(token.id, token.name, token.employee_id)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _field_error(field: str, message: str, kind: str = "value_error") -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["body", field], "msg": message, "type": kind}]}, status_code=422)


@router.post(
    "/observations",
    status_code=201,
    response_model=ObservationOut,
    summary="Submit a front-line observation",
    responses={
        200: {"model": ObservationOut, "description": "Replay of an earlier client_request_id"},
        401: {"model": MessageOut, "description": "Missing, unknown or revoked token"},
        403: {"model": MessageOut, "description": "A rotator token used for someone else"},
        409: {"model": MessageOut, "description": "client_request_id already used by another rotator"},
        413: {"model": MessageOut, "description": "Body over 64 KB"},
        422: {"model": ValidationErrorOut, "description": "Invalid fields"},
        429: {"model": MessageOut, "description": "Hourly limit reached (see Retry-After)"},
    },
)
async def create_observation(
    body: ObservationCreate,
    response: Response,
    token: Caller = Depends(authenticated),
):
    data = body.model_dump(exclude_unset=True)
    employee_id = data.pop("employee_id", None)
    with session_scope(get_engine()) as session:
        if token.employee_id is not None:
            rotator = session.get(Employee, token.employee_id)
            if employee_id is not None and (rotator is None or rotator.employee_id != employee_id):
                return _error(403, "this token submits only for its own rotator")
        else:
            if not employee_id:
                return _field_error("employee_id", "an integration token must name the rotator (HR employee id)", "missing")
            rotator = session.exec(_EMPLOYEE_BY_HR_ID, params={"hr_id": employee_id}).first()
            if rotator is None:
                return _field_error("employee_id", f"no employee with id {employee_id!r}")
        if rotator is None or not rotator.active:
            return _error(403, "this rotator can no longer submit observations")
        try:
            result = submit(session, rotator, data, "api")
        except ValidationError as exc:
            detail = [{**e, "loc": ["body", *e["loc"]]} for e in error_list(exc)]
            return JSONResponse({"detail": detail}, status_code=422)
        except RateLimited as exc:
            return _error(429, str(exc), {"Retry-After": str(exc.retry_after)})
        except ObservationConflict as exc:
            return _error(409, str(exc))
        obs = result.observation
        if not result.created:
            response.status_code = 200
        department_name = result.department_name or session.get(Department, obs.target_department_id).name
        return ObservationOut(
            id=obs.id,
            created_at=obs.created_at,
            employee_id=rotator.employee_id,
            text=obs.text,
            suggestion=obs.suggestion,
            impact=obs.impact,
            customer_count=obs.customer_count,
            product_area=obs.product_area,
            category=obs.category,
            target_department=department_name,
            urgent=obs.urgent,
            ack_state=obs.ack_state,
            redactions=obs.redactions,
            client_request_id=obs.client_request_id,
            replayed=not result.created,
        )
