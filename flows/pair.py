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

from flows.common import PLANNING_TAG, counts_table, report, run_name
from frontline.core import clock


@task(name="pair-horizon", retries=1, retry_delay_seconds=[10], cache_policy=NO_CACHE, tags=[PLANNING_TAG])
def pair_horizon(as_of: date, dry_run: bool) -> dict:
    from frontline.core.policy import load_policy
    from frontline.mentors.service import pair_mentors as pair
    from models import session_scope

    policy = load_policy()
    with session_scope() as session:
        result = pair(session, policy, as_of=as_of, actor="flow:pair-mentors", dry_run=dry_run)
        if dry_run:
            session.rollback()
    return {
        "summary": result.summary(),
        "unmatched": result.unmatched,
        "replaced": result.replaced,
        "created": result.created,
    }


@flow(name="pair-mentors", flow_run_name=run_name("pair-mentors", "as_of"))
def pair_mentors(as_of: date | None = None, dry_run: bool = False) -> dict:
    """Pair every planned rotation of the next 52 weeks with a mentor; re-pair only what must change."""
    as_of = as_of or clock.today()
    out = pair_horizon(as_of, dry_run)
    s = out["summary"]
    table = [{"what": k, "value": "" if v is None else str(v)} for k, v in s.items()]
    table += [
        {
            "what": f"unmatched: {u['rotator']} ({u['start']})",
            "value": u["reason"] + (f"; {u['relaxation']}" if u["relaxation"] else ""),
        }
        for u in out["unmatched"]
    ]
    table += [
        {"what": f"replaced: {r['old_mentor']} for {r['rotator']}", "value": r["reason"]} for r in out["replaced"]
    ]
    report("pair-mentors", f"Mentor pairing as of {as_of}", table=table)
    return out


@task(name="survey-batch", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def survey_batch(as_of: date) -> dict:
    from frontline.mentors.surveys import queue_surveys
    from models import session_scope

    with session_scope() as session:
        return queue_surveys(session, as_of, actor="flow:send-surveys")


@flow(name="send-surveys", flow_run_name=run_name("send-surveys", "as_of"))
def send_surveys(as_of: date | None = None) -> dict:
    """Queue the two-question wrap-up survey to rotator and mentor of every pairing in its last week."""
    as_of = as_of or clock.today()
    counts = survey_batch(as_of)
    report("send-surveys", f"Wrap-up surveys as of {as_of}", table=counts_table(counts))
    return counts
