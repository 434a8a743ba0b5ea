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

from flows.common import Audit, report, run_name

BATCH_SIZE = 50


@task(name="digest-themes", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def assign_themes(week: str) -> dict:
    from frontline.digests.loading import compute_themes
    from models import session_scope

    with session_scope() as session:
        return compute_themes(session, week, persist=True)


@task(name="digest-batch", retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)
def queue_batch(week: str, department_ids: list[int], themes: dict) -> list[dict]:
    from frontline.digests.queue import queue_digests
    from models import session_scope

    with session_scope() as session:
        return [o.row() for o in queue_digests(session, week, department_ids=department_ids, themes=themes)]


@flow(name="send-digests", flow_run_name=run_name("send-digests", "week", "department"))
def send_digests(week: str | None = None, department: str | None = None) -> list[dict]:
    """Queue the digests for ``week`` (ISO ``2027-W05``; default: last completed week) for every
    department, or only ``department`` (name). Returns one row per department."""
    from frontline.digests.loading import all_department_ids, department_ids_named
    from frontline.digests.weeks import last_completed_week, parse_week
    from models import session_scope

    week = week or last_completed_week()
    parse_week(week)
    with session_scope() as session:
        ids = department_ids_named(session, department) or all_department_ids(session)
    themes = assign_themes(week)
    rows: list[dict] = []
    for i in range(0, len(ids), BATCH_SIZE):
        rows.extend(queue_batch(week, ids[i : i + BATCH_SIZE], themes))
    queued = sum(int(r["status"].split()[1]) for r in rows if r["status"].startswith("queued"))
    report(
        "digests",
        f"Weekly digests for {week}: {queued} message(s) queued, {len(rows)} department(s)",
        table=rows or [{"department": "-", "observations": 0, "themes": 0, "status": "no departments"}],
        audit=Audit(
            "flow:send-digests",
            "digests.send",
            {"departments": len(rows), "queued": queued},
            subject_type="week",
            subject_id=week,
        ),
    )
    return rows
