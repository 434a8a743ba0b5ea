"""Routing that learns: suggestions from human-routed observations, the policy table as fallback,
re-routes from the console and the digest (audited) that the router learns from."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from observation_factories import world_ids
from sqlmodel import select

from frontline.observations.routing import MIN_EXAMPLES, Example, RerouteError, Router, current_router, reroute
from models import AuditEvent, Department, Observation, session_scope

CSV = [
    "customer export to CSV breaks umlauts, Müller becomes MÃ¼ller",
    "csv export garbles accented names again",
    "Der CSV-Export zerstört die Umlaute",
    "exported contacts file shows Ã© instead of é",
    "names with accents are broken in the export",
]
VAT = [
    "invoice shows 19% VAT for an Austrian customer, should be 20%",
    "wrong VAT rate on the invoice for a Dutch shop",
    "VAT on invoice is wrong for Belgium",
    "Rechnung hat den falschen Mehrwertsteuersatz",
    "customer's accountant says our VAT rate on invoices is wrong",
]


def _examples(n: int) -> list[Example]:
    out = []
    for i in range(n):
        if i % 2:
            out.append(Example(VAT[i % len(VAT)] + f" #{i}", "billing", "bug", "Finance"))
        else:
            out.append(Example(CSV[i % len(CSV)] + f" #{i}", "export", "bug", "Engineering"))
    return out


def test_router_learns_text_beyond_the_area_and_abstains_without_enough_examples():
    assert not Router(_examples(MIN_EXAMPLES - 1)).trained
    router = Router(_examples(MIN_EXAMPLES + 10))
    names = ["Engineering", "Finance", "Support"]
    # filed under a lazy "other" area: the text decides
    assert router.suggest("VAT rate wrong on the invoice", "other", "other", names) == "Finance"
    assert router.suggest("CSV export breaks the umlauts", "other", "other", names) == "Engineering"
    # an inactive (not allowed) department is never suggested: the next one is
    assert router.suggest("VAT rate wrong on the invoice", "other", "other", ["Engineering", "Support"]) in (
        "Engineering",
        "Support",
    )


@pytest.fixture
def world(sqlite_settings, sqlite_engine):
    return world_ids(sqlite_settings, sqlite_engine)


def _seed(engine, world, n: int, routed_by: str = "rotator") -> None:
    with session_scope(engine) as session:
        for e in _examples(n):
            session.add(
                Observation(
                    text=e.text,
                    impact=2,
                    product_area=e.product_area,
                    category=e.category,
                    target_department_id=world["depts"][e.department],
                    routed_by=routed_by,
                )
            )


def _submit(engine, world, text: str, area: str = "other", **extra):
    from frontline.observations.intake import submit
    from frontline.observations.policy import current_policy
    from models import Employee

    with session_scope(engine) as session:
        rotator = session.get(Employee, world["rotator"])
        data = {"text": text, "impact": 3, "product_area": area, "category": "bug", **extra}
        result = submit(session, rotator, data, "cli", policy=current_policy())
        return result.observation.routed_by, result.department_name


def test_intake_uses_the_table_until_people_have_routed_enough_then_the_router(world, sqlite_engine):
    # nothing learnt yet: the policy table answers (billing -> Finance in the example policy)
    assert _submit(sqlite_engine, world, "the VAT rate on our invoice is wrong", area="billing") == ("table", "Finance")
    # the router's and the table's own suggestions are never learnt from
    _seed(sqlite_engine, world, MIN_EXAMPLES + 10, routed_by="table")
    assert _submit(sqlite_engine, world, "VAT on invoice wrong again")[0] == "table"
    # rotators' choices are
    _seed(sqlite_engine, world, MIN_EXAMPLES + 10, routed_by="rotator")
    assert _submit(sqlite_engine, world, "invoice VAT rate wrong for Austria") == ("router", "Finance")
    assert _submit(sqlite_engine, world, "umlauts broken in the csv export") == ("router", "Engineering")
    # a rotator's explicit choice always wins
    assert _submit(sqlite_engine, world, "umlauts broken in csv", target_department="Product") == (
        "rotator",
        "Product",
    )


def test_reroute_is_audited_and_the_router_learns_from_it(world, sqlite_engine):
    _seed(sqlite_engine, world, MIN_EXAMPLES + 10)
    with session_scope(sqlite_engine) as session:
        before = current_router(session.connection())
        assert before.suggest("warehouse label printer jams", "other", "other", ["Engineering", "Finance"]) in (
            "Engineering",
            "Finance",
        )
        new = []
        for i in range(6):
            o = Observation(
                text=f"warehouse label printer jams every morning ({i})",
                impact=2,
                product_area="other",
                category="bug",
                target_department_id=world["depts"]["Engineering"],
                routed_by="router",
            )
            session.add(o)
            session.flush()
            new.append(o.id)
    with session_scope(sqlite_engine) as session:
        for oid in new:
            assert (
                reroute(session, oid, "Operations", actor="erin.head@example.com", reason="not ours") == "Engineering"
            )
        with pytest.raises(RerouteError):
            reroute(session, new[0], "Operations", actor="x")  # already there
        with pytest.raises(RerouteError):
            reroute(session, new[0], "Nowhere", actor="x")
    with session_scope(sqlite_engine) as session:
        obs = session.get(Observation, new[0])
        assert obs.routed_by == "head" and obs.target_department_id == world["depts"]["Operations"]
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "observation.rerouted")).first()
        assert event.actor == "erin.head@example.com" and event.reason == "not ours"
        assert event.details == {"from_department": "Engineering", "to_department": "Operations"}
        after = current_router(session.connection())
        assert after is not before  # retrained
        names = ["Engineering", "Finance", "Operations"]
        assert after.suggest("label printer in the warehouse jams", "other", "other", names) == "Operations"


def test_digest_link_reroutes_the_themes_observations(world, sqlite_engine):
    from frontline.core.links import theme_action_url
    from frontline.web.app import create_app

    with session_scope(sqlite_engine) as session:
        eng = session.get(Department, world["depts"]["Engineering"])
        from frontline.core import clock

        week = clock.iso_week(clock.today())
        o = Observation(
            text="VAT wrong on invoice",
            impact=2,
            product_area="billing",
            category="bug",
            target_department_id=eng.id,
            theme="VAT wrong on invoice",
            routed_by="table",
        )
        session.add(o)
        session.flush()
        oid = o.id
        link = theme_action_url(eng.id, week, "billing", "bug", "VAT wrong on invoice", eng.head_email)
    path = "/" + link.split("/", 3)[3]
    client = TestClient(create_app())
    page = client.get(path)
    assert page.status_code == 200 and "Not ours?" in page.text and "<option>Finance</option>" in page.text
    action = re.search(r'action="(/digest/theme/[^"]+/reroute)"', page.text).group(1)
    r = client.post(action, data={"department": "Finance"})
    assert r.status_code == 200 and "Sent 1 observation to <strong>Finance</strong>" in r.text
    with session_scope(sqlite_engine) as session:
        obs = session.get(Observation, oid)
        assert obs.target_department_id == world["depts"]["Finance"] and obs.routed_by == "head"
    # a tampered token changes nothing
    assert client.post(action.replace("/reroute", "x/reroute"), data={"department": "Support"}).status_code in (
        403,
        404,
    )


def test_table_entry_naming_a_missing_department_is_reported_by_status(world, sqlite_engine):
    from frontline.observations.routing import table_problems
    from frontline.operations.status import collect_status, routing_table_problems

    assert table_problems({"shipping": "Operations"}, ["Support", "operations"]) == []
    with session_scope(sqlite_engine) as session:
        assert routing_table_problems(session) == []  # the example policy's departments all exist
        ops = session.get(Department, world["depts"]["Operations"])
        ops.active = False
        session.add(ops)
    with session_scope(sqlite_engine) as session:
        problems = [r["problem"] for r in routing_table_problems(session)]
        assert len(problems) == 2 and all("'Operations'" in p for p in problems)  # hardware and shipping
        assert "'hardware'" in problems[0] and "'shipping'" in problems[1]
        from frontline.core import clock

        report = collect_status(session, now=clock.utcnow(), with_prefect=False)
        assert report["stuck"]["routing_table_unknown_departments"] and not report["ok"]
