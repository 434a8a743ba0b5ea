"""Single sign-on for the console (issue 15) against a real OpenID Connect provider on loopback
(``oidc-provider-mock``, built on Authlib): code flow with PKCE, ID-token checks, group -> role mapping,
magic links switched off, and the provider down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models import AuditEvent, ConsoleSession, ConsoleUser, Department, Employee, session_scope
from tests.observation_factories import write_policy

BASE = "http://frontline.test"
CLIENT_SECRET = "s3cret-client-Pa55"


@pytest.fixture
def provider() -> Iterator[str]:
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(require_client_registration=True, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


def _register(issuer: str) -> tuple[str, str]:
    answer = httpx.post(
        f"{issuer}/oauth2/clients",
        json={"redirect_uris": [f"{BASE}/console/sso/callback"], "token_endpoint_auth_method": "client_secret_basic"},
    )
    answer.raise_for_status()
    return answer.json()["client_id"], answer.json()["client_secret"]


def _user(issuer: str, sub: str, **claims: object) -> None:
    httpx.put(f"{issuer}/users/{sub}", json=claims).raise_for_status()


@pytest.fixture
def sso(sqlite_settings, sqlite_engine, provider, monkeypatch):
    """The app configured for single sign-on at the provider, with a company: Finance (head Hanna), an
    employee Ron and nobody else."""
    from frontline.access import oidc
    from frontline.core.settings import get_settings
    from frontline.web.app import create_app

    client_id, secret = _register(provider)
    monkeypatch.setenv("FRONTLINE_OIDC_ISSUER", provider)
    monkeypatch.setenv("FRONTLINE_OIDC_CLIENT_ID", client_id)
    monkeypatch.setenv("FRONTLINE_OIDC_CLIENT_SECRET", secret)
    monkeypatch.setenv("FRONTLINE_OIDC_HR_GROUPS", "frontline-hr, people-ops")
    monkeypatch.setenv("FRONTLINE_OIDC_LABEL", "Acme SSO")
    get_settings.cache_clear()
    oidc._discovery_cache.clear()
    write_policy(get_settings())
    with session_scope(sqlite_engine) as s:
        d = Department(name="Finance", head_name="Hanna Head", head_email="hanna@example.com")
        s.add(d)
        s.flush()
        s.add(
            Employee(
                employee_id="E1",
                name="Ron Rotator",
                email="ron@example.com",
                department_id=d.id,
                hire_date=date(2020, 1, 1),
                timezone="Europe/Berlin",
                country="DE",
            )
        )
    with TestClient(create_app(), base_url=BASE) as client:
        yield provider, client
    get_settings.cache_clear()


def _sign_in(provider: str, client: TestClient, sub: str, next_path: str = "/console") -> httpx.Response:
    """Follow the whole dance: Frontline -> provider (sign in as ``sub``) -> Frontline's callback."""
    start = client.get(f"/console/sso?next={next_path}", follow_redirects=False)
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider) and query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43 and query["nonce"] and query["state"]
    answer = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)  # the provider's sign-in form
    assert answer.status_code == 302, answer.text
    back = answer.headers["location"]
    assert back.startswith(f"{BASE}/console/sso/callback?")
    return client.get(back.removeprefix(BASE), follow_redirects=False)


def test_hr_by_group_head_by_email_and_roles_follow_the_provider(sso, sqlite_engine):
    provider, client = sso
    _user(provider, "pat", email="Pat@Example.com", email_verified=True, name="Pat HR", groups=["staff", "people-ops"])
    done = _sign_in(provider, client, "pat", "/console/roster")
    assert done.status_code == 303 and done.headers["location"] == "/console/roster"
    page = client.get("/console/roster")
    assert page.status_code == 200 and "pat@example.com" in page.text
    with session_scope(sqlite_engine) as s:
        hr = s.exec(select(ConsoleUser)).one()
        assert (hr.email, hr.added_by, hr.disabled_at) == ("pat@example.com", "sso", None)
        assert s.exec(select(ConsoleSession)).one().signin_nonce.startswith("oidc:")
        events = [e.action for e in s.exec(select(AuditEvent)).all()]
        assert "console.add_hr" in events and "console.signin" in events
    # the provider takes the group away: at the next sign-in the HR role goes too (Pat has no other role)
    client.post("/console/signout", data={"csrf_token": _csrf(client)})
    _user(provider, "pat", email="pat@example.com", email_verified=True, name="Pat HR", groups=["staff"])
    refused = _sign_in(provider, client, "pat")
    assert refused.status_code == 403 and "has no access to the Frontline console" in refused.text
    with session_scope(sqlite_engine) as s:
        assert s.exec(select(ConsoleUser)).one().disabled_at is not None
    # a department head needs no group: found by e-mail, sees the console (not the HR pages)
    head = TestClient(client.app, base_url=BASE)
    _user(provider, "hanna", email="hanna@example.com", email_verified=True, name="Hanna")
    assert _sign_in(provider, head, "hanna").status_code == 303
    assert head.get("/console").status_code == 200
    assert head.get("/console/roster").status_code == 403


