"""The wrap-up survey (``/survey/<token>``): two questions (how useful was the rotation / the pairing,
1-5) and a comment, one answer per pairing and side.

The token is a signed link (:func:`frontline.core.links.survey_url`, purpose ``survey``) naming the pairing
and the side (``rotator`` or ``mentor``); a forged, tampered, expired or wrong-purpose token gets 403
and nothing is stored. GET only shows the form (mail scanners prefetch links); POST stores the answer.
Answering again replaces the earlier answer (the form shows it). Comments are untrusted: templates
autoescape them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from frontline.core.links import read_token
from frontline.core.security import InvalidToken
from frontline.core.templating import render_html
from frontline.mentors.surveys import ROLES, pairing_survey, save_feedback
from models import get_engine, session_scope

router = APIRouter(include_in_schema=False)

MAX_COMMENT = 5000
SCALE = [(1, "not useful"), (2, "a little"), (3, "useful"), (4, "very useful"), (5, "essential")]


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    # security headers (CSP, no framing, no-store, no referrer) come from frontline.web.middleware
    return HTMLResponse(render_html(name, **ctx), status_code=status)


def _denied(message: str) -> HTMLResponse:
    return _page("web/survey_error.html", 403, message=message)


def _context(session: Session, token: str) -> dict[str, Any]:
    """Who answers about which pairing; raises InvalidToken."""
    payload = read_token("survey", token)
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), int) or payload.get("r") not in ROLES:
        raise InvalidToken("this link is not valid")
    survey = pairing_survey(session, payload["p"], payload["r"])
    if survey is None:
        raise InvalidToken("this survey no longer exists")
    return {
        **survey.as_context(),
        "role": payload["r"],
        "scale": SCALE,
        "errors": {},
        "saved": False,
        "max_comment": MAX_COMMENT,
    }


@router.get("/survey/{token}", response_class=HTMLResponse)
def survey_form(token: str) -> HTMLResponse:
    with session_scope(get_engine()) as session:
        try:
            ctx = _context(session, token)
        except InvalidToken as exc:
            return _denied(str(exc))
        return _page("web/survey.html", **ctx)


async def _survey_form(request: Request) -> dict[str, str]:
    """The url-encoded form, read in the event loop; the route is a plain ``def`` (FastAPI's thread pool)."""
    raw = await request.body()
    try:
        return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10).items()}
    except (UnicodeDecodeError, ValueError):
        return {}


@router.post("/survey/{token}", response_class=HTMLResponse)
def survey_submit(token: str, fields: dict[str, str] = Depends(_survey_form)) -> HTMLResponse:
    with session_scope(get_engine()) as session:
        try:
            ctx = _context(session, token)
        except InvalidToken as exc:
            return _denied(str(exc))
        errors: dict[str, str] = {}
        values: dict[str, int] = {}
        for name in ("rotation_usefulness", "usefulness"):
            value = fields.get(name, "")
            if value not in {"1", "2", "3", "4", "5"}:
                errors[name] = "Choose a value from 1 to 5."
            else:
                values[name] = int(value)
        comment = fields.get("comment", "")
        if len(comment) > MAX_COMMENT:
            errors["comment"] = f"At most {MAX_COMMENT} characters, please."
        if errors:
            ctx.update(errors=errors, values=fields)
            return _page("web/survey.html", 422, **ctx)
        row = save_feedback(
            session, ctx["pairing"].id, ctx["role"], values["rotation_usefulness"], values["usefulness"], comment
        )
        ctx.update(existing=row, saved=True)
        return _page("web/survey.html", **ctx)
