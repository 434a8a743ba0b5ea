"""Flow ``deliver_mail``: deliver the outbox, one task per batch.

A batch task claims up to ``batch_size`` due messages, sends them over one transport connection and
records each outcome (see :mod:`frontline.mail.delivery`). If the transport is unavailable (cannot
connect or log in) the task releases its rows and fails, and Prefect retries it with exponential
backoff. Messages refused one by one are not task failures: they go back to the queue with their own
backoff and show up as ``retry`` in the artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows import jobs
from flows.common import crash_when_stopped, run_name
from frontline.mail.transport import TransportUnavailable

deliver_mail_batch = task(
    name="deliver-mail-batch",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=lambda task, task_run, state: _is_transport_error(state),
    cache_policy=NO_CACHE,
)(jobs.deliver_mail_batch)


def _is_transport_error(state: Any) -> bool:
    try:
        state.result()
    except TransportUnavailable:
        return True
    except Exception:  # noqa: BLE001 - anything else is a bug: do not retry it
        return False
    return False


@flow(name="deliver-mail", flow_run_name=run_name("deliver-mail"))
@crash_when_stopped
def deliver_mail(batch_size: int = 200, max_batches: int | None = None, retry_delay_seconds: float = 5.0) -> dict:
    """Deliver every due outbox message; returns counts (batches, claimed, sent, retry, failed, and
    taken_over: claimed rows another sender held by the time this one reached them, not sent here; and
    throttled: replies of a server asking to slow down, after which the message was sent again).

    When the transport is unavailable, a batch task is retried 3 times after ``retry_delay_seconds``,
    twice that, and four times that; then the flow run fails and the messages stay queued."""
    batch_task = deliver_mail_batch.with_options(
        retry_delay_seconds=exponential_backoff(backoff_factor=retry_delay_seconds) if retry_delay_seconds > 0 else 0
    )
    return jobs.deliver_mail(batch_size, max_batches, retry_delay_seconds, batch=batch_task)
