"""Flow ``plan_rotations``: plan every rotation of the horizon (default: 52 weeks from next Monday).

One task loads the roster and solves (the whole plan is one optimisation, so it is one unit worth
retrying; it writes in one transaction, and re-running for the same inputs changes nothing). The run
leaves two table artifacts, the plan summary and the per-week load, plus the PlanRun row and the audit
events written by :func:`frontline.rotations.service.plan_rotations`.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import jobs
from flows.common import PLANNING_TAG, crash_when_stopped, run_name

solve_plan = task(name="plan-solve", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE, tags=[PLANNING_TAG])(
    jobs.solve_plan
)


@flow(name="plan-rotations", flow_run_name=run_name("plan-rotations", "start"))
@crash_when_stopped
def plan_rotations(start: date | None = None, weeks: int = 52, dry_run: bool = False) -> dict:
    """Plan rotations from the Monday on or after ``start`` (default today) for ``weeks`` weeks."""
    return jobs.plan_rotations(start, weeks, dry_run, solve=solve_plan)
