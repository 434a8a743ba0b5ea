"""What every flow shares: run names, the planning tag, and what a run leaves behind.

* Meaningful Prefect flow-run names: ``<job>-<key parameters>-<organisation date and time>``.
  ``@flow(name="send-digests", flow_run_name=run_name("send-digests", "week", "department"))`` names a run
  ``send-digests-2027-W05-20270208-0700`` instead of Prefect's random ``sweet-grebe``, so the run list in
  the UI and ``frontline status`` read like a log. Parameters that are unset are left out.
* :func:`crash_when_stopped` (under every ``@flow``): a stop is a crash, also when it lands inside Prefect's
  own bookkeeping, so ``prefect flow-run retry`` picks the run up again.
* :func:`report`: the run's artifact (a table or markdown, under a fixed key) and, for the flows whose
  service does not audit itself, its AuditEvent (actor ``flow:<name>``, which ``frontline status`` reads).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from sqlmodel import Session

P = ParamSpec("P")
R = TypeVar("R")

# The run of flows.runner.run_job under way in this context: None inside Prefect or outside any job.
CURRENT_RUN: contextvars.ContextVar[Any] = contextvars.ContextVar("frontline_local_run", default=None)

# Tag on the tasks that write the plan or the pairings (planning, pairing, onboarding): with a
# concurrency limit of 1 on it (``prefect concurrency-limit create frontline-planning 1``) Prefect does not
# start a second one while one runs, whichever deployments they run in. The guarantee is the database's
# planning lock (``models.db.planning_lock``, taken by every writer, also without Prefect): the tag only
# keeps a worker from holding a process that waits for it.
PLANNING_TAG = "frontline-planning"


def retry_when_transient(error: type[Exception]) -> Callable[[Any, Any, Any], bool]:
    """A Prefect ``retry_condition_fn`` for a connector task: an ``error`` retries only when its
    ``transient`` is true (no answer, a server error; a refused login or a bad file will not change in a
    minute); anything else unexpected retries as Prefect would; success never."""

    def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except error as exc:
            return bool(getattr(exc, "transient", False))
        except Exception:  # noqa: BLE001 - anything else unexpected: retry as Prefect would
            return True
        return False

    return worth_retrying


def crash_when_stopped(fn: Callable[P, R]) -> Callable[P, R]:
    """Under ``@flow``: a stop (the worker's SIGTERM, which Prefect raises in the run as
    ``TerminationSignal``) ends the run Crashed, never Failed.

    Prefect marks a run Crashed when the signal reaches the flow as itself. When it lands while Prefect's
    task engine creates a task run (between one task and the next), the engine's own crash handling
    fails with ``ValueError("Task run is not set")``, the signal survives only as that error's context,
    and the run would end Failed: nothing would say it was stopped rather than broken. Here such an
    error gives way to the signal behind it. Anything else is raised unchanged."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            signal = _stop_behind(exc)
            if signal is None:
                raise
            from prefect.exceptions import TerminationSignal

            raise TerminationSignal(signal) from exc

    # Prefect validates parameters against the signature, resolving string annotations in the module of
    # the function it holds: this wrapper's, not ``fn``'s. So give it ``fn``'s signature, resolved.
    run.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    run.crash_when_stopped = True  # type: ignore[attr-defined]  # checked by tests/test_architecture.py
    return run


def _stop_behind(exc: BaseException) -> int | None:
    """The signal of the ``TerminationSignal`` an error was raised while handling (its cause or context),
    if any."""
    from prefect.exceptions import TerminationSignal

    seen: set[int] = set()
    behind: BaseException | None = exc
    while behind is not None and id(behind) not in seen:
        if isinstance(behind, TerminationSignal):
            return behind.signal
        seen.add(id(behind))
        behind = behind.__cause__ or behind.__context__
    return None


def run_name(label: str, *parameters: str) -> Callable[[], str]:
    def name() -> str:
        values: Mapping[str, Any] = {}
        try:
            from prefect.runtime import flow_run

            values = flow_run.parameters or {}
        except Exception:  # noqa: BLE001 - a name must never fail a run
            pass
        return format_run_name(label, parameters, values)

    name.label = label  # type: ignore[attr-defined]  # read by flows.runner to name runs without Prefect
    name.parameters = parameters  # type: ignore[attr-defined]
    return name


def format_run_name(label: str, parameters: Sequence[str], values: Mapping[str, Any]) -> str:
    """``<label>-<values of parameters that are set>-<organisation date and time>``."""
    from datetime import datetime

    parts = [label]
    parts += [str(values[p]) for p in parameters if values.get(p) not in (None, "")]
    try:
        from frontline.core.settings import get_settings

        now = datetime.now(get_settings().tz)
    except Exception:  # noqa: BLE001 - a name must never fail a run
        now = datetime.now()
    parts.append(now.strftime("%Y%m%d-%H%M"))
    return "-".join(p.replace(" ", "_")[:60] for p in parts)


def run_logger() -> Any:
    """Prefect's run logger inside a Prefect flow or task run (its lines reach the server), else the
    ``frontline.jobs`` logger. Never imports Prefect when Prefect is not loaded yet."""
    import logging
    import sys

    if "prefect" in sys.modules:
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            from prefect import get_run_logger

            return get_run_logger()
    return logging.getLogger("frontline.jobs")


# --- what a run leaves behind: one artifact and, for the flows that own it, one AuditEvent ---------


@dataclass(frozen=True)
class Audit:
    """The AuditEvent a flow run leaves: who (``flow:<name>``), what, about what, with which figures."""

    actor: str
    action: str
    details: Mapping[str, Any] = field(default_factory=dict)
    subject_type: str | None = None
    subject_id: str | None = None


def counts_table(counts: Mapping[str, Any], key: str = "what", value: str = "count") -> list[dict[str, Any]]:
    """``{"sent": 3, ...}`` as artifact rows ``[{"what": "sent", "count": 3}, ...]`` (column names as given)."""
    return [{key: k, value: v} for k, v in counts.items()]


def report(
    key: str,
    description: str,
    *,
    table: Sequence[Mapping[str, Any]] | None = None,
    markdown: str | None = None,
    audit: Audit | None = None,
    session: Session | None = None,
) -> None:
    """Leave the run's artifact ``key`` (a ``markdown`` text, else a ``table``) and, with ``audit``, its
    AuditEvent: in ``session`` when given (the same transaction as the work it records), else in a
    transaction of its own."""
    rows = [dict(row) for row in table or []]
    local = CURRENT_RUN.get()
    if local is not None:  # a run without Prefect (flows.runner): it keeps the artifact itself
        local.artifact(key, description, markdown=markdown, table=None if markdown is not None else rows)
    else:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        if markdown is not None:
            create_markdown_artifact(key=key, markdown=markdown, description=description)
        else:
            create_table_artifact(key=key, table=rows, description=description)
    if audit is None:
        return
    if session is not None:
        _record(session, audit)
        return
    from models import session_scope

    with session_scope() as own:
        _record(own, audit)


def _record(session: Session, audit: Audit) -> None:
    from frontline.core.audit import record

    record(
        session,
        actor=audit.actor,
        action=audit.action,
        subject_type=audit.subject_type,
        subject_id=audit.subject_id,
        **audit.details,
    )
