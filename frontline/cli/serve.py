"""``frontline serve``: run the web app (observation form, acknowledge links, JSON API, console)."""

from __future__ import annotations

import typer


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (use 0.0.0.0 behind a proxy only)"),
    port: int = typer.Option(8000, help="TCP port"),
    workers: int = typer.Option(1, min=1, help="Worker processes"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
    access_log: bool = typer.Option(True, help="Log every request"),
) -> None:
    """Serve the web app with uvicorn (the database is created/upgraded first).

    The access log shows paths with the tokens of signed links and feed URLs replaced by [token]."""
    import uvicorn

    from frontline.cli.common import load_policy_or_exit, open_database
    from frontline.core.settings import get_settings

    load_policy_or_exit()
    open_database()
    get_settings().signing_key()  # a missing key setting fails here, not at the first link
    uvicorn.run(
        "frontline.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        proxy_headers=True,
    )
