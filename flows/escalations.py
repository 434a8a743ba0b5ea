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

from flows.common import Audit, report, run_name

EMPTY_ROW = {"observation": "-", "department": "-", "created_at": "-", "product_area": "-"}


@task(name="escalate-overdue-observations", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def escalate_batch(as_of_iso: str | None, dry_run: bool = False) -> dict:
    """Escalate, then leave the ``escalations`` artifact and the audit event in the same transaction
    (a dry run escalates, lists the mail it queued and rolls everything back)."""
    from frontline.mail.outbox import recording
    from frontline.observations.escalation import escalate_overdue_observations, escalation_summary
    from models import session_scope, utcnow

    as_of = datetime.fromisoformat(as_of_iso) if as_of_iso else utcnow()
    with session_scope() as session, recording() as queued:
        ids = escalate_overdue_observations(session, as_of)
        rows = escalation_summary(session, ids)
        if dry_run:
            session.rollback()
        report(
            "escalations",
            f"Second escalation of {len(rows)} unacknowledged urgent observation(s)"
            + (" - dry run, nothing queued" if dry_run else ""),
            table=rows or [EMPTY_ROW],
            audit=None
            if dry_run
            else Audit(
                "flow:escalate-overdue",
                "observations.escalate_overdue",
                {"as_of": as_of.isoformat(), "escalated": len(ids)},
            ),
            session=session,
        )
    return {"rows": rows, "messages": queued}


@flow(name="escalate-overdue", flow_run_name=run_name("escalate-overdue"))
def escalate_overdue(as_of: datetime | None = None, dry_run: bool = False) -> dict:
    """Escalate overdue urgent observations once more. Returns ``escalated`` (the observation ids escalated in
    this run, or that would be), ``dry_run`` and ``messages`` (kind, to, subject of the mail queued)."""
    if as_of is not None and as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    out = escalate_batch(as_of.isoformat() if as_of else None, dry_run)
    return {"escalated": [r["observation"] for r in out["rows"]], "dry_run": dry_run, "messages": out["messages"]}
