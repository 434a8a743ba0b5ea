"""Flow ``send_digests``: queue each department's weekly digest (scheduled Mondays 07:00, organisation
time, for the ISO week that just ended).

One task computes the week's themes once (all departments, stored on the observations); then one task
per batch of departments renders and queues their digests. Every message has the outbox key
``digest:<department>:<week>:<recipient>``, so a retried task or a re-run flow queues nothing twice.
The run leaves a table artifact (department, observations, themes, queued/skipped) and an audit event.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import jobs
from flows.common import crash_when_stopped, run_name

BATCH_SIZE = jobs.DIGEST_BATCH

assign_themes = task(name="digest-themes", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)(jobs.assign_themes)
queue_batch = task(name="digest-batch", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)(
    jobs.queue_digest_batch
)


@flow(name="send-digests", flow_run_name=run_name("send-digests", "week", "department"))
@crash_when_stopped
def send_digests(week: str | None = None, department: str | None = None) -> list[dict]:
    """Queue the digests for ``week`` (ISO ``2027-W05``; default: last completed week) for every
    department, or only ``department`` (name). Returns one row per department."""
    return jobs.send_digests(week, department, themes_step=assign_themes, batch=queue_batch)
