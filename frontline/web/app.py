"""Application factory. Each topic has its own router module, included here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI


def create_app() -> FastAPI:
    from frontline.web import (
        api,
        auth,
        calendar_feed,
        change_request,
        digest,
        helpdesk,
        middleware,
        observe,
        pairing,
        scim,
        survey,
        unavailable,
    )
    from frontline.web.console import actions, dashboard, me, mentors, observations, plan, requests, roster

    app = FastAPI(title="Frontline", version="0.1.0")
    mask_tokens_in_access_log()

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    auth.install(app)  # console sign-in, sessions, CSRF, error pages
    unavailable.install(app)  # an unusable policy file: 503 with a clear page (JSON for the API)
    # requests before actions: /plan/rotations/<id>/request is not one of the actions' /plan/rotations/<id>/<action>
    for console_page in (dashboard, observations, me, roster, plan, mentors, requests, actions):
        app.include_router(console_page.router)
    app.include_router(digest.router)  # digest theme actions, unsubscribe
    app.include_router(observe.router)  # GET/POST /observe/<token>, /ack/<token>
    app.include_router(api.router)  # POST /api/observations
    app.include_router(helpdesk.router)  # POST /api/helpdesk/<source>: ticket events of helpdesk webhooks
    app.include_router(calendar_feed.router)  # GET /calendar/<token>.ics
    app.include_router(survey.router)  # GET/POST /survey/<token>
    app.include_router(pairing.router)  # GET/POST /pairing/<token>: a mentor accepts or declines
    app.include_router(change_request.router)  # GET/POST /request/<token>: a rotator asks for a change
    app.mount(scim.PREFIX, cast(Any, scim.make_app()))  # /scim/v2: SCIM 2.0 provisioning (Okta, Entra ID)

    # Console POSTs (other than sign-in) need a signed-in session before their body is read (innermost:
    # an announced body over the limits below is refused with 413 first).
    app.add_middleware(auth.SignedInBeforeBody)
    # Body size limits: link forms and the API (64 KB), console forms (parsed for the CSRF check before
    # sign-in, 1 MB) and the roster upload (three CSV files).
    app.add_middleware(observe.BodySizeLimit)
    app.add_middleware(observe.BodySizeLimit, max_bytes=helpdesk.MAX_BODY_BYTES, prefixes=("/api/helpdesk/",))
    app.add_middleware(
        observe.BodySizeLimit, max_bytes=1024 * 1024, prefixes=("/console",), exclude=("/console/roster",)
    )
    app.add_middleware(
        observe.BodySizeLimit, max_bytes=3 * roster.MAX_UPLOAD_BYTES + 1024 * 1024, prefixes=("/console/roster",)
    )
    app.add_middleware(observe.BodySizeLimit, max_bytes=scim.MAX_BODY_BYTES, prefixes=(scim.PREFIX + "/",))
    app.add_middleware(middleware.RefuseNul)  # NUL in the path, query or a url-encoded form: 400
    app.add_middleware(middleware.SecurityHeaders)  # outermost: every answer, refusals above included
    _freeze_heap_on_startup(app)
    return app


def _freeze_heap_on_startup(app: FastAPI) -> None:
    """Once the server has started, move everything imported so far (Prefect, SciPy, SQLAlchemy: millions
    of objects) out of the garbage collector's reach with ``gc.freeze()``. Without it, every few requests
    a full collection walks that whole heap: measured as a 1.3 s stall in one plan view out of three on
    600 employees; with it, every view takes 0.1-0.2 s."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            import gc

            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan


class MaskTokens(logging.Filter):
    """Replace the tokens of signed links and feed URLs in uvicorn's access log lines (the request path is
    the third argument of ``uvicorn.access`` records) with ``[token]``: a log reader must not be able to
    open someone's observation form, calendar or sign-in link."""

    def filter(self, record: logging.LogRecord) -> bool:
        from frontline.core.links import mask_link_tokens

        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], mask_link_tokens(args[2]), *args[3:])
        return True


def mask_tokens_in_access_log() -> None:
    """Install :class:`MaskTokens` on the ``uvicorn.access`` logger (once, whoever runs the app)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, MaskTokens) for f in logger.filters):
        logger.addFilter(MaskTokens())
