"""Application factory. Each topic has its own router module, included here."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="Frontline", version="0.1.0")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # --- routers: one line per topic module (from frontline.web import X; app.include_router(X.router))
    from frontline.web import auth; auth.install(app)  # noqa: E702  console sign-in + error pages
    from frontline.web.console import dashboard; app.include_router(dashboard.router)  # noqa: E702
    from frontline.web.console import observations as console_obs; app.include_router(console_obs.router)  # noqa: E702
    from frontline.web.console import me; app.include_router(me.router)  # noqa: E702
    from frontline.web.console import roster as console_roster; app.include_router(console_roster.router)  # noqa: E702
    from frontline.web.console import plan as console_plan; app.include_router(console_plan.router)  # noqa: E702
    from frontline.web.console import mentors as console_mentors; app.include_router(console_mentors.router)  # noqa: E702
    from frontline.web.console import actions as console_actions; app.include_router(console_actions.router)  # noqa: E702
    from frontline.web import digest; app.include_router(digest.router)  # noqa: E702  digest theme actions, unsubscribe
    from frontline.web import observe; app.include_router(observe.router); app.add_middleware(observe.BodySizeLimit)  # noqa: E702
    from frontline.web.console.roster import MAX_UPLOAD_BYTES  # console forms are parsed (CSRF check) before sign-in
    app.add_middleware(observe.BodySizeLimit, max_bytes=1024 * 1024, prefixes=("/console",), exclude=("/console/roster",))
    app.add_middleware(observe.BodySizeLimit, max_bytes=3 * MAX_UPLOAD_BYTES + 1024 * 1024, prefixes=("/console/roster",))
    from frontline.web import api; app.include_router(api.router)  # noqa: E702  POST /api/observations
    from frontline.web import calendar_feed; app.include_router(calendar_feed.router)  # noqa: E702  GET /calendar/<token>.ics
    from frontline.web import survey; app.include_router(survey.router)  # noqa: E702  GET/POST /survey/<token>
    return app
