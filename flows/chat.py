"""Flow ``deliver-chat``: send the queued chat notifications through Apprise (every two minutes).

One task: the due messages of the queue (:func:`frontline.chat.service.deliver_due`), committed together;
a failed send is retried by a later run with backoff, so the task itself is not retried.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.common import counts_table, report, run_name


@task(name="send-chat", cache_policy=NO_CACHE)
def send_chat_task() -> dict[str, Any]:
    from frontline.chat.service import deliver_due
    from frontline.core.clock import utcnow
    from frontline.core.policy import load_policy
    from models import session_scope

    chat = load_policy().chat
    with session_scope() as session:
        done = deliver_due(session, chat, utcnow())
    return {"sent": done.sent, "failed": done.failed, "dropped": done.dropped, "errors": done.errors}


@flow(name="deliver-chat", flow_run_name=run_name("deliver-chat"))
def deliver_chat() -> dict[str, Any]:
    """Send the chat notifications that are due."""
    out = send_chat_task()
    counts = {k: out[k] for k in ("sent", "failed", "dropped")}
    report("deliver-chat", f"Chat: {out['sent']} sent, {out['failed']} failed", table=counts_table(counts))
    return out
