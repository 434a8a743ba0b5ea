"""Flow ``deliver-chat``: send the queued chat notifications through Apprise (every two minutes).

One step: the due messages of the queue (:func:`frontline.chat.service.deliver_due`). A failed send is
retried by a later run with backoff, so the step itself is not retried. The body is
:func:`flows.jobs.deliver_chat`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import jobs
from flows.common import crash_when_stopped, run_name

send_chat = task(name="send-chat", cache_policy=NO_CACHE)(jobs.send_chat)


@flow(name="deliver-chat", flow_run_name=run_name("deliver-chat"))
@crash_when_stopped
def deliver_chat() -> dict[str, Any]:
    """Send the chat notifications that are due."""
    return jobs.deliver_chat(send=send_chat)
