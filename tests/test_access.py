"""frontline.access as services: sign-in links (rate limit, single use, lost roles), and the signed
session, CSRF and flash payloads behind the console's cookie. The console's routes over them are in
test_console.py."""

from __future__ import annotations

import pytest


def test_signin_links_are_rate_limited_per_address_and_single_use(settings, engine):
    """At most five sign-in links per address in 15 minutes (the sixth request queues nothing, and the
    caller answers the same); a link signs in once, then is refused as used; a link for an account that
    lost its role is refused."""
    from datetime import timedelta

    from sqlmodel import Session, select

    from frontline.access import signin
    from frontline.access.accounts import add_hr, remove_hr
    from frontline.core import ratelimit
    from frontline.core.errors import AccessDenied, SignInLinkError
    from frontline.core.links import signin_url
    from models import OutboundMessage

    with Session(engine) as s:
        add_hr(s, "HR@Example.com", actor="test")
        s.commit()
        queued = [signin.request_signin(s, "hr@example.com") for _ in range(7)]
        s.commit()
        assert queued == [True] * 5 + [False] * 2
        assert signin.request_signin(s, "nobody@example.com") is False
        rows = s.exec(select(OutboundMessage).where(OutboundMessage.kind == "signin")).all()
        assert len(rows) == 5 and {r.recipient for r in rows} == {"hr@example.com"}
        later = rows[0].created_at + timedelta(minutes=16)
        key = ratelimit.key_for("signin-mail", "hr@example.com")
        assert not ratelimit.available(s, key, limit=5, window=signin.RATE_WINDOW)
        assert ratelimit.available(s, key, limit=5, window=signin.RATE_WINDOW, now=later), "the window is 15 minutes"

        token = signin_url("hr@example.com", "nonce-1").rsplit("/", 1)[1]
        assert signin.open_signin_link(s, token).email == "hr@example.com"
        assert signin.consume_signin_link(s, token).principal.is_hr
        s.commit()
        with pytest.raises(SignInLinkError, match="already used"):
            signin.consume_signin_link(s, token)
        with pytest.raises(SignInLinkError, match="not valid"):
            signin.open_signin_link(s, token[:-3] + "abc")

        remove_hr(s, "hr@example.com", actor="test")
        s.commit()
        fresh = signin_url("hr@example.com", "nonce-2").rsplit("/", 1)[1]
        with pytest.raises(AccessDenied, match="no access") as refused:
            signin.consume_signin_link(s, fresh)
        assert not isinstance(refused.value, SignInLinkError), "a lost role is a 403, not a bad link"


def test_session_and_csrf_tokens_are_bound_and_checked(sqlite_settings):
    from frontline.access import sessions
    from frontline.core.errors import AccessDenied

    data = {**sessions.new_session(), "email": "hr@example.com"}
    cookie = sessions.sign_session(data)
    assert sessions.read_session(cookie) == data
    assert sessions.read_session(cookie[:-2] + "xx") is None
    assert sessions.read_session(sessions.sign_session({"email": "no-sid@example.com"})) is None
    assert sessions.read_session(None) is None
    sessions.check_csrf(cookie, sessions.csrf_token(data["sid"]))
    other = sessions.new_session()
    assert other["sid"] != data["sid"], "every session gets a fresh id (no fixation)"
    with pytest.raises(AccessDenied, match="CSRF token mismatch"):
        sessions.check_csrf(cookie, sessions.csrf_token(other["sid"]))
    with pytest.raises(AccessDenied, match="missing CSRF token"):
        sessions.check_csrf(cookie, None)
    with pytest.raises(AccessDenied, match="bad CSRF token"):
        sessions.check_csrf(cookie, "forged")
    assert sessions.read_flash(sessions.sign_flash("Saved")) == "Saved"
    assert sessions.read_flash("forged") is None
