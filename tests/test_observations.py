"""Observations through the real app: the signed personal form, the acknowledge page, the JSON API,
limits, redaction and escaping. Most tests drive the ASGI app in-process (``TestClient``) on SQLite
and PostgreSQL; one runs uvicorn on loopback."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from observation_factories import body, mails, org, set_policy_value, world_ids, write_policy
from sqlmodel import func, select

from frontline.core.links import observe_url
from frontline.observations.api_tokens import create_api_token, revoke_api_token
from models import AuditEvent, Department, Employee, Observation, session_scope

XSS = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg onload=alert(2)>",
]


@pytest.fixture
def world(settings, engine):
    return world_ids(settings, engine)


@pytest.fixture
def client(world):
    from frontline.web.app import create_app

    with TestClient(create_app()) as c:
        yield c


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def form_fields(page: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page)
    }


def valid_form(**overrides) -> dict[str, str]:
    data = {
        "text": "Customer jane@example.com was charged twice at checkout",
        "impact": "4",
        "customer_count": "3",
        "product_area": "checkout",
        "category": "bug",
        "target_department": "",
        "suggestion": "Call back on +44 20 7946 0958",
    }
    data.update(overrides)
    return data


def count(engine, model=Observation) -> int:
    with session_scope(engine) as session:
        return session.exec(select(func.count(model.id))).one()


def open_form(client, employee_id: int):
    link = path_of(observe_url(employee_id))
    page = client.get(link)
    assert page.status_code == 200, page.text
    return link, form_fields(page.text)


# ------------------------------------------------------------------------------------ form


def test_policy_allow_list_keeps_the_hotline_when_stored(client, engine, world, settings):
    """The company's own hotline named in ``[redaction] allow`` is stored as written; the customer's
    number beside it is still redacted."""
    set_policy_value(settings, "allow", '["0800 123 4567"]')
    link, hidden = open_form(client, world["rotator"])
    text = "Told her to call our hotline 0800 123 4567; her mobile +49 170 1234567 got no SMS"
    response = client.post(link, data={**hidden, **valid_form(text=text, suggestion="")})
    assert response.status_code == 200, response.text
    with session_scope(engine) as session:
        obs = session.exec(select(Observation)).one()
        assert obs.text == "Told her to call our hotline 0800 123 4567; her mobile [phone] got no SMS"
        assert obs.redactions == {"phone": 1}


def test_valid_submission_is_stored_redacted_and_audited(client, engine, world):
    link, hidden = open_form(client, world["rotator"])
    page = client.get(link).text
    for label in (
        "What happened?",
        "Customer impact",
        "Product area",
        "Category",
        "Which department should hear it?",
        "Urgent",
    ):
        assert label in page
    assert '<label for="f-text">' in page and 'name="viewport"' in page  # labelled fields, mobile layout
    response = client.post(link, data={**hidden, **valid_form()})
    assert response.status_code == 200, response.text
    assert "Thank you" in response.text and "Engineering" in response.text  # suggested for checkout
    assert "jane@example.com" not in response.text and "1 email address" in response.text
    with session_scope(engine) as session:
        obs = session.exec(select(Observation)).one()
        assert obs.text == "Customer [email] was charged twice at checkout"
        assert obs.suggestion == "Call back on [phone]"
        assert obs.redactions == {"email": 1, "phone": 1}
        assert obs.source == "web" and obs.impact == 4 and obs.customer_count == 3
        assert obs.rotator_id == world["rotator"] and obs.rotation_id is not None
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "observation.submitted")).one()
        assert event.subject_id == str(obs.id) and event.details["redactions"] == {"email": 1, "phone": 1}
        assert "jane" not in str(event.details)
    # the same form posted again (double click, browser re-POST) stores nothing new
    again = client.post(link, data={**hidden, **valid_form()})
    assert again.status_code == 200 and count(engine) == 1
    # the recent list shows it
    assert "Customer [email] was charged twice" in client.get(link).text


def test_chosen_department_overrides_the_suggestion(client, engine, world):
    """The policy routes checkout to Engineering; a rotator who picks Product is heard by Product."""
    from frontline.observations.intake import department_names, suggested_department
    from frontline.observations.policy import current_policy

    with session_scope(engine) as session:
        assert suggested_department("checkout", current_policy(), department_names(session)) == "Engineering"
    link, hidden = open_form(client, world["rotator"])
    r = client.post(link, data={**hidden, **valid_form(product_area="checkout", target_department="Product")})
    assert r.status_code == 200 and "sent to <strong>Product</strong>" in r.text
    with session_scope(engine) as session:
        obs = session.exec(select(Observation)).one()
        product = session.exec(select(Department).where(Department.name == "Product")).one()
        assert obs.target_department_id == product.id


def test_forged_expired_and_foreign_links_are_refused(client, engine, world, monkeypatch):
    link, hidden = open_form(client, world["rotator"])
    token = link.rsplit("/", 1)[1]
    forged = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    for bad in (forged, "/observe/not-a-token", f"/observe/{token}x"):
        assert client.get(bad).status_code == 403
        assert client.post(bad, data={**hidden, **valid_form()}).status_code == 403
    # a token of another purpose (acknowledge) never opens the form
    from frontline.core.links import make_token

    ack = make_token("ack", {"e": world["rotator"]})
    assert client.post(f"/observe/{ack}", data={**hidden, **valid_form()}).status_code == 403
    # expired: minted 46 days ago (policy link_valid_days = 45)
    from itsdangerous.timed import TimestampSigner

    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 46 * 86400)
    old_link = path_of(observe_url(world["rotator"]))
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    expired = client.post(old_link, data={**hidden, **valid_form()})
    assert expired.status_code == 403 and "expired" in expired.text
    # someone else's form (nonce of the rotator's page) posted to another person's link
    other_link = path_of(observe_url(world["other"]))
    foreign = client.post(other_link, data={**hidden, **valid_form()})
    assert foreign.status_code == 403 and "someone else" in foreign.text
    # no nonce at all
    assert client.post(link, data=valid_form()).status_code == 403
    # a person who left
    with session_scope(engine) as session:
        session.get(Employee, world["other"]).active = False
    assert client.get(other_link).status_code == 403
    assert count(engine) == 0


def test_malformed_input_is_rejected_with_field_messages(client, engine, world):
    link, hidden = open_form(client, world["rotator"])
    r = client.post(
        link,
        data={
            **hidden,
            **valid_form(
                text="  ", impact="abc", product_area="moon base", customer_count="-2", target_department="Nope"
            ),
        },
    )
    assert r.status_code == 422
    assert 'id="form-errors"' in r.text
    assert "What happened?</a>: this is required" in r.text
    assert "Customer impact</a>: must be a whole number" in r.text
    assert "unknown product area" in r.text and "no department is called" in r.text
    assert "must be greater than or equal to 0" in r.text
    assert 'aria-invalid="true"' in r.text
    r = client.post(link, data={**hidden, **valid_form(impact="9")})
    assert r.status_code == 422 and "must be less than or equal to 5" in r.text
    r = client.post(link, data={**hidden, **valid_form(text="x" * 5001)})
    assert r.status_code == 422 and "5001 characters long; at most 5000" in r.text
    assert count(engine) == 0


def test_a_form_with_too_many_fields_is_refused_not_a_crash(client, engine, world):
    link, hidden = open_form(client, world["rotator"])
    crafted = "&".join(f"x{i}=1" for i in range(60))
    from urllib.parse import urlencode

    r = client.post(
        link,
        content=urlencode({**hidden, **valid_form()}) + "&" + crafted,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403 and "Nothing was saved" in r.text  # was an unhandled ValueError (500)
    assert count(engine) == 0
    ack = client.post("/ack/some-token", content=crafted, headers={"content-type": "application/x-www-form-urlencoded"})
    assert ack.status_code == 403


def test_oversized_bodies_are_refused(client, engine, world):
    link, hidden = open_form(client, world["rotator"])
    big = {**hidden, **valid_form(text="x" * 70_000)}
    r = client.post(link, data=big)
    assert r.status_code == 413 and "request body too large: at most 64 KB" in r.text and "Nothing was saved" in r.text

    def chunks():  # no Content-Length: streamed
        for _ in range(20):
            yield b"a" * 8192

    r = client.post(link, content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert count(engine) == 0


def test_xss_payloads_come_back_escaped_everywhere(client, engine, world):
    link, hidden = open_form(client, world["rotator"])
    for i, payload in enumerate(XSS):
        r = client.post(
            link,
            data={
                **hidden,
                "client_request_id": f"x{i}",
                **valid_form(text=f"t {payload}", suggestion=f"s {payload}", urgent="on"),
            },
        )
        assert r.status_code == 200
        assert payload not in r.text and str(escape(payload)) in r.text
    page = client.get(link).text  # recent observations list
    for payload in XSS:
        assert payload not in page
    # invalid values echoed in error messages and re-filled fields
    payload = XSS[1]
    r = client.post(
        link,
        data={
            **hidden,
            **valid_form(
                text=payload, product_area=payload, category=payload, target_department=payload, impact=payload
            ),
        },
    )
    assert r.status_code == 422 and payload not in r.text and "&lt;img" in r.text
    # escalation mail (HTML and text) and the acknowledge page
    with session_scope(engine) as session:
        sent = [
            m for m in mails(session, "escalation") if "/ack/" in body(m, "plain")
        ]  # the heads' (not the mentor's copy)
        assert len(sent) == len(XSS)
        for msg, payload in zip(sent, XSS, strict=True):
            html_part = body(msg, "html")
            assert payload not in html_part and str(escape(payload)) in html_part
            assert payload in body(msg, "plain")  # text/plain is not HTML: shown verbatim, harmless
            ack = re.search(r"http://frontline\.test(/ack/[^\"\s]+)", html_part).group(1)
            ack_page = client.get(html.unescape(ack)).text
            assert payload not in ack_page and str(escape(payload)) in ack_page
        # the "what happened to your observation" mail, with a hostile note from the acting head
        from frontline.observations.acknowledgement import set_ack_state

        first = session.exec(select(Observation).order_by(Observation.id)).first()
        set_ack_state(session, [first.id], "planned", by="head@example.com", note=f"n {XSS[0]}")
        update = body(mails(session, "observation_update")[0], "html")
        for payload in (XSS[0],):
            assert payload not in update and str(escape(payload)) in update


def test_rate_limit_per_rotator(client, engine, world, settings):
    set_policy_value(settings, "submissions_per_hour", "3")
    link, hidden = open_form(client, world["rotator"])
    for i in range(3):
        assert client.post(link, data={**hidden, "client_request_id": f"r{i}", **valid_form()}).status_code == 200
    r = client.post(link, data={**hidden, "client_request_id": "r3", **valid_form()})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 3600
    assert "at most 3 observations per hour" in r.text
    assert count(engine) == 3


# ------------------------------------------------------------------------------------ acknowledge


def test_ack_link_get_shows_post_acts(client, engine, world):
    link, hidden = open_form(client, world["rotator"])
    client.post(link, data={**hidden, **valid_form(urgent="on")})
    with session_scope(engine) as session:
        html_part = body(mails(session, "escalation")[0], "html")
    ack = html.unescape(re.search(r"http://frontline\.test(/ack/[^\"\s]+)", html_part).group(1))
    page = client.get(ack)
    assert page.status_code == 200 and "What happens next?" in page.text
    with session_scope(engine) as session:
        assert session.exec(select(Observation)).one().ack_state == "new"  # GET changed nothing
    fields = form_fields(page.text)
    assert client.post(ack, data={"state": "planned"}).status_code == 403  # no nonce
    done = client.post(ack, data={**fields, "state": "planned", "note": "Fix ships Friday"})
    assert done.status_code == 200 and "Recorded" in done.text
    with session_scope(engine) as session:
        obs = session.exec(select(Observation)).one()
        assert obs.ack_state == "planned" and obs.ack_by == "erin.head@example.com"
        update = mails(session, "observation_update")
        assert len(update) == 1 and "Fix ships Friday" in body(update[0], "plain")
    assert client.get("/ack/forged-token").status_code == 403


def test_ack_link_of_a_former_head_is_refused(client, engine, world):
    """An escalation link is bound to the head it was sent to: once that person no longer heads the
    department the observation is addressed to (or receives its digest), it shows and changes nothing."""
    link, hidden = open_form(client, world["rotator"])
    client.post(link, data={**hidden, **valid_form(urgent="on")})
    with session_scope(engine) as session:
        html_part = body(mails(session, "escalation")[0], "html")
    ack = html.unescape(re.search(r"http://frontline\.test(/ack/[^\"\s]+)", html_part).group(1))
    fields = form_fields(client.get(ack).text)
    with session_scope(engine) as session:
        dept = session.exec(select(Department).where(Department.name == "Engineering")).one()
        dept.head_email, dept.digest_recipients = "new.head@example.com", ["engineering-leads@example.com"]
        session.add(dept)
    page = client.get(ack)
    assert page.status_code == 403 and "charged twice" not in page.text
    assert client.post(ack, data={**fields, "state": "planned"}).status_code == 403
    with session_scope(engine) as session:
        assert session.exec(select(Observation)).one().ack_state == "new"


# ------------------------------------------------------------------------------------ JSON API


def api_body(**overrides):
    data = {
        "text": "Export to CSV fails for card 4111 1111 1111 1111",
        "impact": 3,
        "product_area": "export",
        "category": "bug",
        "customer_count": 2,
    }
    data.update(overrides)
    return data


def test_api_auth_validation_create_and_replay(client, engine, world):
    with session_scope(engine) as session:
        _row, rotator_secret = create_api_token(session, "rita-phone", session.get(Employee, world["rotator"]))
        _row, integration_secret = create_api_token(session, "zendesk")
    url = "/api/observations"
    assert client.post(url, json=api_body()).status_code == 401
    assert client.post(url, json={"impact": "bad"}).status_code == 401  # authentication before validation
    r = client.post(url, json=api_body(), headers={"Authorization": "Bearer flo_wrong"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    auth = {"Authorization": f"Bearer {rotator_secret}"}
    r = client.post(url, json=api_body(impact=7, product_area="moon", colour="red", text=""), headers=auth)
    assert r.status_code == 422
    problems = {tuple(e["loc"]): e["msg"] for e in r.json()["detail"]}
    assert problems[("body", "impact")] == "Input should be less than or equal to 5"
    assert problems[("body", "colour")] == "Extra inputs are not permitted"
    assert ("body", "text") in problems
    r = client.post(url, json=api_body(product_area="moon"), headers=auth)  # policy check, after auth
    assert r.status_code == 422 and "unknown product area 'moon'" in r.json()["detail"][0]["msg"]
    assert (
        client.post(url, content=b"{not json", headers={**auth, "content-type": "application/json"}).status_code == 422
    )
    created = client.post(url, json=api_body(client_request_id="req-1"), headers=auth)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["text"] == "Export to CSV fails for card [card]" and out["redactions"] == {"card": 1}
    assert out["target_department"] == "Engineering" and out["employee_id"] == "E100" and not out["replayed"]
    replay = client.post(url, json=api_body(client_request_id="req-1"), headers=auth)
    assert replay.status_code == 200 and replay.json()["id"] == out["id"] and replay.json()["replayed"]
    assert count(engine) == 1
    # a rotator token cannot submit for someone else
    assert client.post(url, json=api_body(employee_id="E200"), headers=auth).status_code == 403
    # an integration token must name the rotator
    iauth = {"Authorization": f"Bearer {integration_secret}"}
    r = client.post(url, json=api_body(), headers=iauth)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "employee_id"]
    r = client.post(url, json=api_body(employee_id="E200"), headers=iauth)
    assert r.status_code == 201 and r.json()["employee_id"] == "E200"
    # the same client_request_id from another rotator is a conflict, not a replay
    assert (
        client.post(url, json=api_body(employee_id="E200", client_request_id="req-1"), headers=iauth).status_code == 409
    )
    with session_scope(engine) as session:
        revoke_api_token(session, "zendesk")
    assert client.post(url, json=api_body(employee_id="E200"), headers=iauth).status_code == 401
    assert count(engine) == 2
    with session_scope(engine) as session:
        sources = session.exec(select(Observation.source)).all()
        assert sources == ["api", "api"]
        assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "observation.submitted")).all()) == 2


def test_api_rate_limit_and_size_limit(client, engine, world, settings):
    set_policy_value(settings, "submissions_per_hour", "2")
    with session_scope(engine) as session:
        _row, secret = create_api_token(session, "rita", session.get(Employee, world["rotator"]))
    auth = {"Authorization": f"Bearer {secret}"}
    assert [client.post("/api/observations", json=api_body(), headers=auth).status_code for _ in range(3)] == [
        201,
        201,
        429,
    ]
    r = client.post("/api/observations", json=api_body(), headers=auth)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    r = client.post("/api/observations", json=api_body(text="y" * 70_000), headers=auth)
    assert r.status_code == 413 and r.json()["detail"] == "request body too large: at most 64 KB"
    assert count(engine) == 2


def test_openapi_schema_describes_the_api(client):
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/api/observations"]["post"]
    assert {"201", "401", "422", "429"} <= set(op["responses"])
    assert op["security"] == [{"HTTPBearer": []}]
    props = schema["components"]["schemas"]["ObservationCreate"]["properties"]
    assert {
        "text",
        "impact",
        "customer_count",
        "product_area",
        "category",
        "target_department",
        "suggestion",
        "urgent",
        "client_request_id",
        "employee_id",
    } <= set(props)


# ------------------------------------------------------------------------------------ real server


def test_real_uvicorn_on_loopback(sqlite_settings, sqlite_engine, tmp_path):
    from mailserver import free_port

    write_policy(sqlite_settings)
    with session_scope(sqlite_engine) as session:
        made = org(session)
        rotator_id = made["rotator"].id
    port = free_port()
    env = {**os.environ, **{k: v for k, v in os.environ.items() if k.startswith("FRONTLINE_")}}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "frontline.web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
        link = base + path_of(observe_url(rotator_id))
        with httpx.Client() as http:
            page = http.get(link)
            assert page.status_code == 200
            r = http.post(link, data={**form_fields(page.text), **valid_form()})
            assert r.status_code == 200 and "Thank you" in r.text
            assert http.post(link + "x", data={**form_fields(page.text), **valid_form()}).status_code == 403
    finally:
        proc.terminate()
        proc.wait(10)
    with session_scope(sqlite_engine) as session:
        assert session.exec(select(Observation.text)).all() == ["Customer [email] was charged twice at checkout"]


# ------------------------------------------------------------------------------------ CLI


def test_cli_observe_add_and_api_tokens(world, engine):
    from typer.testing import CliRunner

    from frontline.cli import app

    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "observe",
            "add",
            "--employee",
            "E100",
            "--text",
            "Refund to DE89 3704 0044 0532 0130 00 failed",
            "--impact",
            "4",
            "--area",
            "billing",
            "--category",
            "bug",
            "--urgent",
            "--request-id",
            "cli-1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "stored for Finance (urgent: head emailed); redacted {'iban': 1}" in r.output
    r = runner.invoke(
        app,
        [
            "observe",
            "add",
            "--employee",
            "E100",
            "--text",
            "again",
            "--impact",
            "4",
            "--area",
            "billing",
            "--category",
            "bug",
            "--request-id",
            "cli-1",
        ],
    )
    assert r.exit_code == 0 and "already stored" in r.output
    r = runner.invoke(app, ["observe", "add", "--employee", "E100", "--text", "x", "--impact", "9", "--area", "moon"])
    assert r.exit_code == 2
    assert "impact: Input should be less than or equal to 5" in r.output and "unknown product area 'moon'" in r.output
    r = runner.invoke(app, ["observe", "add", "--employee", "NOPE", "--text", "x", "--impact", "1"])
    assert r.exit_code == 1 and "no employee with id 'NOPE'" in r.output
    with session_scope(engine) as session:
        obs = session.exec(select(Observation)).one()
        assert obs.source == "cli" and obs.text == "Refund to [iban] failed" and obs.urgent
        assert len(mails(session, "escalation")) == 2  # the head, and the rotator's mentor a copy
    r = runner.invoke(app, ["api-token", "create", "--name", "zendesk"])
    assert r.exit_code == 0, r.output
    secret = r.output.strip().splitlines()[-1]
    assert secret.startswith("flo_")
    assert runner.invoke(app, ["api-token", "create", "--name", "zendesk"]).exit_code == 1  # name in use
    listed = runner.invoke(app, ["api-token", "list"]).output
    assert "zendesk" in listed and secret not in listed
    assert runner.invoke(app, ["api-token", "revoke", "--name", "zendesk"]).exit_code == 0
    assert runner.invoke(app, ["api-token", "revoke", "--name", "zendesk"]).exit_code == 1
    link = runner.invoke(app, ["observe", "link", "--employee", "E100"]).output.strip()
    assert link.startswith("http://frontline.test/observe/")