def _csrf(client: TestClient) -> str:
    import re

    page = client.get("/console")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_a_stranger_an_unverified_address_and_a_forged_state_are_refused(sso, sqlite_engine):
    provider, client = sso
    _user(provider, "zed", email="zed@elsewhere.example", email_verified=True, groups=[])
    refused = _sign_in(provider, client, "zed")
    assert refused.status_code == 403 and "zed@elsewhere.example has no access" in refused.text
    _user(provider, "ron", email="ron@example.com", email_verified=False)
    refused = _sign_in(provider, client, "ron")
    assert refused.status_code == 403 and "not verified your e-mail" in refused.text
    # an answer that belongs to another browser's sign-in (state not ours), and a replayed callback
    _user(provider, "ron", email="ron@example.com", email_verified=True)
    start = client.get("/console/sso", follow_redirects=False)
    back = httpx.post(start.headers["location"], data={"sub": "ron"}, follow_redirects=False).headers["location"]
    forged = back.replace("state=", "state=x")
    other = TestClient(client.app, base_url=BASE)
    assert "not started here" in other.get(forged.removeprefix(BASE)).text
    assert "does not belong to this sign-in" in client.get(forged.removeprefix(BASE)).text
    # the pending sign-in was used up by that attempt: the genuine answer cannot be replayed afterwards
    assert "not started here" in client.get(back.removeprefix(BASE)).text
    with session_scope(sqlite_engine) as s:
        assert s.exec(select(ConsoleSession)).all() == []
    # the person says no at the provider
    start = client.get("/console/sso", follow_redirects=False)
    denied = httpx.post(start.headers["location"], data={"action": "deny"}, follow_redirects=False)
    answer = client.get(denied.headers["location"].removeprefix(BASE))
    assert answer.status_code == 403 and "did not sign you in" in answer.text


def test_id_token_checks(sqlite_settings, monkeypatch):
    """Each claim check refuses a token that is wrong in that one respect (tokens signed here)."""
    from joserfc import jwt
    from joserfc.jwk import KeySet, RSAKey

    from frontline.access.oidc import OidcError, verify_id_token
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_OIDC_ISSUER", "https://idp.example")
    monkeypatch.setenv("FRONTLINE_OIDC_CLIENT_ID", "frontline")
    get_settings.cache_clear()
    settings = get_settings()
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    keys = KeySet([key])
    now = int(time.time())
    good = {"iss": "https://idp.example", "aud": "frontline", "sub": "1", "iat": now, "exp": now + 300, "nonce": "n"}

    def token(claims: dict, signing_key=key) -> str:
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, signing_key)

    assert verify_id_token(settings, token(good), nonce="n", now=now, key_set=keys)["sub"] == "1"
    wrong = {
        "another identity provider": {**good, "iss": "https://evil.example"},
        "another application": {**good, "aud": "someone-else"},
        "(azp)": {**good, "aud": ["frontline", "other"], "azp": "other"},
        "expired": {**good, "exp": now - 120},
        "not valid yet": {**good, "iat": now + 600},
        "nonce": {**good, "nonce": "other"},
        "no exp": {k: v for k, v in good.items() if k != "exp"},
    }
    for why, claims in wrong.items():
        with pytest.raises(OidcError, match=why.replace("(", r"\(").replace(")", r"\)")):
            verify_id_token(settings, token(claims), nonce="n", now=now, key_set=keys)
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(OidcError, match="signature is not valid"):
        verify_id_token(settings, token(good, forger), nonce="n", now=now, key_set=keys)
    unsigned = jwt.encode({"alg": "none"}, good, None, algorithms=["none"]) if False else None
    assert unsigned is None
    get_settings.cache_clear()


def test_magic_links_can_be_switched_off_and_the_provider_down_is_a_clear_page(sso, monkeypatch):
    from frontline.access import oidc
    from frontline.core.settings import get_settings

    provider, client = sso
    page = client.get("/console/signin")
    assert "Sign in with Acme SSO" in page.text and 'action="/console/signin"' in page.text
    monkeypatch.setenv("FRONTLINE_MAGIC_LINKS", "false")
    get_settings.cache_clear()
    page = client.get("/console/signin")
    assert "Sign in with Acme SSO" in page.text and 'action="/console/signin"' not in page.text
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/signin?x=1").text)
    posted = client.post(
        "/console/signin", data={"email": "ron@example.com", "csrf_token": token.group(1) if token else ""}
    )
    assert posted.status_code in (403, 404)
    assert client.get("/console/signin/abc").status_code == 404
    # the provider cannot be reached: the sign-in page says so, nothing else happens
    monkeypatch.setenv("FRONTLINE_OIDC_ISSUER", "http://127.0.0.1:9")
    get_settings.cache_clear()
    oidc._discovery_cache.clear()
    down = client.get("/console/sso", follow_redirects=False)
    assert down.status_code == 502 and "identity provider cannot be reached" in down.text
    assert CLIENT_SECRET not in down.text
