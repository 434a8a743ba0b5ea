"""Where the Prefect API is, found without importing Prefect (its client costs ~3 s to import on a small
machine, more than the work of most commands)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

BUSY_STATUSES = frozenset({429, 502, 503, 504})
BUSY_RETRIES = 5


def configured_api_url() -> str | None:
    """The Prefect API URL this process would use, found without importing Prefect when it is not loaded:
    ``PREFECT_API_URL`` from the environment, else from the active profile in ``PREFECT_PROFILES_PATH``
    (default ``$PREFECT_HOME/profiles.toml``, ``~/.prefect/profiles.toml``)."""
    if "prefect.settings" in sys.modules:  # already paid for: let Prefect answer (test harness, profiles)
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = (profiles.get("profiles", {}).get(active) or {}).get("PREFECT_API_URL")
    return str(url) if url else None


class PrefectApi:
    """A few calls of a Prefect server's REST API over one kept-alive connection (the standard library's
    ``http.client``): a command pays milliseconds per call instead of importing Prefect's client."""

    def __init__(self, url: str, timeout: float = 10.0):
        from urllib.parse import urlsplit

        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self.host, self.port, self.https = parts.hostname or "127.0.0.1", parts.port, parts.scheme == "https"
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **self._auth_headers()}
        self.connection: Any = None

    @staticmethod
    def _auth_headers() -> dict[str, str]:
        key = os.environ.get("PREFECT_API_KEY")
        if key:
            return {"Authorization": f"Bearer {key}"}
        auth = os.environ.get("PREFECT_API_AUTH_STRING")
        if auth:
            import base64

            return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
        return {}

    def _connect(self) -> Any:
        import http.client

        if self.connection is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.connection = kind(self.host, self.port, timeout=self.timeout)
        return self.connection

    def post(self, path: str, payload: Any) -> Any:
        """POST ``payload`` as JSON to ``path`` (below the API URL); the decoded answer. Raises ``OSError``
        when the server cannot be reached or answers with an error."""
        import http.client
        import json
        import time

        body = json.dumps(payload).encode()
        for busy in range(BUSY_RETRIES + 1):  # a busy server (429/502/503/504), as Prefect's own client retries
            for attempt in (1, 2):  # a kept-alive connection the server has closed: reconnect once
                connection = self._connect()
                try:
                    connection.request("POST", self.prefix + path, body=body, headers=self.headers)
                    answer = connection.getresponse()
                    data = answer.read()
                    break
                except (http.client.HTTPException, ConnectionError):
                    self.close()
                    if attempt == 2:
                        raise
            if answer.status not in BUSY_STATUSES or busy == BUSY_RETRIES:
                break
            time.sleep(min(8.0, 0.5 * 2**busy))
        if answer.status >= 400:
            raise OSError(f"Prefect API {path}: HTTP {answer.status} {data[:300].decode(errors='replace')}")
        return json.loads(data) if data else None

    def emit_events(self, events: list[dict[str, Any]]) -> None:
        """Send events (``event``, ``resource``, ``related``, ``payload``) as Prefect's client would: each
        gets an id and its time; automations and deployment triggers react to them on the server."""
        import uuid
        from datetime import UTC, datetime

        now = datetime.now(UTC).isoformat()
        self.post("/events", [{"id": str(uuid.uuid4()), "occurred": now, **e} for e in events])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
