"""``POST /api/helpdesk/<source>``: ticket events from Zendesk, Freshdesk and Help Scout webhooks
(:mod:`frontline.observations.helpdesk`).

Answers: 200 ``{"result": "recorded", ...}`` (a draft and the day's count for the rotator) or ``"duplicate"``
(a retry: nothing changed); 202 ``{"result": "ignored", "reason": ...}`` (not a rotator's ticket: helpdesks
only need a 2xx); 401 bad or missing signature, stale timestamp; 400 malformed payload (``field`` names the
mapped field); 404 a source the policy does not name; 413 over :data:`MAX_BODY_BYTES`. Errors are
``{"detail": ..., "field"?: ...}`` and never echo the payload.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from frontline.observations.helpdesk import receive
from frontline.observations.helpdesk_payload import HelpdeskRefused
from frontline.observations.policy import current_policy
from models import get_engine

router = APIRouter(prefix="/api/helpdesk", tags=["helpdesk"])

MAX_BODY_BYTES = 512 * 1024  # a ticket with a long description; more is refused (413) by the body limit


@router.post("/{source}", include_in_schema=False)
async def helpdesk_event(source: str, request: Request) -> JSONResponse:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    policy = current_policy()
    try:
        answer = await asyncio.to_thread(receive, get_engine(), policy, source, headers, body)
    except HelpdeskRefused as exc:
        detail: dict[str, str] = {"detail": str(exc)}
        if exc.field:
            detail["field"] = exc.field
        return JSONResponse(detail, status_code=exc.status)
    return JSONResponse(answer.body, status_code=answer.status)
