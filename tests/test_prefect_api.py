"""The CLI's Prefect REST client waits out a busy server (503 under load) as Prefect's own client does."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.mark.parametrize(("busy", "ok"), [(2, True), (9, False)])
def test_a_busy_server_is_retried_then_given_up(monkeypatch, busy, ok):
    import time

    from frontline.core import prefect_api

    monkeypatch.setattr(time, "sleep", lambda s: None)
    answers = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answers["n"] += 1
            status = 503 if answers["n"] <= busy else 200
            body = b'{"exception_message":"Service Unavailable"}' if status == 503 else b'{"id": "x"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = prefect_api.PrefectApi(f"http://127.0.0.1:{server.server_address[1]}/api")
        if ok:
            assert api.post("/task_runs/", {"name": "x"}) == {"id": "x"}
            assert answers["n"] == busy + 1
        else:
            with pytest.raises(OSError, match="HTTP 503"):
                api.post("/task_runs/", {"name": "x"})
            assert answers["n"] == prefect_api.BUSY_RETRIES + 1
        api.close()
    finally:
        server.shutdown()
        server.server_close()
