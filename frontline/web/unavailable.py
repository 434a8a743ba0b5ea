"""A policy file that cannot be used answers 503 with a clear page (or JSON for the API), never a bare 500.

The observation form, the API, escalations and the digests read ``frontline.toml`` on every request (see
:mod:`frontline.observations.policy`). When it is missing or invalid, every such request raises
:class:`~frontline.core.errors.PolicyError`. The person on the other end can do nothing about it: they
get *503 Service Unavailable* with ``Retry-After`` and a message saying nothing was saved, without the
server's file paths; the problems go to the server log, and ``frontline status --check`` fails until the
file is fixed.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from frontline.core.errors import PolicyError
from frontline.core.templating import render_html

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 300
MESSAGE = (
    "Frontline cannot take this request right now: its configuration needs fixing by an operator. "
    "Nothing was saved; please try again later."
)


def policy_unavailable(request: Request, exc: Exception) -> Response:
    """503 for a request that needed the policy while it cannot be used."""
    problems = exc.problems if isinstance(exc, PolicyError) else [str(exc)]
    log.error("policy file unusable while serving %s: %s", request.url.path, "; ".join(problems))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": MESSAGE}, status_code=503, headers=headers)
    html = render_html("web/observe_error.html", heading="Frontline is not available right now", message=MESSAGE)
    return HTMLResponse(html, status_code=503, headers={**headers, "X-Frame-Options": "DENY"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(PolicyError, policy_unavailable)
