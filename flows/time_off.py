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

from flows.common import Audit, report, run_name
from frontline.core.policy import TimeOff, TimeOffFeed
from frontline.people.time_off import FeedError, TimeOffResult, source_of

ARTIFACT_KEY = "time-off-sync"


def _worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry a fetch that got no answer or a server error; a 404 or a bad file will not change in a minute."""
    try:
        state.result()
    except FeedError as exc:
        return exc.transient
    except Exception:  # noqa: BLE001 - anything else unexpected: retry as Prefect would
        return True
    return False


@task(
    name="fetch-time-off-feed",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_worth_retrying,
    cache_policy=NO_CACHE,
)
def fetch_task(feed: TimeOffFeed, settings: TimeOff) -> bytes:
    from frontline.people.time_off import fetch_feed

    return fetch_feed(feed, settings)


@task(name="apply-time-off-feed", cache_policy=NO_CACHE)
def apply_task(feed: TimeOffFeed, data: bytes, settings: TimeOff, today: date) -> TimeOffResult:
    from frontline.core.clock import org_tz, utcnow
    from frontline.operations.connectors import record_success
    from frontline.people.time_off import apply_feed, read_calendar
    from models import session_scope

    calendar = read_calendar(data, feed.name)
    with session_scope() as session:
        result = apply_feed(session, feed, calendar, today, settings, org_tz())
        record_success(session, source_of(feed), result.summary(), utcnow())
        return result


def _record_failure(feed: TimeOffFeed, message: str) -> None:
    from frontline.core.clock import utcnow
    from frontline.operations.connectors import record_failure
    from models import session_scope

    with session_scope() as session:
        record_failure(session, source_of(feed), message, utcnow())


@flow(name="sync-time-off", flow_run_name=run_name("sync-time-off"))
def sync_time_off(as_of: date | None = None, replan: bool = True) -> dict[str, Any] | State[Any]:
    """Read every calendar feed in the policy's ``[time_off]`` into absences; re-plan when new time off
    overlaps a live rotation."""
    from frontline.core.clock import today
    from frontline.core.policy import load_policy

    policy = load_policy()
    day = as_of or today()
    results: list[TimeOffResult] = []
    errors: list[str] = []
    for feed in policy.time_off.feeds:
        try:
            data = fetch_task(feed, policy.time_off)
            results.append(apply_task(feed, data, policy.time_off, day))
        except FeedError as exc:
            errors.append(str(exc))
            _record_failure(feed, str(exc))
    affected = sorted({r for res in results for r in res.affected_rotations})
    replanned: dict[str, Any] | None = None
    if affected and replan:
        from flows.plan import plan_rotations

        replanned = plan_rotations(start=day)
    rows = [
        {
            "feed": r.feed,
            "events": r.events,
            "people": r.people,
            "absences": r.absences,
            "added": r.added,
            "removed": r.removed,
            "unmatched": len(r.unmatched),
            "rotations_overlapping": len(r.affected_rotations),
        }
        for r in results
    ] + [{"feed": e, "events": "failed"} for e in errors]
    summary = {
        "feeds": len(policy.time_off.feeds),
        "failed": len(errors),
        "absences_added": sum(r.added for r in results),
        "absences_removed": sum(r.removed for r in results),
        "rotations_overlapping": len(affected),
        "replanned": replanned is not None,
    }
    report(
        ARTIFACT_KEY,
        f"Time off from {len(policy.time_off.feeds)} calendar feed(s): {summary['absences_added']} added, "
        f"{summary['absences_removed']} removed, {len(errors)} failed",
        table=rows or [{"feed": "(no feeds in the policy's [time_off])"}],
        audit=Audit(actor="flow:sync-time-off", action="time_off.sync", details=summary),
    )
    out = {"summary": summary, "feeds": [r.summary() for r in results], "errors": errors}
    if errors:
        return Failed(message="; ".join(errors), data=out)
    return out
