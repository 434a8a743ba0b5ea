"""ASGI middleware for every response and request of the web app.

* :class:`SecurityHeaders`: a strict Content-Security-Policy (no scripts at all, nothing from other
  origins, no framing, forms post only to Frontline), ``X-Frame-Options: DENY``,
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` (the path of a signed link is
  its credential: it must not leave in a Referer header), ``Cache-Control: no-store`` unless a route
  chose otherwise (almost every page is personal), and HSTS when the base URL is https. The API
  documentation pages (``/docs``, ``/redoc``) load FastAPI's viewer from its CDN and get a CSP that
  allows exactly that.
* :class:`RefuseNul`: a NUL character in the path, the query string or a url-encoded form is refused
  with 400 before it reaches a route (PostgreSQL cannot store it and a search for it failed with 500;
  nobody types one). JSON bodies are checked field by field by the API's models.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope["path"] in DOCS_PATHS or scope["path"].startswith("/docs/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = DOCS_CSP if docs else CSP
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if _https():
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


def _https() -> bool:
    from frontline.core.settings import get_settings

    return get_settings().base_url.startswith("https://")


_NUL = re.compile(rb"%00|\x00")


class RefuseNul:
    """400 for a NUL in the path, the query string or a url-encoded body (scanned as it is read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        if _NUL.search(raw_path) or _NUL.search(scope.get("query_string", b"")) or "\x00" in scope["path"]:
            return await _refuse(scope, send)
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        if not content_type.startswith(b"application/x-www-form-urlencoded"):
            return await self.app(scope, receive, send)
        tail = b""
        found = started = False

        async def scanning_receive() -> Message:
            nonlocal tail, found
            message = await receive()
            if message["type"] == "http.request":
                chunk = tail + message.get("body", b"")
                if _NUL.search(chunk):
                    found = True
                    raise _NulFound()
                tail = chunk[-2:]
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if found and not started:
                return  # the route's answer to a body it could not read becomes the 400 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, scanning_receive, tracking_send)
        except _NulFound:
            pass
        if found and not started:
            await _refuse(scope, send)


class _NulFound(Exception):
    pass


async def _refuse(scope: Scope, send: Send) -> None:
    message = "the request contains a NUL character (%00), which Frontline does not accept in any field"
    if scope["path"].startswith("/api/"):
        body, kind = f'{{"detail":"{message}"}}'.encode(), b"application/json"
    else:
        from frontline.core.templating import render_html

        body = render_html("web/observe_error.html", heading="Unusable characters", message=message).encode()
        kind = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
