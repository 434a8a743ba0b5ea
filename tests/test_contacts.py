"""Contacts handled (issue 17): recorded on the observation page and by integrations
(``POST /api/contacts`` with the API token auth), one row per rotator and day (the latest wins), and the
weekly totals the digest divides by."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from observation_factories import world_ids
from sqlmodel import select

from frontline.core import clock
from frontline.core.links import observe_url
from frontline.observations.api_tokens import create_api_token
from frontline.observations.contacts import share_text, weekly_contacts
from models import AuditEvent, ContactCount, Employee, session_scope


@pytest.fixture
def world(settings, engine):
    return world_ids(settings, engine)


@pytest.fixture
def client(world):
    from frontline.web.app import create_app

    with TestClient(create_app()) as c:
        yield c


def _rows(engine) -> list[tuple[int, date, int, dict, str]]:
    with session_scope(engine) as s:
        rows = s.exec(select(ContactCount).order_by(ContactCount.day)).all()
        return [(r.employee_id, r.day, r.contacts, r.by_area, r.source) for r in rows]


def test_rotator_records_contacts_on_the_observation_page(client, engine, world):
    link = observe_url(world["rotator"]).removeprefix("http://frontline.test")
    page = client.get(link).text
    assert 'id="contacts-form"' in page and 'name="contacts"' in page
    nonce = re.search(r'id="contacts-form".*?name="nonce" value="([^"]+)"', page, re.S).group(1)
    today = clock.today()
    r = client.post(f"{link}/contacts", data={"nonce": nonce, "contacts": "42", "day": today.isoformat()})
    assert r.status_code == 200 and "Recorded: 42 contacts" in r.text
    # again the same day, split by area: replaces the number, never adds a second row
    r = client.post(
        f"{link}/contacts",
        data={"nonce": nonce, "contacts": "45", "day": today.isoformat(), "area:export": "20", "area:billing": "5"},
    )
    assert r.status_code == 200, r.text
    assert _rows(engine) == [(world["rotator"], today, 45, {"export": 20, "billing": 5}, "web")]
    # refused: areas adding up to more than the total, a future day, no number, someone else's nonce
    bad = client.post(f"{link}/contacts", data={"nonce": nonce, "contacts": "3", "area:export": "9"})
    assert bad.status_code == 422 and "more than 3" in bad.text
    future = (today + timedelta(days=1)).isoformat()
    assert client.post(f"{link}/contacts", data={"nonce": nonce, "contacts": "3", "day": future}).status_code == 422
    assert client.post(f"{link}/contacts", data={"nonce": nonce, "contacts": ""}).status_code == 422
    other = observe_url(world["other"]).removeprefix("http://frontline.test")
    assert client.post(f"{other}/contacts", data={"nonce": nonce, "contacts": "1"}).status_code == 403
    assert _rows(engine) == [(world["rotator"], today, 45, {"export": 20, "billing": 5}, "web")]
    with session_scope(engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "contacts.recorded")).all()
        assert [e.details["contacts"] for e in events] == [42, 45]


def test_integration_posts_contacts_with_the_api_token(client, engine, world):
    with session_scope(engine) as s:
        _row, rotator_secret = create_api_token(s, "rita-phone", s.get(Employee, world["rotator"]))
        _row, integration_secret = create_api_token(s, "telephony")
    today = clock.today()
    yesterday = today - timedelta(days=1)
    assert client.post("/api/contacts", json={"day": today.isoformat(), "contacts": 5}).status_code == 401
    iauth = {"Authorization": f"Bearer {integration_secret}"}
    body = {"day": today.isoformat(), "contacts": 5}
    missing = client.post("/api/contacts", json=body, headers=iauth)
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "employee_id"]
    batch = {
        "items": [
            {
                "employee_id": world["rotator_hr"],
                "day": yesterday.isoformat(),
                "contacts": 30,
                "by_area": {"export": 4},
            },
            {"employee_id": world["rotator_hr"], "day": today.isoformat(), "contacts": 12},
        ]
    }
    r = client.post("/api/contacts", json=batch, headers=iauth)
    assert r.status_code == 201, r.text
    assert [(x["day"], x["contacts"]) for x in r.json()] == [(yesterday.isoformat(), 30), (today.isoformat(), 12)]
    # the rotator's own token: for themselves only; re-sending a day replaces it
    auth = {"Authorization": f"Bearer {rotator_secret}"}
    assert client.post("/api/contacts", json={**body, "contacts": 14}, headers=auth).status_code == 201
    with session_scope(engine) as s:
        other_hr = s.get(Employee, world["other"]).employee_id
    assert client.post("/api/contacts", json={**body, "employee_id": other_hr}, headers=auth).status_code == 403
    unknown_area = client.post("/api/contacts", json={**body, "by_area": {"teleport": 1}}, headers=auth)
    assert unknown_area.status_code == 422 and "teleport" in unknown_area.text
    assert client.post("/api/contacts", json={**body, "contacts": -1}, headers=auth).status_code == 422
    assert _rows(engine) == [
        (world["rotator"], yesterday, 30, {"export": 4}, "api"),
        (world["rotator"], today, 14, {}, "api"),
    ]
    with session_scope(engine) as s:
        monday = today - timedelta(days=today.weekday())
        totals = weekly_contacts(s, [monday - timedelta(days=7), monday])
    assert sum(totals) == 44 and totals[1] == (44 if yesterday >= monday else 14)


def test_share_text_needs_a_large_enough_base():
    assert share_text(12, 480) == "12 of 480 (2.5%)"
    assert share_text(120, 480) == "120 of 480 (25%)"
    assert share_text(3, 40) == "3 of 40"  # below 100 contacts: no percentage
    assert share_text(3, 0) == "3"
