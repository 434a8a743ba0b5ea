"""Findings of the web security review, each pinned by a test that failed before its fix."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(sqlite_settings):
    from frontline.web.app import create_app

    return TestClient(create_app())


@pytest.mark.parametrize("path", ["/survey/some-token", "/digest/theme/some-token", "/digest/unsubscribe/some-token"])
def test_token_form_posts_have_a_body_size_limit(client, path):
    """The survey and digest forms take unauthenticated POSTs (the token is checked after the body is
    read): their bodies are limited like the observation form's, announced or streamed."""
    big = {"comment": "x" * 200_000, "note": "x" * 200_000, "action": "planned"}
    r = client.post(path, data=big)
    assert r.status_code == 413, r.status_code

    def chunks():  # no Content-Length: streamed
        for _ in range(40):
            yield b"a" * 8192

    r = client.post(path, content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    # the unsubscribe handler never reads its body, so a streamed one is not read past the limit either
    assert r.status_code == (403 if "unsubscribe" in path else 413), r.status_code
    # a normal-sized post still reaches the handler (which refuses the forged token)
    assert client.post(path, data={"comment": "fine", "action": "planned"}).status_code == 403


def test_console_posts_have_a_body_size_limit(client):
    """Console POSTs parse their form (for the CSRF check) before anyone is authenticated: an anonymous
    multi-megabyte form is refused with 413 instead of being parsed; the roster upload keeps its room."""
    from frontline.web.console.roster import MAX_UPLOAD_BYTES

    form = "&".join(f"f{i}=" + "a" * 500_000 for i in range(6))  # 3 MB
    r = client.post("/console/signin", content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413, r.status_code
    r = client.post(
        "/console/observations/1/ack", content=form, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413, r.status_code
    # a normal form still reaches the CSRF check
    assert client.post("/console/signin", data={"email": "a@example.com"}).status_code == 403
    # the roster upload may carry its three files (refused here by the CSRF check, not by size)
    files = {"employees": ("employees.csv", b"x" * (2 * MAX_UPLOAD_BYTES // 3))}
    assert client.post("/console/roster", files=files).status_code == 403
    huge = {"employees": ("employees.csv", b"x" * (3 * MAX_UPLOAD_BYTES + 2 * 1024 * 1024))}
    assert client.post("/console/roster", files=huge).status_code == 413


def test_an_empty_secret_key_signs_nothing(sqlite_settings, monkeypatch):
    """``FRONTLINE_SECRET_KEY=`` (set but empty, as an env file easily leaves it) must not sign links with
    an empty key, which anyone could use to forge them: signing and verifying refuse, naming the setting."""
    from itsdangerous import URLSafeTimedSerializer

    from frontline.core.security import sign, verify
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_SECRET_KEY", "")
    get_settings.cache_clear()
    forged = URLSafeTimedSerializer("", salt="frontline:observe").dumps({"e": 1})
    with pytest.raises(ValueError, match="FRONTLINE_SECRET_KEY"):
        sign("observe", {"e": 1})
    with pytest.raises(ValueError, match="FRONTLINE_SECRET_KEY"):
        verify("observe", forged, max_age_seconds=60)
    monkeypatch.setenv("FRONTLINE_SECRET_KEY", "   ")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="FRONTLINE_SECRET_KEY"):
        sign("observe", {"e": 1})
