"""Prefect events Frontline emits, so that deployments can react without waiting for a schedule.

``frontline.employee.hired`` (resource ``frontline.employee.<employee_id>``) is emitted for every new
hire created by the roster import or by any other "add employee" path. The ``onboard-new-hire``
deployment in ``prefect.yaml`` has a trigger on it and runs :func:`flows.onboarding.onboard_new_hire`
for that person within seconds (plan, pair, invite, deliver).

Events carry the stable external employee id only: no names, no email addresses (events are kept by
the Prefect server and shown in its UI).

Where no Prefect API is configured and no flow run is active (a plain CLI or web request on a laptop),
nothing is emitted: there is no server to react to it, and starting a temporary one would cost
seconds. The nightly planning run still picks those hires up.
"""

from __future__ import annotations

from collections.abc import Iterable

HIRED = "frontline.employee.hired"
RESOURCE_PREFIX = "frontline.employee."


def resource_id(employee_id: str) -> str:
    return f"{RESOURCE_PREFIX}{employee_id}"


def employee_id_from_resource(resource: str) -> str:
    """``frontline.employee.E123`` -> ``E123`` (a bare id is returned unchanged)."""
    return resource[len(RESOURCE_PREFIX):] if resource.startswith(RESOURCE_PREFIX) else resource


def prefect_api_available() -> bool:
    """True when events would reach a Prefect server: an API URL is configured or a run is active."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value()) or FlowRunContext.get() is not None or TaskRunContext.get() is not None


def emit_new_hires(employee_ids: Iterable[str], *, source: str = "roster-import") -> int:
    """Emit ``frontline.employee.hired`` for each external employee id. Returns how many were emitted."""
    ids = [str(i) for i in employee_ids]
    if not ids or not prefect_api_available():
        return 0
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
