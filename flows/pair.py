"""Flows ``pair-mentors`` and ``send-surveys``.

Thin: the decisions live in :mod:`frontline.mentors.service` (the optimiser in :mod:`frontline.mentors.solver`)
and :mod:`frontline.mentors.surveys`. ``pair-mentors`` is one task (the whole horizon is optimised at once, in one transaction) and records
a table artifact with the summary and the unmatched rotators; re-running it keeps every valid pairing,
so it creates nothing twice. ``send-surveys`` queues the wrap-up surveys of pairings in their last week
(idempotency key ``survey:<pairing>:<role>``).
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import jobs
from flows.common import PLANNING_TAG, crash_when_stopped, run_name

pair_horizon = task(
    name="pair-horizon", retries=1, retry_delay_seconds=[10], cache_policy=NO_CACHE, tags=[PLANNING_TAG]
)(jobs.pair_horizon)


@flow(name="pair-mentors", flow_run_name=run_name("pair-mentors", "as_of"))
@crash_when_stopped
def pair_mentors(as_of: date | None = None, dry_run: bool = False) -> dict:
    """Pair every planned rotation of the next 52 weeks with a mentor; re-pair only what must change."""
    return jobs.pair_mentors(as_of, dry_run, pair=pair_horizon)


survey_batch = task(name="survey-batch", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)(
    jobs.survey_batch
)


@flow(name="send-surveys", flow_run_name=run_name("send-surveys", "as_of"))
@crash_when_stopped
def send_surveys(as_of: date | None = None) -> dict:
    """Queue the two-question wrap-up survey to rotator and mentor of every pairing in its last week."""
    return jobs.send_surveys(as_of, batch=survey_batch)
