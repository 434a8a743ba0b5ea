"""Meaningful Prefect flow-run names: ``<job>-<key parameters>-<organisation date and time>``.

``@flow(name="send-digests", flow_run_name=run_name("send-digests", "week", "department"))`` names a run
``send-digests-2027-W05-20270208-0700`` instead of Prefect's random ``sweet-grebe``, so the run list in
the UI and ``frontline status`` read like a log. Parameters that are unset are left out.
"""

from __future__ import annotations

from collections.abc import Callable

# Tag on the tasks that write the plan or the pairings (planning, pairing, onboarding): with a
# concurrency limit of 1 on it (``prefect concurrency-limit create frontline-planning 1``) two of them
# never write at once, whichever deployments they run in.
PLANNING_TAG = "frontline-planning"


def run_name(label: str, *parameters: str) -> Callable[[], str]:
    def name() -> str:
        from datetime import datetime

        parts = [label]
        try:
            from prefect.runtime import flow_run

            values = flow_run.parameters or {}
            parts += [str(values[p]) for p in parameters if values.get(p) not in (None, "")]
        except Exception:  # noqa: BLE001 - a name must never fail a run
            pass
        try:
            from frontline.core.settings import get_settings

            now = datetime.now(get_settings().tz)
        except Exception:  # noqa: BLE001
            now = datetime.now()
        parts.append(now.strftime("%Y%m%d-%H%M"))
        return "-".join(p.replace(" ", "_")[:60] for p in parts)

    return name
