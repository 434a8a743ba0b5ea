"""Flows ``send-invites`` and ``send-reminders``: decide what to tell rotators and mentors, and queue it.

Both are thin: the decisions live in :mod:`frontline.calendar.invites`, the bodies in :mod:`flows.jobs`;
each task handles a batch of rotations in one transaction (never one task per rotation) and the mail is
delivered by ``deliver-mail``. Every message has an idempotency key, so re-running either flow for the
same day queues nothing twice.

With ``dry_run`` every batch makes the same decisions and rolls its transaction back: the result lists the
messages that would be queued (``messages``: kind, to, subject) and nothing is written or audited.
"""

from __future__ import annotations

from datetime import date

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import jobs
from flows.common import crash_when_stopped, run_name

BATCH = jobs.INVITE_BATCH
MAX_LISTED = jobs.MAX_LISTED

invite_batch = task(name="invite-batch", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)(
    jobs.invite_batch
)
reminder_batch = task(name="reminder-batch", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE)(
    jobs.reminder_batch
)


@flow(name="send-invites", flow_run_name=run_name("send-invites", "as_of"))
@crash_when_stopped
def send_invites(as_of: date | None = None, announce_weeks: int = 8, dry_run: bool = False) -> dict:
    """Queue calendar invites, updates and cancellations for rotations starting within ``announce_weeks``
    (``dry_run``: only list what would be queued)."""
    return jobs.send_invites(as_of, announce_weeks, dry_run, batch=invite_batch)


@flow(name="send-reminders", flow_run_name=run_name("send-reminders", "as_of"))
@crash_when_stopped
def send_reminders(as_of: date | None = None, dry_run: bool = False) -> dict:
    """Queue the reminders (N days before), day-one welcomes and weekly observation nudges due ``as_of``
    (``dry_run``: only list what would be queued)."""
    return jobs.send_reminders(as_of, dry_run, batch=reminder_batch)
