"""JSON API: ``POST /api/observations`` and ``POST /api/contacts`` (bearer token per rotator or per integration).

* A **rotator token** (``frontline api-token create --name X --employee E100``) submits as that
  person; the body may omit ``employee_id`` (if given it must match, else 403).
* An **integration token** (no ``--employee``) must name the rotator in ``employee_id`` (the HR id).
* 401 without a valid, unrevoked token; 422 with one entry per field (``loc``, ``msg``, ``type``);
  429 with ``Retry-After`` past the rotator's hourly limit; 413 over 64 KB.
* ``client_request_id`` makes retries safe: resubmitting it returns the first observation (200,
  ``replayed: true``) instead of storing another.

Writes go through a **group-commit writer**: per worker process, one asyncio task drains a queue of
submissions and hands up to ``MAX_BATCH`` of them at a time to one dedicated writer thread, which
stores them in one transaction (:func:`submit_batch`: the same validation, redaction, idempotency,
hourly limit, audit events and urgent escalation as one at a time); each request is answered after
the commit (a 201 means the row is committed). One writer per process means no SQLite writer-lock
contention between threads, and while one batch is written the event loop reads and queues the next.
Token lookups are cached by hash for a few seconds (positive answers only); revocation still takes
effect at once because the writing transaction re-checks the token. One worker process is enough on
small machines; on PostgreSQL more workers (each with its own writer) can be added.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.engine import Engine

from frontline.core.security import hash_secret
from frontline.observations.api_tokens import TokenRow, authenticate_api_token
from frontline.observations.contacts import ContactsIn, ContactsRefused, record_contacts_by_token
from frontline.observations.intake import (
    ObservationConflict,
    ObservationIn,
    ObservationOut,
    Pending,
    RateLimited,
    RotatorInactive,
    TokenRevoked,
    UnknownEmployee,
    WrongRotator,
    error_list,
    submit_batch,
)
from models import get_engine, session_scope

router = APIRouter(prefix="/api", tags=["observations"])
bearer = HTTPBearer(auto_error=False, description="API token from `frontline api-token create`")


class ObservationCreate(ObservationIn):
    employee_id: str | None = Field(
        default=None,
        max_length=100,
        description="HR employee id of the rotator: required with an integration token, optional with a rotator token",
    )


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
    token_hash: str
    token_name: str
    employee_id: int | None  # Employee.id of a rotator token; None for an integration token


TOKEN_CACHE_SECONDS = 10.0
_token_cache: dict[tuple[str, str], tuple[float, Caller]] = {}  # (database url, hash) -> (expiry, caller)


def _forget_token(token_hash: str) -> None:
    for key in [k for k in _token_cache if k[1] == token_hash]:
        _token_cache.pop(key, None)


def _lookup(engine: Engine, secret: str) -> TokenRow | None:
    with session_scope(engine) as session:
        return authenticate_api_token(session, secret)


async def authenticated(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Caller:
    """The caller's API token. A dependency, so it is checked before the body is validated: an
    unauthenticated request gets 401, never field errors. Known tokens are cached for a few seconds;
    the writing transaction re-checks that the token is still unrevoked."""
    unauthorised = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)", headers=unauthorised)
    secret = credentials.credentials
    if not secret or len(secret) > 200:
        raise HTTPException(401, "unknown or revoked API token", headers=unauthorised)
    engine = get_engine()
    key = (str(engine.url), hash_secret(secret))
    cached = _token_cache.get(key)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    token = await asyncio.to_thread(_lookup, engine, secret)  # a database read: not in the event loop
    if token is None:
        _token_cache.pop(key, None)
        raise HTTPException(401, "unknown or revoked API token", headers=unauthorised)
    caller = Caller(key[1], token.name, token.employee_id)
    if len(_token_cache) > 10000:
        _token_cache.clear()
    _token_cache[key] = (now + TOKEN_CACHE_SECONDS, caller)
    return caller


MAX_BATCH = 128
_Waiting = tuple[Pending, asyncio.Future[ObservationOut]]  # a queued submission and its request's answer


class GroupCommitWriter:
    """One writer task per event loop: takes queued :class:`Pending` submissions, writes up to
    ``MAX_BATCH`` per transaction with :func:`submit_batch`, and resolves each request's future after
    the commit. If the batch transaction fails as a whole (for instance another process took the same
    ``client_request_id`` between the check and the insert), it is rolled back and its items are
    written again one per transaction, so each gets its own correct answer."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[_Waiting] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None

    async def submit(self, item: Pending) -> ObservationOut:
        loop = asyncio.get_running_loop()
        if self.queue is None or self.loop is not loop or self.task is None or self.task.done():
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._run(self.queue))
        future: asyncio.Future[ObservationOut] = loop.create_future()
        self.queue.put_nowait((item, future))
        return await future

    async def _run(self, queue: asyncio.Queue[_Waiting]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            batch = [(item, future) for item, future in batch if not future.cancelled()]
            if not batch:
                continue
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    _writer_thread(), self._write, [item for item, _future in batch]
                )
            except BaseException as exc:  # never leave a request waiting (e.g. shutdown)
                for _item, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError(f"observation writer stopped: {exc!r}"))
                raise
            for (_item, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    @staticmethod
    def _write(items: list[Pending]) -> list[ObservationOut | Exception]:
        try:
            with session_scope(get_engine()) as session:
                return submit_batch(session, items)
        except Exception:  # noqa: BLE001 - rolled back; each item alone gets its own answer
            return [_one(item) for item in items]


def _one(item: Pending) -> ObservationOut | Exception:
    try:
        with session_scope(get_engine()) as session:
            return submit_batch(session, [item])[0]
    except Exception as exc:  # noqa: BLE001 - handed to the waiting request (500 there)
        return exc


_executor: ThreadPoolExecutor | None = None


def _writer_thread() -> ThreadPoolExecutor:
    """The one thread that writes batches (one writer per process: no lock contention between
    writers; the event loop keeps reading and validating requests while a batch waits for the disk
    or the database server)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="observation-writer")
    return _executor


writer = GroupCommitWriter()


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
    try:
        obs = await writer.submit(Pending(data, "api", token_hash=token.token_hash, employee_hr_id=employee_id))
    except ValidationError as exc:
        detail = [{**e, "loc": ["body", *e["loc"]]} for e in error_list(exc)]
        return JSONResponse({"detail": detail}, status_code=422)
    except TokenRevoked as exc:
        _forget_token(token.token_hash)
        return _error(401, str(exc), {"WWW-Authenticate": "Bearer"})
    except UnknownEmployee as exc:
        return _field_error("employee_id", str(exc), exc.kind)
    except (WrongRotator, RotatorInactive) as exc:
        return _error(403, str(exc))
    except RateLimited as exc:
        return _error(429, str(exc), {"Retry-After": str(exc.retry_after)})
    except ObservationConflict as exc:
        return _error(409, str(exc))
    if obs.replayed:
        response.status_code = 200
    return obs


class ContactsCreate(ContactsIn):
    employee_id: str | None = Field(
        default=None,
        max_length=100,
        description="HR employee id of the rotator: required with an integration token, optional with a rotator token",
    )


class ContactsBatch(BaseModel):
    """Several days (or several rotators, with an integration token) in one request."""

    model_config = {"extra": "forbid"}
    items: list[ContactsCreate] = Field(min_length=1, max_length=500)


class ContactsOut(BaseModel):
    employee_id: str
    day: str
    contacts: int
    by_area: dict[str, int]


@router.post(
    "/contacts",
    status_code=201,
    response_model=list[ContactsOut],
    summary="Record contacts a rotator handled per day (the base of the digest's shares)",
    responses={
        401: {"model": MessageOut, "description": "Missing, unknown or revoked token"},
        403: {"model": MessageOut, "description": "A rotator token used for someone else, or an inactive rotator"},
        422: {"model": ValidationErrorOut, "description": "Invalid fields (nothing is recorded)"},
    },
)
def create_contacts(body: ContactsCreate | ContactsBatch, token: Caller = Depends(authenticated)):
    """One object (``{"day", "contacts", "by_area"?, "employee_id"?}``) or ``{"items": [...]}``. The latest
    record of a (rotator, day) replaces the earlier one, so re-sending an export is safe."""
    from frontline.observations.policy import current_policy

    items = body.items if isinstance(body, ContactsBatch) else [body]
    policy = current_policy()
    out: list[dict[str, Any]] = []
    try:
        with session_scope(get_engine()) as session:
            by_rotator: dict[str | None, list[ContactsCreate]] = {}
            for item in items:
                by_rotator.setdefault(item.employee_id, []).append(item)
            for hr_id, entries in by_rotator.items():
                plain = [ContactsIn(day=e.day, contacts=e.contacts, by_area=e.by_area) for e in entries]
                employee, rows = record_contacts_by_token(session, token.token_hash, hr_id, plain, policy=policy)
                out += [
                    {
                        "employee_id": employee.employee_id,
                        "day": r.day.isoformat(),
                        "contacts": r.contacts,
                        "by_area": r.by_area,
                    }
                    for r in rows
                ]
    except TokenRevoked as exc:
        _forget_token(token.token_hash)
        return _error(401, str(exc), {"WWW-Authenticate": "Bearer"})
    except UnknownEmployee as exc:
        return _field_error("employee_id", str(exc), exc.kind)
    except (WrongRotator, RotatorInactive) as exc:
        return _error(403, str(exc))
    except ContactsRefused as exc:
        return _field_error(exc.field, str(exc))
    return out
