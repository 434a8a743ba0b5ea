"""Flow ``escalate_overdue``: urgent observations nobody acknowledged within the policy's SLA
(``observations.escalation_sla_hours``) are escalated a second time, to the target department's digest
recipients and head, exactly once each (outbox key ``escalation:<id>:2``; ``escalation_level`` 2).

One task does the whole pass in one transaction: the work is a handful of rows and a mail each, and a
retry re-runs safely because every step is keyed.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import jobs
from flows.common import crash_when_stopped, run_name

EMPTY_ROW = jobs.ESCALATION_EMPTY_ROW

escalate_batch = task(name="escalate-overdue-observations", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)(
    jobs.escalate_batch
)


@flow(name="escalate-overdue", flow_run_name=run_name("escalate-overdue"))
@crash_when_stopped
def escalate_overdue(as_of: datetime | None = None, dry_run: bool = False) -> dict:
    """Escalate overdue urgent observations once more. Returns ``escalated`` (the observation ids escalated in
    this run, or that would be), ``dry_run`` and ``messages`` (kind, to, subject of the mail queued)."""
    return jobs.escalate_overdue(as_of, dry_run, batch=escalate_batch)
