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

from flows.common import counts_table, report, run_name  # meaningful run names (issue 9)
from frontline.core.errors import RosterError
from frontline.people.roster import ImportResult

ARTIFACT_KEY = "roster-import"


@task(name="apply-roster", cache_policy=NO_CACHE)
def apply_roster_task(
    departments: str, employees: str, absences: str | None, actor: str, allow_leavers: int | None = None
) -> ImportResult | RosterError:
    """The whole import in one transaction. A refused roster is returned (not raised): it is an answer,
    not a crash, and retrying cannot change it."""
    from frontline.people.roster import import_roster
    from models import session_scope

    try:
        with session_scope() as session:
            return import_roster(session, departments, employees, absences, actor=actor, allow_leavers=allow_leavers)
    except RosterError as exc:
        return exc


@flow(name="import-roster", flow_run_name=run_name("import-roster"))
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
    result = apply_roster_task(departments, employees, absences, actor, allow_leavers)
    if isinstance(result, RosterError):
        lines = "\n".join(f"- `{p}`" for p in result.problems)
        report(
            ARTIFACT_KEY,
            "Roster import refused",
            markdown=f"# Roster import refused\n\n{len(result.problems)} problem(s); nothing was written.\n\n{lines}\n",
        )
        return Failed(message=str(result), data=result)
    report(ARTIFACT_KEY, f"Roster import: {result.summary()}", table=counts_table(result.counts()))
    from frontline.people.events import emit_new_hires

    emit_new_hires(result.new_hire_ids, source="roster-import")  # triggers the onboard-new-hire deployment
    return result
