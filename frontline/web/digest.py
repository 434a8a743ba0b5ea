"""Signed links from the weekly digest: act on a theme, and unsubscribe.

* ``GET /digest/theme/{token}?action=planned`` shows what the link applies to and a confirm form (mail
  scanners that prefetch links change nothing); ``POST`` applies the chosen state to the week's
  observations of the theme addressed to the department through
  :func:`frontline.observations.intake.set_ack_state`, which records it and tells the reporting rotators.
* ``GET /digest/unsubscribe/{token}`` confirms; ``POST`` (also RFC 8058 one-click, no login) records the
  opt-out in :class:`models.DigestOptOut`.

A forged, tampered or expired token answers 403. The token in the path is the credential; nothing
else is needed (the links are sent to that one recipient).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse

from frontline.core import audit
from frontline.core.links import THEME_ACTIONS, read_token
from frontline.core.security import InvalidToken
from frontline.core.templating import render_html
from frontline.digests.service import ACK_LABELS, DigestError, theme_observations, unsubscribe
from models import Department, session_scope

router = APIRouter(prefix="/digest", tags=["digest"])


def _page(name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(render_html(name, **ctx), status_code=status_code)


def _denied(exc: InvalidToken | str) -> HTMLResponse:
    return _page("web/digest_error.html", 403, title="This link cannot be used", message=str(exc))


_SHAPES = {  # the "ack" purpose is shared with single-observation links (frontline.core.links.ack_url): check the shape
    "ack": {"d": int, "w": str, "a": str, "c": str, "t": str, "r": str},
    "unsubscribe": {"d": int, "m": str},
}


def _payload(purpose: str, token: str) -> dict[str, Any]:
    payload = read_token(purpose, token)
    shape = _SHAPES[purpose]
    if not isinstance(payload, dict) or any(not isinstance(payload.get(k), t) for k, t in shape.items()):
        raise InvalidToken("this link is not valid")
    return payload


def _check_recipient(session, payload: dict[str, Any]) -> None:
    """The link is bound to the recipient it was sent to: it works only while they still head the
    department or receive its digest (raises InvalidToken otherwise)."""
    department = session.get(Department, payload["d"])
    current = (
        {a.strip().lower() for a in [department.head_email, *(department.digest_recipients or [])] if a}
        if department is not None
        else set()
    )
    if payload["r"].strip().lower() not in current:
        raise InvalidToken("this link was sent to someone who no longer receives this department's digest")


def _theme_context(session, payload: dict[str, Any]) -> dict[str, Any]:
    department = session.get(Department, payload["d"])
    return {
        "title": "Respond to a digest theme",
        "theme": payload["t"],
        "week": payload["w"],
        "area": payload["a"],
        "category": payload["c"],
        "department": department.name if department else "(deleted department)",
        "observations": theme_observations(session, payload),
        "labels": ACK_LABELS,
        "choices": [(a, ACK_LABELS[a]) for a in THEME_ACTIONS],
    }


@router.get("/theme/{token}", response_class=HTMLResponse)
def theme_confirm(token: str, action: str | None = None) -> HTMLResponse:
    try:
        payload = _payload("ack", token)
    except InvalidToken as exc:
        return _denied(exc)
    with session_scope() as session:
        try:
            _check_recipient(session, payload)
        except InvalidToken as exc:
            return _denied(exc)
        ctx = _theme_context(session, payload)
        return _page("web/digest_theme.html", selected=action if action in THEME_ACTIONS else None, done=None, **ctx)


@router.post("/theme/{token}", response_class=HTMLResponse)
def theme_apply(token: str, action: str = Form(...), note: str = Form("")) -> HTMLResponse:
    from frontline.observations.intake import set_ack_state

    try:
        payload = _payload("ack", token)
    except InvalidToken as exc:
        return _denied(exc)
    if action not in THEME_ACTIONS:
        return _page(
            "web/digest_error.html",
            400,
            title="Unknown choice",
            message=f"{action!r} is not one of: {', '.join(THEME_ACTIONS)}",
        )
    try:
        with session_scope() as session:
            try:
                _check_recipient(session, payload)
            except InvalidToken as exc:
                return _denied(exc)
            ctx = _theme_context(session, payload)
            ids = [o.id for o in ctx["observations"]]
            if ids:
                set_ack_state(session, ids, action, payload["r"], note=note[:2000] or None)
                audit.record(
                    session,
                    actor=payload["r"],
                    action="digest.theme_action",
                    subject_type="department",
                    subject_id=payload["d"],
                    week=payload["w"],
                    theme=payload["t"],
                    state=action,
                    observations=len(ids),
                )
            ctx["observations"] = theme_observations(session, payload)
            return _page("web/digest_theme.html", selected=action, done=action if ids else None, **ctx)
    except (ValueError, DigestError) as exc:
        return _page("web/digest_error.html", 400, title="Could not apply", message=str(exc))


def _unsubscribe_page(token: str, apply: bool) -> HTMLResponse:
    try:
        payload = _payload("unsubscribe", token)
    except InvalidToken as exc:
        return _denied(exc)
    with session_scope() as session:
        department = session.get(Department, payload["d"])
        if department is None:
            return _page(
                "web/digest_error.html", 404, title="Unknown digest", message="This department no longer exists."
            )
        if apply and unsubscribe(session, department.id, payload["m"]):
            audit.record(
                session,
                actor=payload["m"],
                action="digest.unsubscribe",
                subject_type="department",
                subject_id=department.id,
            )
        return _page(
            "web/digest_unsubscribe.html",
            title="Digest subscription",
            department=department.name,
            email=payload["m"],
            done=apply,
        )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_confirm(token: str) -> HTMLResponse:
    return _unsubscribe_page(token, apply=False)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_apply(token: str) -> HTMLResponse:
    return _unsubscribe_page(token, apply=True)
