"""Prefect events Frontline emits, so that deployments can react without waiting for a schedule.

``frontline.employee.hired`` (resource ``frontline.employee.<employee_id>``) is emitted for every new
hire created by the roster import or by any other "add employee" path. The ``onboard-new-hire``
deployment in ``prefect.yaml`` has a trigger on it and runs :func:`flows.onboarding.onboard_new_hire`
within seconds; that run onboards every pending new hire (plan, pair, invite, deliver), so the runs of many
events coalesce.

Events carry the stable external employee id only: no names, no email addresses (events are kept by
the Prefect server and shown in its UI).

Where no Prefect API is configured and no flow run is active (a plain CLI or web request on a laptop),
nothing is emitted: there is no server to react to it, and starting a temporary one would cost
seconds. The nightly planning run still picks those hires up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING

from frontline.core import clock

if TYPE_CHECKING:
    from sqlmodel import Session

HIRED = "frontline.employee.hired"
RESOURCE_PREFIX = "frontline.employee."


def resource_id(employee_id: str) -> str:
    return f"{RESOURCE_PREFIX}{employee_id}"


def employee_id_from_resource(resource: str) -> str:
    """``frontline.employee.E123`` -> ``E123`` (a bare id is returned unchanged)."""
    return resource[len(RESOURCE_PREFIX) :] if resource.startswith(RESOURCE_PREFIX) else resource


def prefect_api_available() -> bool:
    """True when events would reach a Prefect server: an API URL is configured or a run is active.
    Does not import Prefect when it is not loaded yet (then no run can be active)."""
    if "prefect" not in sys.modules:
        from frontline.core.prefect_api import configured_api_url

        return configured_api_url() is not None
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value()) or FlowRunContext.get() is not None or TaskRunContext.get() is not None


def onboarding_candidates(session: Session, employee_ids: Iterable[str], today: date | None = None) -> list[str]:
    """The ids among ``employee_ids`` that are new hires to onboard now: active, outside the support
    department, never rotated, hired no longer ago than the policy's ``new_hire_within_weeks`` (so the
    first import of a whole company does not "hire" everyone who joined years ago)."""
    from sqlmodel import col, select

    from frontline.core.policy import PolicyError, load_policy
    from models import Department, Employee

    ids = [str(i) for i in employee_ids]
    if not ids:
        return []
    try:
        policy = load_policy()
        support, weeks = policy.support_department, policy.new_hire_within_weeks
    except PolicyError:
        support, weeks = None, 8
    today = today or clock.today()
    earliest = today - timedelta(weeks=weeks)
    rows = session.exec(
        select(Employee.employee_id, Department.name)
        .join(Department, col(Department.id) == col(Employee.department_id))
        .where(
            col(Employee.employee_id).in_(ids),
            col(Employee.active) == True,  # noqa: E712 - SQL expression
            col(Employee.last_rotation).is_(None),
            col(Employee.hire_date) >= earliest,
        )
    ).all()
    keep = {eid for eid, dept in rows if support is None or dept.casefold() != support.casefold()}
    return [i for i in ids if i in keep]


def emit_new_hires(
    employee_ids: Iterable[str], *, source: str = "roster-import", filter_candidates: bool = True
) -> int:
    """Emit ``frontline.employee.hired`` for each external employee id that is a new hire to onboard
    (see :func:`onboarding_candidates`; ``filter_candidates=False`` emits for all). Call it after the
    transaction that created the employees has committed. Returns how many events were emitted."""
    ids = [str(i) for i in employee_ids]
    if not ids or not prefect_api_available():
        return 0
    if filter_candidates:
        from models import session_scope

        with session_scope() as session:
            ids = onboarding_candidates(session, ids)
    if "prefect" not in sys.modules:  # a command's job run (flows.runner): no need for Prefect's client
        return _emit_over_http(ids, source)
    from prefect.events import emit_event

    emitted = 0
    for employee_id in ids:
        event = emit_event(
            event=HIRED,
            resource={"prefect.resource.id": resource_id(employee_id), "prefect.resource.role": "employee"},
            related=[{"prefect.resource.id": f"frontline.source.{source}", "prefect.resource.role": "source"}],
            payload={"employee_id": employee_id, "source": source},
        )
        emitted += event is not None
    return emitted


def _emit_over_http(ids: list[str], source: str) -> int:
    from frontline.core.prefect_api import PrefectApi, configured_api_url

    url = configured_api_url()
    if not ids or url is None:
        return 0
    api = PrefectApi(url)
    try:
        api.emit_events(
            [
                {
                    "event": HIRED,
                    "resource": {"prefect.resource.id": resource_id(i), "prefect.resource.role": "employee"},
                    "related": [
                        {"prefect.resource.id": f"frontline.source.{source}", "prefect.resource.role": "source"}
                    ],
                    "payload": {"employee_id": i, "source": source},
                }
                for i in ids
            ]
        )
    except OSError as exc:  # like Prefect's own emitter: never fail the import that hired them
        import logging

        logging.getLogger(__name__).warning("new-hire events not sent (the nightly planning run plans them): %s", exc)
        return 0
    finally:
        api.close()
    return len(ids)
