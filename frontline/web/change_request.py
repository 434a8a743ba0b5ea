"""A rotator's change request from the link in their invite (``/request/<token>``): another week, or
they cannot do the rotation, with a reason and optional preferred weeks (:mod:`frontline.rotations.requests`).

The token is a signed link (:func:`frontline.core.links.request_url`, purpose ``request``) naming the
rotation and its rotator; a forged, tampered, expired or wrong-purpose token, or a rotation that is no
longer theirs, gets 403 and nothing is stored. GET only shows the page; POST queues the request (one
pending request per rotation). The reason is untrusted text: templates autoescape it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from frontline.core import clock
from frontline.core.errors import PlanningBusy, PlanningError, PolicyError
from frontline.core.links import read_token
from frontline.core.policy import load_policy
from frontline.core.security import InvalidToken
from frontline.core.templating import render_html
from frontline.rotations.requests import KINDS, Asking, asking, parse_weeks, submit
from frontline.web.auth import web_session

router = APIRouter(include_in_schema=False)

ROTATOR_KINDS = [(k, KINDS[k]) for k in ("another_week", "cannot_do")]


def _denied(message: str) -> HTMLResponse:
    return HTMLResponse(render_html("web/link_error.html", message=message), status_code=403)


def _page(status: int, a: Asking, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("v", {})
    ctx.setdefault("message", None)
    ctx.setdefault("error", None)
    html = render_html(
        "web/request.html",
        rotation=a.rotation,
        person=a.person,
        latest=a.latest,
        can_ask=a.can_ask,
        kinds=ROTATOR_KINDS,
        kinds_by_value=KINDS,
        **ctx,
    )
    return HTMLResponse(html, status_code=status)


def _asking(session: Any, token: str) -> Asking:
    payload = read_token("request", token)
    if not isinstance(payload, dict) or not isinstance(payload.get("r"), int) or not isinstance(payload.get("e"), int):
        raise InvalidToken("this link is not valid")
    found = asking(session, payload["r"], payload["e"])
    if found is None:
        raise InvalidToken("this rotation is no longer yours to change")
    return found


@router.get("/request/{token}", response_class=HTMLResponse)
def request_page(token: str) -> HTMLResponse:
    with web_session() as session:
        try:
            a = _asking(session, token)
        except InvalidToken as exc:
            return _denied(str(exc))
        return _page(200, a)


async def _request_form(request: Request) -> dict[str, list[str]]:
    """The url-encoded form, read in the event loop; the route is a plain ``def``."""
    raw = await request.body()
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return {}


@router.post("/request/{token}", response_class=HTMLResponse)
def request_submit(token: str, fields: dict[str, list[str]] = Depends(_request_form)) -> HTMLResponse:
    """A plain ``def`` (FastAPI's thread pool): an approval at once takes the planning lock."""
    kind = (fields.get("kind") or [""])[-1]
    reason = (fields.get("reason") or [""])[-1]
    weeks = fields.get("week") or []
    values = {"kind": kind, "reason": reason, "weeks": weeks[:3]}
    with web_session() as session:
        try:
            a = _asking(session, token)
        except InvalidToken as exc:
            return _denied(str(exc))
        if not a.can_ask:
            return _page(409, a, error="This rotation cannot be changed by a request now.")
        if kind not in dict(ROTATOR_KINDS):
            return _page(400, a, v=values, error="Choose what you need.")
        try:
            req = submit(
                session,
                load_policy(),
                a.rotation.id or 0,
                kind=kind,
                requester_email=a.person.email,
                requester_role="rotator",
                reason=reason,
                preferred_weeks=parse_weeks(weeks[:3], clock.today()),
            )
        except (PlanningError, PolicyError) as exc:
            session.rollback()
            if isinstance(exc, PlanningBusy):  # auto-approval waited for a plan run: no HR e-mail or process id here
                return _page(409, a, v=values, error=exc.brief)
            return _page(400, a, v=values, error=str(exc))
        session.commit()
        a = _asking(session, token)
        told = (
            "HR approved it at once; you get the answer by mail." if req.status == "approved" else "HR answers by mail."
        )
        return _page(200, a, message=f"Your request {req.id} is sent. {told}")
