"""Flow ``sync-time-off``: read every out-of-office calendar feed of the policy into absences.

One task per feed and step worth retrying: fetching (network; retried) and applying (one transaction per
feed). A feed that cannot be read or applied writes nothing, records its error for ``frontline status`` and
lets the other feeds go on; the run then fails so the failure shows in Prefect. When new time off overlaps a
live rotation the run re-plans (stable: only what must move moves; announced rotations get their update
from the next invite run). The logic lives in :mod:`frontline.people.time_off`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Failed

from flows import jobs
from flows.common import crash_when_stopped, retry_when_transient, run_name
from frontline.people.time_off import FeedError

ARTIFACT_KEY = jobs.TIME_OFF_ARTIFACT


fetch_task = task(
    name="fetch-time-off-feed",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_when_transient(FeedError),
    cache_policy=NO_CACHE,
)(jobs.fetch_time_off_feed)
apply_task = task(name="apply-time-off-feed", cache_policy=NO_CACHE)(jobs.apply_time_off_feed)


@flow(name="sync-time-off", flow_run_name=run_name("sync-time-off"))
@crash_when_stopped
def sync_time_off(as_of: date | None = None, replan: bool = True) -> dict[str, Any] | State[Any]:
    """Read every calendar feed in the policy's ``[time_off]`` into absences; re-plan when new time off
    overlaps a live rotation."""
    from flows.plan import plan_rotations

    try:
        return jobs.sync_time_off(as_of, replan, fetch=fetch_task, apply=apply_task, replan_with=plan_rotations)
    except jobs.JobFailed as exc:
        return Failed(message=str(exc), data=exc.data)
