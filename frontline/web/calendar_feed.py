"""``GET /calendar/{token}.ics``: secret calendar subscription feeds (a person's, or the team's for HR).

The token in the URL is the only credential (calendar apps cannot log in); it is stored hashed,
shown once when created (``frontline calendar feed create``) and revocable. Unknown and revoked
tokens get 404, indistinguishable from each other.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

router = APIRouter()


@router.get("/calendar/{token}.ics", include_in_schema=False)
def calendar_feed(token: str) -> Response:
    from frontline.calendar.feeds import feed_ics, find_feed_token
    from models import session_scope

    with session_scope() as session:
        row = find_feed_token(session, token)
        body = feed_ics(session, row) if row is not None else None
    if body is None:
        raise HTTPException(status_code=404, detail="no such calendar")
    return Response(
        content=body,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, max-age=3600", "Content-Disposition": 'inline; filename="frontline.ics"'},
    )
