"""Application factory. Each topic has its own router module, included here."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="Frontline", version="0.1.0")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # --- routers: one line per topic module (from frontline.web import X; app.include_router(X.router))
    return app
