"""A mentor's answer to a pairing (``/pairing/<token>``): accept, or decline with an optional reason.

The token is a signed link (:func:`frontline.core.links.pairing_url`, purpose ``pairing``) naming the
pairing and the mentor; a forged, tampered, expired or wrong-purpose token, or a pairing that is no
longer that mentor's, gets 403 and nothing changes. GET only shows the page (mail scanners prefetch
links); POST records the answer. A decline re-pairs that rotation alone
(:func:`frontline.mentors.review.respond`) and queues the calendar updates at once. Reasons are
untrusted text: templates autoescape them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from frontline.core.errors import PlanningBusy, PlanningError, PolicyError
from frontline.core.links import read_token
from frontline.core.policy import load_policy
from frontline.core.security import InvalidToken
from frontline.core.templating import render_html
from frontline.mentors.review import PairingView, pairing_view, respond
from frontline.web.auth import web_session
from frontline.web.console.actions import queue_invite_updates

router = APIRouter(include_in_schema=False)

MAX_REASON = 1000


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(render_html(name, **ctx), status_code=status)


def _denied(message: str) -> HTMLResponse:
    return _page("web/link_error.html", 403, message=message)


def _payload(token: str) -> tuple[int, int]:
    payload = read_token("pairing", token)
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), int) or not isinstance(payload.get("m"), int):
        raise InvalidToken("this link is not valid")
    return payload["p"], payload["m"]


def _view(session: Any, token: str) -> PairingView:
    pairing_id, mentor_id = _payload(token)
    view = pairing_view(session, pairing_id, mentor_id)
    if view is None:
        raise InvalidToken("this pairing does not exist any more")
    return view


@router.get("/pairing/{token}", response_class=HTMLResponse)
def pairing_page(token: str) -> HTMLResponse:
    with web_session() as session:
        try:
            view = _view(session, token)
        except InvalidToken as exc:
            return _denied(str(exc))
        return _page("web/pairing.html", v=view, message=None, error=None, max_reason=MAX_REASON)


async def _answer_form(request: Request) -> dict[str, str]:
    """The url-encoded form (single values), read in the event loop; the route itself is a plain ``def``."""
    raw = await request.body()
    try:
        return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=5).items()}
    except (UnicodeDecodeError, ValueError):
        return {}


@router.post("/pairing/{token}", response_class=HTMLResponse)
def pairing_answer(token: str, fields: dict[str, str] = Depends(_answer_form)) -> HTMLResponse:
    """A plain ``def``: FastAPI runs it in its thread pool. A decline waits for the planning lock (up to
    ``WEB_PLANNING_LOCK_WAIT``) and re-pairs; in the event loop that would stall every other request."""
    answer = fields.get("answer")
    with web_session() as session:
        try:
            view = _view(session, token)
        except InvalidToken as exc:
            return _denied(str(exc))
        if answer not in ("accept", "decline"):
            return _page(
                "web/pairing.html", 400, v=view, message=None, error="Choose accept or decline.", max_reason=MAX_REASON
            )
        try:
            policy = load_policy()
            result = respond(
                session,
                policy,
                view.pairing.id or 0,
                view.mentor.id or 0,
                accept=answer == "accept",
                reason=fields.get("reason", "")[:MAX_REASON],
            )
            if not result.accepted:
                queue_invite_updates(session, policy, [result.rotation_id])
        except (PlanningError, PolicyError) as exc:
            session.rollback()
            error = exc.brief if isinstance(exc, PlanningBusy) else str(exc)  # no HR e-mail or process id here
            return _page("web/pairing.html", 409, v=view, message=None, error=error, max_reason=MAX_REASON)
        session.commit()
        view = _view(session, token)
        return _page("web/pairing.html", v=view, message=result.message, error=None, max_reason=MAX_REASON)
