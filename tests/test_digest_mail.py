"""The digest as a mail client sees it (issue 17): the raw bytes a real SMTP server (aiosmtpd) received
carry ``List-Unsubscribe: <https://...>`` unencoded and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058), and the one-click POST to that URL, as a mail provider sends it (no cookie, no login), works
only with a genuine signed token."""

from __future__ import annotations

import re

import pytest
from mailserver import SMTPServer
from sqlmodel import select
from test_digests import WEEK, _make_company

from frontline.digests.queue import queue_digests
from frontline.digests.weeks import shift_week
from frontline.mail.delivery import deliver_pending
from frontline.mail.transport import SMTPTransport
from models import DigestOptOut, session_scope


@pytest.fixture
def https_settings(settings, monkeypatch):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_BASE_URL", "https://frontline.example.com")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def _header_block(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("ascii")


def test_list_unsubscribe_is_raw_in_the_sent_bytes_and_one_click_post_works(engine, https_settings, smtp):
    company = _make_company(engine)
    with session_scope(engine) as s:
        queue_digests(s, WEEK)
    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    result = deliver_pending(engine, transport, batch_size=50)
    transport.close()
    assert result.sent >= 3 and result.failed == 0
    raw = next(r for r, m in zip(smtp.handler.raw, smtp.handler.messages, strict=True) if m["To"] == "cto@example.com")
    headers = _header_block(raw)
    # one unfolded line, the URL in angle brackets, no RFC 2047 encoded word anywhere in it
    found = re.search(
        r"(?mi)^List-Unsubscribe: <(https://frontline\.example\.com/digest/unsubscribe/[^>\s]+)>\r?$", headers
    )
    assert found, headers
    assert "=?" not in found.group(0)
    assert re.search(r"(?mi)^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$", headers), headers
    url = found.group(1)

    from fastapi.testclient import TestClient

    from frontline.web.app import create_app

    client = TestClient(create_app(), base_url="https://frontline.example.com")
    path = url.removeprefix("https://frontline.example.com")
    body = {"content": b"List-Unsubscribe=One-Click", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    assert client.post(forged, **body).status_code == 403  # signed: a changed token unsubscribes no one
    with session_scope(engine) as s:
        assert s.exec(select(DigestOptOut)).all() == []
    answer = client.post(path, **body)
    assert answer.status_code == 200, answer.text
    with session_scope(engine) as s:
        opted = s.exec(select(DigestOptOut)).all()
        assert [(o.department_id, o.email) for o in opted] == [(company["eng"], "cto@example.com")]
        out = {o.department: o for o in queue_digests(s, shift_week(WEEK, 1))}
    assert out["Engineering"].queued == 0 and "unsubscribed" in (out["Engineering"].skipped or "")
