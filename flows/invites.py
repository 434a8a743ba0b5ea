"""Flows ``send-invites`` and ``send-reminders``: decide what to tell rotators and mentors, and queue it.

Both are thin: the decisions live in :mod:`frontline.calendar.invites`; each task handles a batch of rotations in
one transaction (never one task per rotation) and the mail is delivered by ``deliver-mail``. Every
message has an idempotency key, so re-running either flow for the same day queues nothing twice.

With ``dry_run`` every batch makes the same decisions and rolls its transaction back: the result lists the
messages that would be queued (``messages``: kind, to, subject) and nothing is written or audited.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.common import Audit, counts_table, report, run_name

BATCH = 50
MAX_LISTED = 1000  # messages listed in a result (the counts cover all)


def _today() -> date:
    from frontline.core import clock

    return clock.today()


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@task(name="invite-batch", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def invite_batch(
    rotation_ids: list[int],
    as_of: date,
    announce_weeks: int,
    checkin_minutes: int,
    working_hours: tuple[int, int] = (9, 17),
    dry_run: bool = False,
) -> dict:
    from frontline.calendar.invites import process_invites
    from frontline.mail.outbox import recording
    from models import session_scope

    with session_scope() as session, recording() as queued:
        counts = process_invites(
            session,
            rotation_ids,
            as_of=as_of,
            announce_weeks=announce_weeks,
            checkin_minutes=checkin_minutes,
            working_hours=working_hours,
        )
        if dry_run:
            session.rollback()
    return {**counts.as_dict(), "messages": queued}


def _finish(result: dict, messages: list[dict], dry_run: bool) -> dict:
    """The flow's result: the counts, whether it was a dry run, and the messages queued (or that would be)."""
    return {**result, "dry_run": dry_run, "messages": messages[:MAX_LISTED]}


@flow(name="send-invites", flow_run_name=run_name("send-invites", "as_of"))
def send_invites(as_of: date | None = None, announce_weeks: int = 8, dry_run: bool = False) -> dict:
    """Queue calendar invites, updates and cancellations for rotations starting within ``announce_weeks``
    (``dry_run``: only list what would be queued)."""
    from frontline.calendar.invites import Counts, rotations_to_announce
    from frontline.core.policy import load_policy
    from models import session_scope

    as_of = as_of or _today()
    mentoring = load_policy().mentoring
    minutes, hours = mentoring.checkin_minutes, mentoring.working_hours
    with session_scope() as session:
        ids = rotations_to_announce(session, as_of, announce_weeks)
    totals = Counts()
    messages: list[dict] = []
    for chunk in _chunks(ids, BATCH):
        counts = invite_batch(chunk, as_of, announce_weeks, minutes, hours, dry_run)
        messages.extend(counts.pop("messages"))
        totals.add(Counts(**counts))
    result = {"rotations_checked": len(ids), **totals.as_dict()}
    report(
        "send-invites",
        f"Calendar invites as of {as_of} (window {announce_weeks} weeks){' - dry run, nothing queued' if dry_run else ''}",
        table=counts_table(result),
        audit=None if dry_run else Audit("flow:send-invites", "invites.send", {"as_of": as_of.isoformat(), **result}),
    )
    return _finish(result, messages, dry_run)


@task(name="reminder-batch", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)
def reminder_batch(
    rotation_ids: list[int],
    as_of: date,
    days_before: list[int],
    weekly_nudge: bool,
    checkin_minutes: int,
    working_hours: tuple[int, int] = (9, 17),
    dry_run: bool = False,
) -> dict:
    from frontline.calendar.invites import process_reminders
    from frontline.mail.outbox import recording
    from models import session_scope

    with session_scope() as session, recording() as queued:
        counts = process_reminders(
            session,
            rotation_ids,
            as_of=as_of,
            days_before=days_before,
            weekly_nudge=weekly_nudge,
            checkin_minutes=checkin_minutes,
            working_hours=working_hours,
        )
        if dry_run:
            session.rollback()
    return {**counts, "messages": queued}


@flow(name="send-reminders", flow_run_name=run_name("send-reminders", "as_of"))
def send_reminders(as_of: date | None = None, dry_run: bool = False) -> dict:
    """Queue the reminders (N days before), day-one welcomes and weekly observation nudges due ``as_of``
    (``dry_run``: only list what would be queued)."""
    from frontline.calendar.invites import rotations_for_reminders
    from frontline.core.policy import load_policy
    from models import session_scope

    as_of = as_of or _today()
    policy = load_policy()
    days = list(policy.reminders.days_before)
    with session_scope() as session:
        ids = rotations_for_reminders(session, as_of, days)
    totals = {"reminders": 0, "welcomes": 0, "nudges": 0, "queued": 0}
    messages: list[dict] = []
    for chunk in _chunks(ids, BATCH):
        counts = reminder_batch(
            chunk,
            as_of,
            days,
            policy.reminders.weekly_nudge,
            policy.mentoring.checkin_minutes,
            policy.mentoring.working_hours,
            dry_run,
        )
        messages.extend(counts["messages"])
        for key in totals:
            totals[key] += counts[key]
    result = {"rotations_checked": len(ids), **totals}
    report(
        "send-reminders",
        f"Reminders, welcomes and nudges as of {as_of}{' - dry run, nothing queued' if dry_run else ''}",
        table=counts_table(result),
        audit=None
        if dry_run
        else Audit("flow:send-reminders", "reminders.send", {"as_of": as_of.isoformat(), **result}),
    )
    return _finish(result, messages, dry_run)
