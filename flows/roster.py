"""Flow ``import-roster``: read the HR roster CSV files and upsert them (all or nothing).

Thin: the whole import is one task (one transaction; a roster is a single unit of work), the
decisions live in :mod:`frontline.people.roster`. A rejected roster records a markdown artifact listing every
problem and fails the run without writing anything; an accepted one records a table artifact with the
counts. The AuditEvent is written by :func:`frontline.people.roster.apply_roster` in the same transaction.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Failed

from flows import jobs
from flows.common import crash_when_stopped, run_name  # meaningful run names (issue 9)
from frontline.core.errors import RosterError
from frontline.people.roster import ImportResult

ARTIFACT_KEY = jobs.ROSTER_ARTIFACT

apply_roster_task = task(name="apply-roster", cache_policy=NO_CACHE)(jobs.apply_roster)


@flow(name="import-roster", flow_run_name=run_name("import-roster"))
@crash_when_stopped
def import_roster_flow(
    departments: str,
    employees: str,
    absences: str | None = None,
    actor: str = "flow:import-roster",
    allow_leavers: int | None = None,
) -> ImportResult | State[Any]:
    """Import departments.csv, employees.csv and optionally absences.csv (paths) into the database.

    ``allow_leavers`` confirms that up to that many active employees missing from employees.csv are marked
    as left (needed beyond ``policy.roster``'s allowance; see :class:`~frontline.people.roster.LeaversNotConfirmed`).
    A refused roster fails the run (state message lists the problems; calling the flow raises
    :class:`~frontline.people.roster.RosterError`) and writes nothing.
    """
    try:
        return jobs.import_roster(departments, employees, absences, actor, allow_leavers, apply=apply_roster_task)
    except RosterError as exc:
        return Failed(message=str(exc), data=exc)
