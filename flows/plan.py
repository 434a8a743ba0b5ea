"""Flow ``plan_rotations``: plan every rotation of the horizon (default: 52 weeks from next Monday).

One task loads the roster and solves (the whole plan is one optimisation, so it is one unit worth
retrying; it writes in one transaction, and re-running for the same inputs changes nothing). The run
leaves three table artifacts, the plan summary, its changes (who, from, to, why) and the per-week load, plus the PlanRun row and the audit
events written by :func:`frontline.rotations.service.plan_rotations`.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.common import PLANNING_TAG, report, run_name


@task(name="plan-solve", retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE, tags=[PLANNING_TAG])
def solve_plan(start: date | None, weeks: int, dry_run: bool) -> dict:
    from frontline.core.policy import load_policy
    from frontline.rotations.service import plan_rotations as plan
    from models import session_scope

    policy = load_policy()
    with session_scope() as session:
        result = plan(session, policy, start=start, weeks=weeks, dry_run=dry_run, actor="flow:plan-rotations")
    return {
        "summary": result.summary(),
        "unplaced": result.unplaced,
        "week_load": result.week_load,
        "changes": result.changes,
    }


@flow(name="plan-rotations", flow_run_name=run_name("plan-rotations", "start"))
def plan_rotations(start: date | None = None, weeks: int = 52, dry_run: bool = False) -> dict:
    """Plan rotations from the Monday on or after ``start`` (default today) for ``weeks`` weeks."""
    out = solve_plan(start, weeks, dry_run)
    s = out["summary"]
    rows = [
        {"figure": k, "value": s.get(k)}
        for k in (
            "horizon_start",
            "weeks",
            "dry_run",
            "planned",
            "new_hires",
            "late",
            "unplaced_count",
            "created",
            "moved",
            "kept",
            "removed",
            "fixed",
            "objective",
            "lower_bound",
            "gap",
            "solve_seconds",
        )
    ]
    gap = "n/a" if s.get("gap") is None else f"{100 * s['gap']:.3f}%"
    report(
        "rotation-plan",
        f"Rotation plan from {s['horizon_start']}: {s['planned']} planned, {s['unplaced_count']} unplaced, gap {gap}",
        table=rows,
    )
    report(
        "rotation-plan-changes",
        "What this run changed (or would change): who, from, to, why",
        table=[
            {k: c.get(k) for k in ("employee_id", "name", "action", "old_start", "new_start", "why")}
            for c in out["changes"]
        ]
        or [
            {
                "employee_id": "-",
                "name": "-",
                "action": "nothing changed",
                "old_start": "-",
                "new_start": "-",
                "why": "-",
            }
        ],
    )
    report(
        "rotation-plan-week-load",
        "People starting and on rotation per week (including locked rotations) against the seats",
        table=out["week_load"] or [{"week": "-", "starts": 0, "on_rotation": 0, "seats": 0}],
    )
    return out
