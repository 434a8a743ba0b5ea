"""SCIM 2.0 provisioning (``/scim/v2``) through the real app on SQLite and PostgreSQL: Okta's and Entra ID's
requests, the employee each User provisions, the new-hire event, leavers and the leaver safety rule, bad input
refused with nothing written, and the connector status. ``test_scim2_tester_against_uvicorn`` runs
scim2-tester's conformance checks against uvicorn on loopback."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from observation_factories import forget_cached_policies, write_policy
from sqlmodel import func, select

from frontline.core import clock
from frontline.people.events import onboarding_candidates
from frontline.people.scim import create_token, held_leavers, revoke_token
from models import (
    AuditEvent,
    ConnectorStatus,
    Department,
    Employee,
    MentorPairing,
    Rotation,
    ScimResource,
    session_scope,
)

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
FL = "urn:ietf:params:scim:schemas:extension:frontline:2.0:User"
CT = {"Content-Type": "application/scim+json"}


def monday_after(days: int) -> date:
    day = clock.today() + timedelta(days=days)
    return day - timedelta(days=day.weekday())


def company(session, staff: int = 0) -> dict:
    """Departments Support, Sales, Engineering; ``staff`` employees E001.. in Engineering, each with a draft
    rotation in four weeks and an active mentor pairing (mentor M1 in Support)."""
    depts = {}
    for name in ("Support", "Sales", "Engineering"):
        d = Department(name=name, head_name=f"{name} Head", head_email=f"{name.lower()}.head@example.com")
        session.add(d)
        depts[name] = d
    session.flush()
    mentor = Employee(
        employee_id="M1",
        name="Mona Mentor",
        email="m1@example.com",
        department_id=depts["Support"].id,
        hire_date=date(2019, 1, 1),
        timezone="Europe/Berlin",
        country="DE",
        is_mentor=True,
        mentor_capacity=3,
    )
    session.add(mentor)
    session.flush()
    for i in range(1, staff + 1):
        e = Employee(
            employee_id=f"E{i:03d}",
            name=f"Person {i}",
            email=f"e{i:03d}@example.com",
            department_id=depts["Engineering"].id,
            hire_date=date(2020, 1, 1),
            timezone="Europe/Berlin",
            country="DE",
        )
        session.add(e)
        session.flush()
        start = monday_after(28)
        r = Rotation(employee_id=e.id, start=start, end=start + timedelta(days=13), kind="cycle", due=start)
        session.add(r)
        session.flush()
        session.add(MentorPairing(rotation_id=r.id, mentor_id=mentor.id, status="active"))
    session.flush()
    return {name: d.id for name, d in depts.items()}


@pytest.fixture
def scim_world(settings, engine):
    write_policy(settings)
    forget_cached_policies()
    with session_scope(engine) as session:
        company(session, staff=12)
        _row, secret = create_token(session, "okta")
    from frontline.web.app import create_app

    client = TestClient(create_app(), base_url="http://frontline.test")
    client.headers["Authorization"] = f"Bearer {secret}"
    return client, secret


def user(user_name: str, number: str | None = None, department: str = "Sales", **extra) -> dict:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT, FL],
        "userName": user_name,
        "name": {"givenName": "Ana", "familyName": "Lima"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
        "timezone": "America/Sao_Paulo",
        "preferredLanguage": "pt-BR",
        ENT: {"department": department, **({"employeeNumber": number} if number else {})},
        FL: {},
    }
    body.update(extra)
    return body


def counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return (
            session.exec(select(func.count()).select_from(Employee)).one(),
            session.exec(select(func.count()).select_from(ScimResource)).one(),
            session.exec(select(func.count()).select_from(Rotation).where(Rotation.status == "cancelled")).one(),
        )


def connector(engine) -> ConnectorStatus:
    with session_scope(engine) as session:
        row = session.exec(select(ConnectorStatus).where(ConnectorStatus.name == "scim")).one()
        session.expunge(row)
        return row


# ------------------------------------------------------------------------------------------- new hires


def test_created_user_with_future_start_is_a_new_hire(scim_world, engine):
    client, _ = scim_world
    start = monday_after(21)
    body = user("ana.lima@example.com", "E777")
    body[FL] = {"startDate": start.isoformat(), "country": "BR"}
    r = client.post("/scim/v2/Users", json=body, headers=CT)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] and created["meta"]["location"].endswith(f"/scim/v2/Users/{created['id']}")
    assert created[FL]["startDate"] == start.isoformat()
    with session_scope(engine) as session:
        e = session.exec(select(Employee).where(Employee.employee_id == "E777")).one()
        assert (e.name, e.email, e.hire_date, e.timezone, e.country) == (
            "Ana Lima",
            "ana.lima@example.com",
            start,
            "America/Sao_Paulo",
            "BR",
        )
        assert e.languages == ["pt-BR"] and e.active
        assert session.get(Department, e.department_id).name == "Sales"
        assert onboarding_candidates(session, ["E777"]) == ["E777"]
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "scim.user")).one()
        assert "new hire" in event.reason
    assert "created employee E777 (new hire)" in connector(engine).last_success


def test_user_of_a_roster_employee_adopts_it_and_updates_it(scim_world, engine):
    client, _ = scim_world
    r = client.post("/scim/v2/Users", json=user("e001@example.com", "E001", department="Engineering"), headers=CT)
    assert r.status_code == 201, r.text
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Employee).where(Employee.employee_id == "E001")).one() == 1
        e = session.exec(select(Employee).where(Employee.employee_id == "E001")).one()
        assert e.timezone == "America/Sao_Paulo" and e.hire_date == date(2020, 1, 1)  # start date kept
        assert onboarding_candidates(session, ["E001"]) == []  # not a new hire
    # Okta's PUT: the whole user
    body = {**user("e001@example.com", "E001", department="Sales"), "title": "Account Executive"}
    r = client.put(f"/scim/v2/Users/{r.json()['id']}", json=body, headers=CT)
    assert r.status_code == 200, r.text
    with session_scope(engine) as session:
        e = session.exec(select(Employee).where(Employee.employee_id == "E001")).one()
        assert e.title == "Account Executive" and session.get(Department, e.department_id).name == "Sales"


# --------------------------------------------------------------------------------------------- leavers


def _provision(client, number: str) -> str:
    r = client.post(
        "/scim/v2/Users", json=user(f"{number.lower()}@example.com", number, department="Engineering"), headers=CT
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.mark.parametrize(
    "dialect",
    [
        # Entra ID: capitalised op, the path, and a string for the boolean
        {"op": "Replace", "path": "active", "value": "False"},
        # Okta: no path, a value object
        {"op": "replace", "value": {"active": False}},
    ],
    ids=["entra", "okta"],
)
def test_deactivated_user_is_a_leaver_with_future_rotations_cancelled(scim_world, engine, dialect):
    client, _ = scim_world
    scim_id = _provision(client, "E002")
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [dialect]}
    r = client.patch(f"/scim/v2/Users/{scim_id}", json=patch, headers=CT)
    assert r.status_code in (200, 204), r.text
    assert client.get(f"/scim/v2/Users/{scim_id}").json()["active"] is False
    with session_scope(engine) as session:
        e = session.exec(select(Employee).where(Employee.employee_id == "E002")).one()
        assert not e.active and e.left_on == clock.today()
        rotation = session.exec(select(Rotation).where(Rotation.employee_id == e.id)).one()
        assert rotation.status == "cancelled" and "SCIM" in rotation.change_reason
        pairing = session.exec(select(MentorPairing).where(MentorPairing.rotation_id == rotation.id)).one()
        assert pairing.status == "cancelled"
    # active again: the employee is back (the cancelled rotation stays cancelled; the next plan places them)
    patch["Operations"] = [{"op": "Replace", "path": "active", "value": "True"}]
    assert client.patch(f"/scim/v2/Users/{scim_id}", json=patch, headers=CT).status_code in (200, 204)
    with session_scope(engine) as session:
        e = session.exec(select(Employee).where(Employee.employee_id == "E002")).one()
        assert e.active and e.left_on is None


def test_delete_is_a_deactivation_and_the_record_is_gone(scim_world, engine):
    client, _ = scim_world
    scim_id = _provision(client, "E003")
    assert client.delete(f"/scim/v2/Users/{scim_id}").status_code == 204
    assert client.get(f"/scim/v2/Users/{scim_id}").status_code == 404
    with session_scope(engine) as session:
        e = session.exec(select(Employee).where(Employee.employee_id == "E003")).one()
        assert not e.active  # kept, never deleted
    # provisioned again later (same employee number, same userName): the same employee, active again
    again = _provision(client, "E003")
    assert again != scim_id
    with session_scope(engine) as session:
        assert session.exec(select(Employee).where(Employee.employee_id == "E003")).one().active


def test_mass_deactivation_beyond_the_policy_is_held_for_hr(scim_world, engine, settings):
    """Policy roster: max(5, 10% of 13 active) = 5 leavers per 24 h without confirmation; the sixth is held."""
    client, _ = scim_world
    ids = [_provision(client, f"E{i:03d}") for i in range(1, 8)]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    for scim_id in ids:
        assert client.patch(f"/scim/v2/Users/{scim_id}", json=patch, headers=CT).status_code in (200, 204)
    with session_scope(engine) as session:
        left = session.exec(select(Employee.employee_id).where(Employee.active == False)).all()  # noqa: E712
        assert sorted(left) == ["E001", "E002", "E003", "E004", "E005"]
        held = held_leavers(session)
        assert [h["employee_id"] for h in held] == ["E006", "E007"]
        e6 = session.exec(select(Employee).where(Employee.employee_id == "E006")).one()
        assert session.exec(select(Rotation).where(Rotation.employee_id == e6.id)).one().status == "draft"
    # the provider sees what it asked for; Frontline waits for HR
    assert client.get(f"/scim/v2/Users/{ids[5]}").json()["active"] is False
    assert "held for HR confirmation" in connector(engine).last_success
    # one more, deleted instead: held as well; provisioned again, the hold goes with the old record
    extra = _provision(client, "E008")
    assert client.delete(f"/scim/v2/Users/{extra}").status_code == 204
    with session_scope(engine) as session:
        assert [h["employee_id"] for h in held_leavers(session)] == ["E006", "E007", "E008"]
    _provision(client, "E008")
    with session_scope(engine) as session:
        assert [h["employee_id"] for h in held_leavers(session)] == ["E006", "E007"]
        assert session.exec(select(Employee).where(Employee.employee_id == "E008")).one().active
    from typer.testing import CliRunner

    from frontline.cli import app

    status = CliRunner().invoke(app, ["status", "--json"])
    assert "E006" in status.output and "scim_deactivations_held" in status.output
    out = CliRunner().invoke(app, ["scim", "leavers", "confirm", "E006"])
    assert out.exit_code == 0, out.output
    with session_scope(engine) as session:
        e6 = session.exec(select(Employee).where(Employee.employee_id == "E006")).one()
        assert not e6.active
        assert session.exec(select(Rotation).where(Rotation.employee_id == e6.id)).one().status == "cancelled"
        assert [h["employee_id"] for h in held_leavers(session)] == ["E007"]
    # the provider re-activating a held user withdraws the hold
    patch["Operations"] = [{"op": "Replace", "path": "active", "value": "True"}]
    assert client.patch(f"/scim/v2/Users/{ids[6]}", json=patch, headers=CT).status_code in (200, 204)
    with session_scope(engine) as session:
        assert held_leavers(session) == []
        assert session.exec(select(Employee).where(Employee.employee_id == "E007")).one().active


# ------------------------------------------------------------------------------------------- bad input


def test_bad_token_is_401_and_recorded_without_the_token(scim_world, engine):
    client, secret = scim_world
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer fls_wrong"}, {"Authorization": f"Basic {secret}"}):
        r = client.get("/scim/v2/Users", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    r = client.post("/scim/v2/Users", json=user("x@example.com", "X1"), headers={**CT, "Authorization": "Bearer nope"})
    assert r.status_code == 401 and counts(engine)[1] == 0
    status = connector(engine)
    assert "401" in status.last_error and "nope" not in status.last_error and secret not in status.last_error
    with session_scope(engine) as session:
        revoke_token(session, "okta")
    assert client.get("/scim/v2/Users").status_code == 401
    # discovery needs no token (RFC 7643 section 5)
    assert client.get("/scim/v2/ServiceProviderConfig", headers={"Authorization": ""}).status_code == 200


def test_malformed_payload_is_400_with_scim_type_and_nothing_written(scim_world, engine):
    client, _ = scim_world
    before = counts(engine)
    r = client.post("/scim/v2/Users", content=b'{"userName": "broken"', headers=CT)
    assert r.status_code == 400 and r.json()["scimType"] == "invalidSyntax", r.text
    bad_zone = user("tz@example.com", "TZ1", timezone="Mars/Olympus")
    r = client.post("/scim/v2/Users", json=bad_zone, headers=CT)
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert "timezone" in r.json()["detail"] and "Mars/Olympus" in r.json()["detail"]
    r = client.post("/scim/v2/Users", json=user("d@example.com", "D1", department="Marketing"), headers=CT)
    assert r.status_code == 400 and "Marketing" in r.json()["detail"] and "department" in r.json()["detail"]
    start = user("s@example.com", "S1")
    start[FL] = {"startDate": "next monday"}
    r = client.post("/scim/v2/Users", json=start, headers=CT)
    assert r.status_code == 400 and "startDate" in r.json()["detail"]
    assert counts(engine) == before  # no SCIM record, no employee
    assert "400 invalidValue" in connector(engine).last_error
    # a PATCH that fails half-way (the second operation is invalid) changes nothing
    scim_id = _provision(client, "E004")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "title", "value": "Changed"},
            {"op": "replace", "path": "timezone", "value": "Nowhere/Atlantis"},
        ],
    }
    r = client.patch(f"/scim/v2/Users/{scim_id}", json=patch, headers=CT)
    assert r.status_code == 400, r.text
    with session_scope(engine) as session:
        e = session.exec(select(Employee).where(Employee.employee_id == "E004")).one()
        assert e.title == "" and e.timezone == "America/Sao_Paulo"
    assert "title" not in client.get(f"/scim/v2/Users/{scim_id}").json()


def test_unknown_user_is_404(scim_world, engine):
    client, _ = scim_world
    assert client.get("/scim/v2/Users/nope").status_code == 404
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    r = client.patch("/scim/v2/Users/nope", json=patch, headers=CT)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    assert client.delete("/scim/v2/Users/nope").status_code == 404
    assert "PATCH" in connector(engine).last_error or "DELETE" in connector(engine).last_error


def test_uniqueness_is_409_and_nothing_written(scim_world, engine):
    client, _ = scim_world
    assert client.post("/scim/v2/Users", json=user("ana@example.com", "A1"), headers=CT).status_code == 201
    before = counts(engine)
    r = client.post("/scim/v2/Users", json=user("ANA@example.com", "A2"), headers=CT)  # userName is case-insensitive
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness", r.text
    # an e-mail address held by a roster employee with another employee number
    r = client.post("/scim/v2/Users", json=user("e005@example.com", "OTHER"), headers=CT)
    assert r.status_code == 409 and "e005@example.com" in r.json()["detail"]
    # the employee number of an employee another user provisions
    r = client.post("/scim/v2/Users", json=user("ana2@example.com", "A1"), headers=CT)
    assert r.status_code == 409 and "A1" in r.json()["detail"]
    assert counts(engine) == before


# ------------------------------------------------------------------------------------ filters, groups


def test_filters_and_pagination(scim_world):
    client, _ = scim_world
    made = {}
    for i in range(1, 6):
        body = user(f"p{i}@example.com", f"P{i}", externalId=f"okta-{i}")
        made[i] = client.post("/scim/v2/Users", json=body, headers=CT).json()["id"]

    def search(flt: str, **params) -> dict:
        r = client.get("/scim/v2/Users", params={"filter": flt, **params})
        assert r.status_code == 200, r.text
        return r.json()

    assert [u["id"] for u in search('userName eq "P3@EXAMPLE.COM"')["Resources"]] == [made[3]]
    assert [u["id"] for u in search('externalId eq "okta-4"')["Resources"]] == [made[4]]
    assert [u["id"] for u in search('emails[type eq "work"].value eq "p2@example.com"')["Resources"]] == [made[2]]
    assert search('userName eq "nobody@example.com"')["totalResults"] == 0
    page = search('userName sw "p"', startIndex=2, count=2)
    assert page["totalResults"] == 5 and page["startIndex"] == 2 and len(page["Resources"]) == 2
    assert [u["id"] for u in page["Resources"]] == [made[2], made[3]]
    r = client.get("/scim/v2/Users", params={"filter": 'userName eq "unterminated'})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidFilter"


def test_groups_are_served_and_change_nothing(scim_world, engine):
    client, _ = scim_world
    alice = _provision(client, "E001")
    bob = _provision(client, "E002")
    before = counts(engine)
    r = client.post(
        "/scim/v2/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Frontline users"},
        headers=CT,
    )
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": alice}, {"value": bob}]}],
    }
    assert client.patch(f"/scim/v2/Groups/{gid}", json=patch, headers=CT).status_code in (200, 204)
    group = client.get(f"/scim/v2/Groups/{gid}").json()
    assert sorted(m["value"] for m in group["members"]) == sorted([alice, bob])
    patch["Operations"] = [{"op": "Remove", "path": f'members[value eq "{bob}"]'}]
    assert client.patch(f"/scim/v2/Groups/{gid}", json=patch, headers=CT).status_code in (200, 204)
    assert [m["value"] for m in client.get(f"/scim/v2/Groups/{gid}").json()["members"]] == [alice]
    listed = client.get("/scim/v2/Groups", params={"filter": 'displayName eq "Frontline users"'}).json()
    assert listed["totalResults"] == 1
    assert client.delete(f"/scim/v2/Groups/{gid}").status_code == 204
    assert client.get(f"/scim/v2/Groups/{gid}").status_code == 404
    employees, _records, cancelled = counts(engine)
    assert (employees, cancelled) == (before[0], before[2])


def test_status_lists_the_connector(scim_world, engine):
    client, _ = scim_world
    _provision(client, "E001")
    client.get("/scim/v2/Users", headers={"Authorization": "Bearer wrong"})
    from typer.testing import CliRunner

    from frontline.cli import app

    def row() -> dict:
        data = json.loads(CliRunner().invoke(app, ["status", "--json"]).output)
        return next(c for c in data["connectors"] if c["connector"] == "scim")

    failing = row()
    assert failing["state"] == "FAILING" and "401" in failing["detail"] and "wrong" not in failing["detail"]
    assert failing["last_success"] != "never" and failing["last_error"] != "never"
    _provision(client, "E002")
    ok = row()
    assert ok["state"] == "ok" and "employee E002" in ok["detail"]


# ------------------------------------------------------------------------- the running app, scim2-tester


class EventRecorder:
    """A loopback HTTP server standing in for the Prefect API's ``POST /api/events``: records what it gets."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        events: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/api/events":
                    events.extend(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.events = events
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def provider_with_examples():
    """The provider's models with example values for what Frontline checks against its own data (a roster
    department, an IANA time zone, language tags, a date, a country code): scim2-tester fills every other
    attribute with random strings, which Frontline rightly refuses for these."""
    import typing

    from frontline.people.scim import provider

    p = provider()
    models = {m.__name__: m for m in p.models}
    user_models = (models["User"], p.model_for("User"))

    def examples(model, field: str, values: list[str]) -> None:
        model.model_fields[field].examples = values

    examples(models["EnterpriseUser"], "department", ["Sales", "Engineering", "support"])
    examples(models["FrontlineUser"], "start_date", ["2027-01-04", "2026-03-02T00:00:00Z"])
    examples(models["FrontlineUser"], "country", ["DE", "BR", "us"])
    for m in user_models:
        examples(m, "timezone", ["Europe/Berlin", "America/Sao_Paulo"])
        examples(m, "preferred_language", ["en-US", "de"])
        examples(m, "locale", ["pt-BR", "fr_FR"])
    address = typing.get_args(typing.get_args(models["User"].model_fields["addresses"].annotation)[0])[0]
    examples(address, "country", ["DE", "JP"])
    return p


def test_scim2_tester_against_uvicorn(settings, engine, tmp_path):
    """uvicorn on loopback serving the whole app; scim2-tester runs every check it has (discovery, CRUD of
    Users and Groups, filters, attributes, PATCH add/replace/remove, random URLs): all must succeed. Then a
    new hire created over HTTP reaches the (recording) Prefect API as a frontline.employee.hired event."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx
    import httpx2
    from mailserver import free_port
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import check_server
    from scim2_tester.utils import Status

    write_policy(settings)
    with session_scope(engine) as session:
        company(session, staff=3)
        _row, secret = create_token(session, "tester")
    recorder = EventRecorder()
    port = free_port()
    env = {**os.environ, "PREFECT_API_URL": recorder.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "frontline.web.app:create_app", "--factory"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
        http = httpx2.Client(base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {secret}"})
        results = check_server(SyncSCIMClient(http, provider=provider_with_examples()))
        failed = [(r.status.name, r.resource_type, r.title, r.reason) for r in results if r.status != Status.SUCCESS]
        assert not failed, failed
        assert len(results) > 100 and {r.resource_type for r in results} >= {"User", "Group"}
        # a new hire over HTTP: the event goes out after the commit
        body = user("new.hire@example.com", "NH1")
        body[FL] = {"startDate": monday_after(14).isoformat()}
        r = httpx.post(f"{base}/scim/v2/Users", json=body, headers={**CT, "Authorization": f"Bearer {secret}"})
        assert r.status_code == 201, r.text
        hired = [e for e in recorder.events if e["payload"].get("employee_id") == "NH1"]
        assert [(e["event"], e["payload"]) for e in hired] == [
            ("frontline.employee.hired", {"employee_id": "NH1", "source": "scim"})
        ]
        assert hired[0]["resource"]["prefect.resource.id"] == "frontline.employee.NH1"
    finally:
        proc.terminate()
        proc.wait(10)
        recorder.close()
    log = proc.stdout.read().decode()
    assert secret not in log


def test_user_without_department_waits_until_the_provider_sends_one(scim_world, engine):
    client, _ = scim_world
    body = user("late@example.com", "L1")
    del body[ENT]["department"]
    r = client.post("/scim/v2/Users", json=body, headers=CT)
    assert r.status_code == 201, r.text
    from frontline.people.scim import unprovisioned_users

    with session_scope(engine) as session:
        assert session.exec(select(Employee).where(Employee.employee_id == "L1")).first() is None
        assert [(u["userName"], u["missing"]) for u in unprovisioned_users(session)] == [
            ("late@example.com", "department")
        ]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": f"{ENT}:department", "value": "Sales"}],
    }
    assert client.patch(f"/scim/v2/Users/{r.json()['id']}", json=patch, headers=CT).status_code in (200, 204)
    with session_scope(engine) as session:
        assert session.exec(select(Employee).where(Employee.employee_id == "L1")).one().active
        assert unprovisioned_users(session) == []


def test_database_down_is_503_with_retry_after_and_nothing_written(scim_world, engine, monkeypatch):
    """Frontline is the SCIM server: "the other side down" is its own database. The provider is told to
    retry (Okta and Entra ID do); the connector's error is recorded once the database answers again."""
    from frontline.core.settings import get_settings

    client, _ = scim_world
    before = counts(engine)
    good = get_settings().database_url
    monkeypatch.setenv("FRONTLINE_DATABASE_URL", "postgresql://frontline@127.0.0.1:9/nowhere?connect_timeout=2")
    get_settings.cache_clear()
    r = client.post("/scim/v2/Users", json=user("down@example.com", "DN1"), headers=CT)
    assert r.status_code == 503 and r.headers["Retry-After"] == "60", r.text
    assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and "retry" in r.json()["detail"]
    monkeypatch.setenv("FRONTLINE_DATABASE_URL", good)
    get_settings.cache_clear()
    assert counts(engine) == before
    assert client.post("/scim/v2/Users", json=user("down@example.com", "DN1"), headers=CT).status_code == 201


def test_etags_and_body_limit(scim_world, engine):
    client, _ = scim_world
    r = client.post("/scim/v2/Users", json=user("etag@example.com", "ET1"), headers=CT)
    scim_id, etag = r.json()["id"], r.headers["ETag"]
    body = {**user("etag@example.com", "ET1"), "title": "First"}
    assert client.put(f"/scim/v2/Users/{scim_id}", json=body, headers={**CT, "If-Match": etag}).status_code == 200
    body["title"] = "Second"
    r = client.put(f"/scim/v2/Users/{scim_id}", json=body, headers={**CT, "If-Match": etag})  # stale version
    assert r.status_code == 412, r.text
    with session_scope(engine) as session:
        assert session.exec(select(Employee).where(Employee.employee_id == "ET1")).one().title == "First"
    big = {**user("big@example.com", "BIG"), "nickName": "x" * (1024 * 1024)}
    assert client.post("/scim/v2/Users", json=big, headers=CT).status_code == 413
    found = client.get("/scim/v2/Users", params={"filter": 'title eq "First" and active eq true'}).json()
    assert [u["id"] for u in found["Resources"]] == [scim_id]


def test_unfiltered_list_pages(scim_world):
    client, _ = scim_world
    made = [_provision(client, f"E{i:03d}") for i in range(1, 6)]
    page = client.get("/scim/v2/Users", params={"startIndex": 2, "count": 2}).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [u["id"] for u in page["Resources"]] == made[1:3]
    last = client.get("/scim/v2/Users", params={"startIndex": 5, "count": 10}).json()
    assert [u["id"] for u in last["Resources"]] == made[4:]
    assert client.get("/scim/v2/Users", params={"count": 0}).json()["totalResults"] == 5


def test_token_commands(settings, engine):
    from typer.testing import CliRunner

    from frontline.cli import app
    from frontline.people.scim import authenticate

    runner = CliRunner()
    made = runner.invoke(app, ["scim", "token", "create", "--name", "entra"])
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    assert secret.startswith("fls_") and authenticate(secret) == "entra"
    assert runner.invoke(app, ["scim", "token", "create", "--name", "entra"]).exit_code == 1  # name taken
    listed = runner.invoke(app, ["scim", "token", "list"])
    assert "entra" in listed.output and secret not in listed.output
    with session_scope(engine) as session:
        assert secret not in json.dumps([e.details for e in session.exec(select(AuditEvent)).all()])
    assert runner.invoke(app, ["scim", "token", "revoke", "--name", "entra"]).exit_code == 0
    assert authenticate(secret) is None
    assert runner.invoke(app, ["scim", "token", "revoke", "--name", "entra"]).exit_code == 1
    assert "no deactivation is held" in runner.invoke(app, ["scim", "leavers"]).output
