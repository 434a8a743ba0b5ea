"""``GET /calendar/{token}.ics``: secret calendar subscription feeds (a person's, or the team's for HR).

The token in the URL is the only credential (calendar apps cannot log in); it is stored hashed,
shown once when created (``frontline calendar feed create``) and revocable. Unknown and revoked
tokens get 404, indistinguishable from each other.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, HTTPException, Response

from frontline.core import clock

router = APIRouter()


def organisation_today() -> date:
    """Today in the organisation's time zone (a dependency, so a test can fix the day)."""
    return clock.today()


@router.get("/calendar/{token}.ics", include_in_schema=False)
def calendar_feed(token: str, today: date = Depends(organisation_today)) -> Response:
    from frontline.calendar.feeds import feed_for_token
    from models import session_scope

    with session_scope() as session:
        body = feed_for_token(session, token, today=today)
    if body is None:
        raise HTTPException(status_code=404, detail="no such calendar")
    return Response(
        content=body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "no-store", "Content-Disposition": 'inline; filename="frontline.ics"'},  # personal
    )
