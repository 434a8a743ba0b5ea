"""Flow ``deliver_mail``: deliver the outbox, one task per batch.

A batch task claims up to ``batch_size`` due messages, sends them over one transport connection and
records each outcome (see :mod:`frontline.mail.delivery`). If the transport is unavailable (cannot
connect or log in) the task releases its rows and fails, and Prefect retries it with exponential
backoff. Messages refused one by one are not task failures: they go back to the queue with their own
backoff and show up as ``retry`` in the artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows.common import Audit, counts_table, report, run_name
from frontline.mail.delivery import deliver_batch
from frontline.mail.transport import TransportUnavailable, transport_from_settings


@task(
    name="deliver-mail-batch",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=lambda task, task_run, state: _is_transport_error(state),
    cache_policy=NO_CACHE,
)
def deliver_mail_batch(batch_size: int) -> dict:
    from models import get_engine

    transport = transport_from_settings()
    try:
        result = deliver_batch(get_engine(), transport, batch_size=batch_size)
    finally:
        transport.close()
    for error in result.errors[:20]:
        get_run_logger().warning("not delivered yet: %s", error)
    return result.as_dict()


def _is_transport_error(state: Any) -> bool:
    try:
        state.result()
    except TransportUnavailable:
        return True
    except Exception:  # noqa: BLE001 - anything else is a bug: do not retry it
        return False
    return False


@flow(name="deliver-mail", flow_run_name=run_name("deliver-mail"))
def deliver_mail(batch_size: int = 200, max_batches: int | None = None, retry_delay_seconds: float = 5.0) -> dict:
    """Deliver every due outbox message; returns counts (batches, claimed, sent, retry, failed, and
    taken_over: claimed rows another sender held by the time this one reached them, not sent here).

    When the transport is unavailable, a batch task is retried 3 times after ``retry_delay_seconds``,
    twice that, and four times that; then the flow run fails and the messages stay queued."""
    batch_task = deliver_mail_batch.with_options(
        retry_delay_seconds=exponential_backoff(backoff_factor=retry_delay_seconds) if retry_delay_seconds > 0 else 0
    )
    totals = {"batches": 0, "claimed": 0, "sent": 0, "retry": 0, "failed": 0, "taken_over": 0}
    while max_batches is None or totals["batches"] < max_batches:
        counts = batch_task(batch_size)
        totals["batches"] += 1
        for key in ("claimed", "sent", "retry", "failed", "taken_over"):
            totals[key] += counts[key]
        if counts["claimed"] < batch_size:
            break
    report(
        "mail-delivery",
        f"Outbox delivery: {totals['claimed']} message(s) in {totals['batches']} batch(es)",
        table=counts_table({k: totals[k] for k in ("sent", "retry", "failed")}, "outcome", "messages"),
        audit=Audit("flow:deliver-mail", "mail.deliver", totals),
    )
    return totals
