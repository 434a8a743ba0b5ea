"""Flow ``read-rsvp-replies``: read the RSVP replies (iTIP ``METHOD:REPLY``) in the organiser mailbox.

One step, the pass over the mailbox (:func:`flows.jobs.read_mailbox`): each mail is applied in its own
transaction and marked handled on the server after its commit, so a step retried after a dropped
connection applies nothing twice (Message-ID). The step is retried when the server did not answer; wrong
credentials or a missing folder are not retried. The body is :func:`flows.jobs.read_rsvp_replies`; the
logic lives in :mod:`frontline.calendar.replies` and :mod:`frontline.mail.imap`.
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
from frontline.mail.imap import MailboxError

read_task = task(
    name="read-rsvp-mailbox",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=retry_when_transient(MailboxError),
    cache_policy=NO_CACHE,
)(jobs.read_mailbox)


@flow(name="read-rsvp-replies", flow_run_name=run_name("read-rsvp-replies"))
@crash_when_stopped
def read_rsvp_replies(as_of: date | None = None) -> dict[str, Any] | State[Any]:
    """Read the RSVP replies in the organiser mailbox (accepts recorded, declines to HR as change requests)."""
    try:
        return jobs.read_rsvp_replies(as_of, read=read_task)
    except jobs.JobFailed as exc:
        return Failed(message=str(exc), data=exc.data)
