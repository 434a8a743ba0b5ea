"""Department digests: routing, numbers, trends, escaping, idempotency, size, opt-in, theme actions."""

from __future__ import annotations

import email
import re
from datetime import UTC, date, datetime, timedelta
from email import policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlmodel import select

from frontline.core.errors import DigestError
from frontline.digests.content import build_digest
from frontline.digests.loading import compute_themes, load_week
from frontline.digests.queue import preview_digests, queue_digests
from frontline.digests.render import MAX_HTML_BYTES, render_digest
from frontline.digests.weeks import last_completed_week, parse_week, shift_week, week_monday, week_window
from models import Department, Employee, Observation, OutboundMessage, Rotation, session_scope

WEEK = "2027-W05"  # Monday 1 February 2027
MONDAY = datetime(2027, 2, 1, tzinfo=UTC)


def _dept(session, name, **kw):
    d = Department(name=name, head_name=f"{name} Head", head_email=f"head@{name.lower()}.example", **kw)
    session.add(d)
    session.flush()
    return d


def _emp(session, name, dept):
    e = Employee(
        employee_id=name.lower(),
        name=name,
        email=f"{name.lower()}@example.com",
        department_id=dept.id,
        hire_date=date(2020, 1, 1),
        timezone="Europe/Berlin",
        country="DE",
    )
    session.add(e)
    session.flush()
    return e


def _obs(session, rotator, target, text, when, **kw):
    kw.setdefault("impact", 3)
    kw.setdefault("product_area", "export")
    kw.setdefault("category", "confusing_ux")
    o = Observation(
        rotator_id=rotator.id if rotator else None, target_department_id=target.id, text=text, created_at=when, **kw
    )
    session.add(o)
    session.flush()
    return o


def _rotation(session, employee, start, status):
    """A four-week cycle rotation of ``employee`` from ``start``."""
    session.add(
        Rotation(
            employee_id=employee.id,
            start=start,
            end=start + timedelta(weeks=4, days=-1),
            kind="cycle",
            due=start,
            status=status,
        )
    )


@pytest.fixture
def company(engine, settings):
    """Engineering, Sales, Support; observations in WEEK and the week before."""
    return _make_company(engine)


def _make_company(engine):
    with session_scope(engine) as s:
        eng = _dept(s, "Engineering", digest_recipients=["cto@example.com"])
        sales = _dept(s, "Sales")
        support = _dept(s, "Support")
        quiet = _dept(s, "Legal")
        alice, bob, carol = _emp(s, "Alice", eng), _emp(s, "Bob", sales), _emp(s, "Carol", support)
        t = MONDAY + timedelta(hours=10)
        _obs(s, bob, eng, "Customers can't find export", t)
        _obs(s, bob, eng, "Where is the export button?", t + timedelta(days=1), customer_count=3)
        _obs(s, carol, eng, "Customer could not locate the export menu", t + timedelta(days=2))
        _obs(
            s,
            carol,
            eng,
            "Checkout crashes when paying by card",
            t + timedelta(days=2),
            urgent=True,
            product_area="checkout",
            category="bug",
            impact=5,
        )
        _obs(
            s,
            alice,
            sales,
            "The pricing page is confusing about VAT",
            t + timedelta(days=3),
            product_area="billing",
            category="policy_pricing",
        )
        _obs(s, alice, eng, "Customers cannot find the export menu either", t + timedelta(days=4))
        # previous week: one export complaint addressed to Engineering
        _obs(s, bob, eng, "Cannot find where to export my data", t - timedelta(days=5))
        # next week (must not count)
        _obs(s, bob, eng, "Next week's complaint", t + timedelta(days=8))
        _rotation(s, alice, date(2027, 1, 25), "invited")
        dave, erin = _emp(s, "Dave", eng), _emp(s, "Erin", eng)
        _rotation(s, dave, date(2027, 2, 15), "draft")
        _rotation(s, erin, date(2027, 2, 8), "cancelled")
        ids = {"eng": eng.id, "sales": sales.id, "support": support.id, "legal": quiet.id}
    return ids


def _digest(engine, dept_id):
    with session_scope(engine) as s:
        data = load_week(s, WEEK)
        return build_digest(data, data.departments[dept_id])


def test_week_parsing_and_window(settings):
    assert week_monday("2027-W05") == date(2027, 2, 1)
    assert shift_week("2027-W01", -1) == "2026-W53"
    with pytest.raises(DigestError, match="expected ISO week"):
        parse_week("2027-5")
    with pytest.raises(DigestError, match="no ISO week 54"):
        parse_week("2027-W54")
    from zoneinfo import ZoneInfo

    start, end = week_window("2027-W05", ZoneInfo("Europe/Berlin"))
    assert start == datetime(2027, 1, 31, 23, tzinfo=UTC) and end - start == timedelta(days=7)


def test_routing_own_vs_addressed(engine, company):
    from frontline.digests.content import TAG_ADDRESSED, TAG_OWN

    eng = _digest(engine, company["eng"])
    metrics = {m.label: m.value for m in eng.metrics}
    assert metrics["addressed to you"] == 4  # Bob x2, Carol x2; not Alice's (own people) nor next week's
    assert metrics["from your people on rotation"] == 2  # Alice's two, to Sales and to Engineering (once, here)
    own_texts = sorted(q.text for t in eng.issues if TAG_OWN in t.tags for q in t.quotes)
    addressed_only = sorted(q.text for t in eng.issues if t.tags == [TAG_ADDRESSED] for q in t.quotes)
    assert "The pricing page is confusing about VAT" in own_texts
    assert "Customers cannot find the export menu either" in own_texts
    assert "Customers cannot find the export menu either" not in addressed_only
    assert "Next week's complaint" not in own_texts + addressed_only
    assert eng.observations == 6
    sales = {m.label: m.value for m in _digest(engine, company["sales"]).metrics}
    assert sales["addressed to you"] == 1  # Alice's pricing note is addressed to Sales
    assert sales["from your people on rotation"] == 2  # Bob's two this week (to Engineering; next week's excluded)
    assert [p.name for p in eng.rotating_now] == ["Alice"]
    assert [p.name for p in eng.rotating_next] == ["Dave"]  # Erin's rotation was cancelled


def test_numbers_shares_and_trend(engine, company):
    from frontline.digests.content import TAG_ADDRESSED, TAG_OWN

    eng = _digest(engine, company["eng"])
    metrics = {m.label: m for m in eng.metrics}
    assert metrics["addressed to you"].value == 4 and metrics["addressed to you"].previous == 1
    assert metrics["addressed to you"].change == "+3 (+300%) vs last week"
    assert metrics["customers affected"].value == 1 + 3 + 1 + 1 + 1 + 1
    assert metrics["urgent for you"].value == 1 and metrics["urgent for you"].change == "new this week"
    export = eng.issues[0]  # the export problem: most customers
    assert export.product_area == "export" and export.tags == [TAG_ADDRESSED, TAG_OWN]
    assert export.count == 4 and export.previous == 1 and export.trend == "+3 vs last week"
    assert export.customers == 6 and export.customers_text == "6 customers"  # no contacts recorded: no share
    assert export.share_text is None  # 6 observations: too few for a share
    assert [p.value for p in export.trend8][-2:] == [1, 4]
    assert sum(t.count for t in eng.issues) == eng.observations
    assert [u.text for u in eng.urgent] == ["Checkout crashes when paying by card"]
    assert eng.urgent[0].ack_state == "new"


def _parts(row: OutboundMessage):
    msg = email.message_from_bytes(row.mime, policy=policy.default)
    return msg, msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_queue_idempotent_headers_and_text_part(engine, company):
    with session_scope(engine) as s:
        out = {o.department: o for o in queue_digests(s, WEEK)}
    assert out["Engineering"].queued == 1 and out["Sales"].queued == 1 and out["Support"].queued == 1
    assert out["Legal"].queued == 0 and out["Legal"].skipped == "nothing to report"
    with session_scope(engine) as s:
        again = queue_digests(s, WEEK)
        assert sum(o.queued for o in again) == 0
        assert {o.department: o.already for o in again}["Engineering"] == 1
        rows = s.exec(select(OutboundMessage).where(OutboundMessage.kind == "digest")).all()
        assert len(rows) == 3
        eng = next(r for r in rows if r.recipient == "cto@example.com")
        assert eng.idempotency_key == f"digest:{company['eng']}:{WEEK}:cto@example.com"
        # themes were stored on the week's observations
        stored = s.exec(select(Observation.theme).where(Observation.text == "Where is the export button?")).one()
        assert (
            stored == s.exec(select(Observation.theme).where(Observation.text == "Customers can't find export")).one()
        )
    msg, text, html = _parts(eng)
    assert WEEK in msg["Subject"] and "Engineering" in msg["Subject"]
    assert msg["List-Unsubscribe"].startswith("<http://frontline.test/digest/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "<style" not in html and 'style="' in html  # CSS inlined
    assert "6 observations, 1 urgent (1 still open); top issue: " in html  # inbox preview line (hidden preheader)
    # the plain-text twin is readable: no markup, key facts present
    assert "<" not in text.replace("<http", "")
    assert "- 4 addressed to you (+3 (+300%) vs last week)" in text
    assert "TOP ISSUES FOR ENGINEERING" in text and '"Where is the export button?" - Bob' in text
    assert "[addressed to you, from your people]" in text  # the export problem once, both sources as tags
    assert "of this week's observations" not in text  # 6 observations: too few for a share
    assert "URGENT: 1 urgent (1 still open)" in text and "Urgent: 1 urgent (1 still open)" in html
    assert "- 1 urgent for you (new this week)" in text
    assert "Now: Alice (until 21 Feb)" in text and "Next: Dave (from 15 Feb)" in text
    assert "Unsubscribe: http://frontline.test/digest/unsubscribe/" in text


def test_empty_departments_skipped_unless_opted_in(engine, company):
    with session_scope(engine) as s:
        s.get(Department, company["legal"]).digest_when_empty = True
    with session_scope(engine) as s:
        out = {o.department: o for o in queue_digests(s, WEEK, department_ids=[company["legal"]])}
    assert out["Legal"].queued == 1
    with session_scope(engine) as s:
        row = s.exec(select(OutboundMessage).where(OutboundMessage.recipient == "head@legal.example")).one()
    _msg, text, _html = _parts(row)
    assert "Nothing this week." in text


HOSTILE = [
    "<script>alert('x')</script> export is broken",
    '"><img src=x onerror=alert(1)> cannot export',
    "javascript:alert(document.cookie) export link",
]


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_hostile_text_is_escaped(engine, settings):
    with session_scope(engine) as s:
        eng, sales = _dept(s, "Eng"), _dept(s, "Sales")
        mallory = _emp(s, 'Mallory "><b>', sales)
        for i, text in enumerate(HOSTILE):
            _obs(s, mallory, eng, text, MONDAY + timedelta(hours=i + 1), urgent=(i == 0))
        data = load_week(s, WEEK)
        content = build_digest(data, data.departments[eng.id])
    raw = render_digest(content, "head@eng.example", inline=False).html
    inlined = render_digest(content, "head@eng.example").html
    for html in (raw, inlined):
        assert "<script" not in html and "<img" not in html and "<b>" not in html
        assert "&lt;script&gt;" in html
        parsed = _Collector()
        parsed.feed(html)
        assert "script" not in parsed.tags and "img" not in parsed.tags
        assert not [a for a in parsed.attrs if a[0].startswith("on")]
        hrefs = [v for k, v in parsed.attrs if k == "href"]
        assert hrefs and all(h == "http://frontline.test" or h.startswith("http://frontline.test/") for h in hrefs)
    text = render_digest(content, "head@eng.example").text
    assert "<script>alert('x')</script>" in text  # text/plain is never interpreted as HTML


def test_size_stays_under_limit_with_many_observations(engine, settings):
    long = " ".join(["the export dialog keeps timing out and loses the selected columns"] * 12)
    with session_scope(engine) as s:
        eng, sales = _dept(s, "Eng"), _dept(s, "Sales")
        people = [_emp(s, f"Rotator{i}", sales) for i in range(20)]
        areas = ["export", "billing", "checkout", "onboarding", "mobile app", "account", "shipping", "hardware"]
        cats = ["bug", "confusing_ux", "missing_feature"]
        for i in range(400):
            _obs(
                s,
                people[i % 20],
                eng,
                f"Observation {i}: {areas[i % 8]} problem number {i % 37}. {long}",
                MONDAY + timedelta(minutes=20 * i),
                product_area=areas[i % 8],
                category=cats[i % 3],
                urgent=(i % 25 == 0),
            )
        out = queue_digests(s, WEEK, department_ids=[eng.id])
        assert out[0].queued == 1
        row = s.exec(select(OutboundMessage).where(OutboundMessage.kind == "digest")).one()
        data = load_week(s, WEEK, department_ids=[eng.id])
        content = build_digest(data, data.departments[eng.id])
    _msg, text, html = _parts(row)
    assert len(html.encode()) < MAX_HTML_BYTES
    assert content.theme_count > 8
    assert re.search(r"… and \d+ more issues? \(\d+ observations\) in the app\.", html)
    assert "more urgent items" in html or len(content.urgent) <= 10


def test_theme_action_link_and_unsubscribe(engine, company):
    from fastapi.testclient import TestClient

    from frontline.core.links import digest_unsubscribe_url, theme_action_url
    from frontline.web.app import create_app

    with session_scope(engine) as s:
        queue_digests(s, WEEK)
        eng_obs = s.exec(select(Observation).where(Observation.text == "Where is the export button?")).one()
        label, area, cat = eng_obs.theme, eng_obs.product_area, eng_obs.category
    client = TestClient(create_app())
    good = theme_action_url(company["eng"], WEEK, area, cat, label, "cto@example.com", "planned")
    path = good.removeprefix("http://frontline.test")
    token = path.split("/")[-1].split("?")[0]
    forged = path.replace(token, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert client.get(forged).status_code == 403
    from frontline.core.links import ack_url  # a genuine single-observation ack token opens nothing here

    other_kind = ack_url(1, "cto@example.com").removeprefix("http://frontline.test/ack/")
    assert client.post(f"/digest/theme/{other_kind}", data={"action": "fixed"}).status_code == 403
    assert client.post(forged.split("?")[0], data={"action": "fixed"}).status_code == 403
    page = client.get(path)
    assert page.status_code == 200 and "planned" in page.text and "<form" in page.text
    done = client.post(path.split("?")[0], data={"action": "planned"})
    assert done.status_code == 200, done.text
    with session_scope(engine) as s:
        states = {o.text: o.ack_state for o in s.exec(select(Observation))}
        assert states["Where is the export button?"] == "planned"
        assert states["Customers can't find export"] == "planned"
        assert states["Checkout crashes when paying by card"] == "new"  # another theme
        alice = s.exec(
            select(Observation).where(Observation.text == "Customers cannot find the export menu either")
        ).one()
        assert alice.ack_state == ("planned" if alice.theme == label else "new")
        told = s.exec(select(OutboundMessage).where(OutboundMessage.kind == "observation_update")).all()
        assert {r.recipient for r in told} >= {"bob@example.com"}  # the reporting rotator hears back
    # unsubscribe: one-click POST without login; the next week's run skips that recipient
    unsub = digest_unsubscribe_url(company["eng"], "cto@example.com").removeprefix("http://frontline.test")
    assert client.post(unsub.replace(unsub[-5:], "xxxxx"), data={"List-Unsubscribe": "One-Click"}).status_code == 403
    assert client.get(unsub).status_code == 200
    assert client.post(unsub, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with session_scope(engine) as s:
        out = {o.department: o for o in queue_digests(s, shift_week(WEEK, 1))}
    assert out["Engineering"].queued == 0 and "unsubscribed" in out["Engineering"].skipped


def test_theme_action_link_of_a_removed_recipient_is_refused(engine, company):
    """A theme link is bound to the digest recipient it was sent to: once they are neither a recipient nor
    the head of that department, it shows none of its observations and changes nothing."""
    from fastapi.testclient import TestClient

    from frontline.core.links import theme_action_url
    from frontline.web.app import create_app

    with session_scope(engine) as s:
        queue_digests(s, WEEK)
        eng_obs = s.exec(select(Observation).where(Observation.text == "Where is the export button?")).one()
        label, area, cat = eng_obs.theme, eng_obs.product_area, eng_obs.category
        dept = s.get(Department, company["eng"])
        dept.digest_recipients = ["vp@example.com"]
        s.add(dept)
    client = TestClient(create_app())
    path = theme_action_url(company["eng"], WEEK, area, cat, label, "cto@example.com").removeprefix(
        "http://frontline.test"
    )
    page = client.get(path)
    assert page.status_code == 403 and "export button" not in page.text
    assert client.post(path, data={"action": "fixed"}).status_code == 403
    with session_scope(engine) as s:
        assert {o.ack_state for o in s.exec(select(Observation))} == {"new"}
    still = theme_action_url(company["eng"], WEEK, area, cat, label, "vp@example.com").removeprefix(
        "http://frontline.test"
    )
    assert client.get(still).status_code == 200


def test_acknowledgements_show_in_next_digest(engine, company):
    with session_scope(engine) as s:
        queue_digests(s, WEEK)
        for o in s.exec(select(Observation).where(Observation.target_department_id == company["eng"])):
            if o.theme and "export" in o.text.lower() and o.created_at.replace(tzinfo=UTC) < MONDAY + timedelta(days=7):
                o.ack_state, o.ack_by, o.ack_at = "fixed", "cto@example.com", MONDAY + timedelta(days=9)
    next_week = shift_week(WEEK, 1)
    with session_scope(engine) as s:
        data = load_week(s, next_week)
        content = build_digest(data, data.departments[company["eng"]])
    assert content.acted and content.acted[0].state == "fixed" and content.acted[0].by == "cto@example.com"
    rendered = render_digest(content, "cto@example.com")
    assert "What your department did this week" in rendered.html and "fixed" in rendered.text


def test_preview_writes_files(engine, company, tmp_path):
    with session_scope(engine) as s:
        out = preview_digests(s, WEEK, tmp_path, department_ids=[company["eng"]])
        assert not s.exec(select(OutboundMessage)).all()
    html = Path(out[0].files[0])
    page = html.read_text()
    assert html.name == f"engineering-{WEEK}.html" and "Top issues for Engineering" in page
    # a preview's links would change nothing: they are shown disabled, none points at an action
    assert "links are live in the sent digest" in page and "/digest/theme/" not in page
    assert "/digest/unsubscribe/" not in page and "Preview:" in page
    assert Path(out[0].files[1]).read_text().startswith("Subject: Engineering")


@pytest.mark.prefect
def test_send_digests_flow(sqlite_engine, sqlite_settings, prefect_harness):
    from flows.digests import send_digests

    ids = _make_company(sqlite_engine)
    first = send_digests(week=WEEK, return_state=True)
    rows = first.result()
    by_name = {r["department"]: r for r in rows}
    with session_scope(sqlite_engine) as s:  # the same week built directly, outside the flow
        data = load_week(s, WEEK)
        built = build_digest(data, data.departments[ids["eng"]])
    # export (3 addressed + 1 from an own person, one problem), checkout crash, VAT pricing
    assert built.theme_count == 3
    assert by_name["Engineering"] == {
        "department": "Engineering",
        "observations": 6,
        "themes": 3,
        "status": "queued 1",
    }
    assert by_name["Legal"]["status"] == "nothing to report"
    second = send_digests(week=WEEK, department="engineering", return_state=True)
    again = second.result()
    assert [r["status"] for r in again] == ["already queued"]
    run_ids = [str(first.state_details.flow_run_id), str(second.state_details.flow_run_id)]
    with session_scope(sqlite_engine) as s:
        assert len(s.exec(select(OutboundMessage).where(OutboundMessage.kind == "digest")).all()) == 3
        assert s.get(Department, ids["eng"]).name == "Engineering"
    import httpx
    from prefect.settings import PREFECT_API_URL

    # (plain REST: this Prefect client sends explicit nulls the server's FastAPI rejects in artifact filters)
    found = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        timeout=30,
        json={
            "artifacts": {"key": {"any_": ["digests"]}, "flow_run_id": {"any_": run_ids}},
            "sort": "CREATED_DESC",
            "limit": 5,
            "offset": 0,
        },
    )
    found.raise_for_status()
    data = [a["data"] for a in found.json()]
    assert len(data) == 2 and "Engineering" in str(data) and "already queued" in str(data[0])


@pytest.mark.browser
def test_digest_renders_in_chromium(chromium, sqlite_engine, sqlite_settings, artifacts_dir):
    """The digest in a real browser at 600 px (desktop mail pane) and 375 px (a phone): no horizontal
    overflow at either width, even with a long unbroken token in a quote; one bar per issue shown."""
    from playwright.sync_api import sync_playwright

    ids = _make_company(sqlite_engine)
    with session_scope(sqlite_engine) as s:
        eng, bob = s.get(Department, ids["eng"]), s.exec(select(Employee).where(Employee.name == "Bob")).one()
        token = "https://shop.example.com/export?session=" + "a1b2c3d4" * 12
        _obs(s, bob, eng, f"Export link {token} returns an empty file", MONDAY + timedelta(days=3), customer_count=12)
    with session_scope(sqlite_engine) as s:
        compute_themes(s, WEEK)
        data = load_week(s, WEEK)
        content = build_digest(data, data.departments[ids["eng"]])
    html = render_digest(content, "cto@example.com").html
    page_file = artifacts_dir / "digest-engineering.html"
    page_file.write_text(html, encoding="utf-8")
    measured = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            for width in (600, 375):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.set_content(html, wait_until="load")
                shot = artifacts_dir / f"digest-engineering-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                bars = page.locator("td.bar")
                measured[width] = {
                    "scroll": page.evaluate("document.documentElement.scrollWidth"),
                    "body": page.evaluate("document.body.scrollWidth"),
                    "height": page.evaluate("document.documentElement.scrollHeight"),
                    "boxes": [bars.nth(i).bounding_box() for i in range(bars.count())],
                    "shot": shot.stat().st_size,
                }
                page.close()
        finally:
            browser.close()
    for width, m in measured.items():
        assert m["scroll"] <= width and m["body"] <= width, (width, m["scroll"], m["body"])  # no horizontal scroll
        assert m["shot"] > 5000 and m["height"] > 400
        assert len(m["boxes"]) == content.theme_count  # one bar per issue shown
        assert all(b is not None and b["width"] > 0 and b["height"] > 0 for b in m["boxes"])
        assert all(b["x"] + b["width"] <= width for b in m["boxes"])


def test_cli_preview_and_bad_input(sqlite_engine, sqlite_settings, tmp_path):
    from typer.testing import CliRunner

    from frontline.cli import app

    _make_company(sqlite_engine)
    runner = CliRunner()
    bad = runner.invoke(app, ["digest", "send", "--week", "2027-W5", "--preview", str(tmp_path)])
    assert bad.exit_code == 1 and "expected ISO week like 2027-W05" in bad.output
    unknown = runner.invoke(app, ["digest", "send", "--week", WEEK, "--department", "Nope", "--preview", str(tmp_path)])
    assert unknown.exit_code == 1 and "no department named 'Nope'" in unknown.output
    ok = runner.invoke(app, ["digest", "send", "--week", WEEK, "--preview", str(tmp_path / "p")])
    assert ok.exit_code == 0, ok.output
    assert "wrote 3 preview(s)" in ok.output and "nothing to report" in ok.output
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        f"{d}-{WEEK}.{ext}" for d in ("engineering", "sales", "support") for ext in ("html", "txt")
    ]


def test_week_is_taken_in_the_organisation_time_zone(engine, settings, monkeypatch):
    from frontline.core.settings import get_settings

    monkeypatch.setenv("FRONTLINE_TIMEZONE", "Europe/Berlin")
    get_settings.cache_clear()
    with session_scope(engine) as s:
        eng, sales = _dept(s, "Eng"), _dept(s, "Sales")
        bob = _emp(s, "Bob", sales)
        # Sunday 7 Feb 23:30 in Berlin is 22:30 UTC: still week 5. Monday 8 Feb 00:30 Berlin (Sunday
        # 23:30 UTC) is already week 6, and Monday 1 Feb 00:30 Berlin (Sunday 31 Jan 23:30 UTC) is week 5.
        _obs(s, bob, eng, "late sunday", datetime(2027, 2, 7, 22, 30, tzinfo=UTC))
        _obs(s, bob, eng, "early next monday", datetime(2027, 2, 7, 23, 30, tzinfo=UTC))
        _obs(s, bob, eng, "early monday", datetime(2027, 1, 31, 23, 30, tzinfo=UTC))
        data = load_week(s, WEEK)
    assert sorted(o.text for o in data.current) == ["early monday", "late sunday"]
    assert last_completed_week(datetime(2027, 2, 7, 23, 30, tzinfo=UTC)) == "2027-W05"


def test_theme_action_end_to_end_shows_in_next_digest(engine, settings):
    """A head clicks *fixed* on last week's theme; this week's digest reports it; the rotators were told.
    The click happens at a fixed moment (``NOW``, through the route's clock dependency), so the test
    means the same on any day it runs."""
    from fastapi.testclient import TestClient

    from frontline.core.clock import aware
    from frontline.core.links import theme_action_url
    from frontline.web.app import create_app
    from frontline.web.digest import request_time

    now = datetime(2027, 2, 10, 14, tzinfo=UTC)  # Wednesday of 2027-W06
    last_week = last_completed_week(now)
    this_week = shift_week(last_week, 1)
    assert (last_week, this_week) == ("2027-W05", "2027-W06")
    tuesday = datetime.combine(week_monday(last_week) + timedelta(days=1), datetime.min.time(), UTC)
    with session_scope(engine) as s:
        eng, sales = _dept(s, "Engineering"), _dept(s, "Sales")
        bob, sue = _emp(s, "Bob", sales), _emp(s, "Sue", sales)
        _obs(s, bob, eng, "Customers can't find export", tuesday)
        _obs(s, sue, eng, "Where is the export button?", tuesday + timedelta(hours=3))
        queue_digests(s, last_week)
        label = s.exec(select(Observation.theme)).first()
        eng_id = eng.id
    app = create_app()
    app.dependency_overrides[request_time] = lambda: now
    link = theme_action_url(eng_id, last_week, "export", "confusing_ux", label, "head@engineering.example")
    response = TestClient(app).post(link.removeprefix("http://frontline.test"), data={"action": "fixed"})
    assert response.status_code == 200 and "Marked <strong>fixed</strong>" in response.text
    with session_scope(engine) as s:
        assert {aware(o.ack_at) for o in s.exec(select(Observation))} == {now}
        data = load_week(s, this_week)
        content = build_digest(data, data.departments[eng_id])
        told = {
            r.recipient for r in s.exec(select(OutboundMessage).where(OutboundMessage.kind == "observation_update"))
        }
    assert told == {"bob@example.com", "sue@example.com"}
    assert [(a.label, a.state, a.count, a.by) for a in content.acted] == [
        (label, "fixed", 2, "Engineering Head")  # the person's name, not their address
    ]
    assert not content.empty  # what the department did is news enough to send
    assert "fixed: " in render_digest(content, "head@engineering.example").text


def test_digest_phases_alone():
    """build_digest's phases on hand-made data (no database): routing sends a department's own people's
    observations to "own" wherever addressed, and what it did is grouped by theme and state."""
    from zoneinfo import ZoneInfo

    from frontline.digests.content import acted_items, route, urgent_items
    from frontline.digests.loading import DigestObservation, WeekData

    def obs(i, rotator_dept, target, **kw):
        defaults = dict(
            text=f"text {i}",
            impact=3,
            customer_count=1,
            product_area="export",
            category="bug",
            urgent=False,
            rotator_id=i,
            rotator_name=f"R{i}",
            ack_state="new",
            ack_by=None,
            ack_at=None,
            theme=None,
            current=True,
        )
        return DigestObservation(
            id=i,
            created_at=MONDAY + timedelta(hours=i),
            target_department_id=target,
            rotator_department_id=rotator_dept,
            **{**defaults, **kw},
        )

    eng, sales = 1, 2
    current = [obs(1, sales, eng), obs(2, eng, eng), obs(3, eng, sales), obs(4, sales, eng, urgent=True)]
    acted = [
        obs(5, sales, eng, ack_state="fixed", ack_by="cto@example.com", theme="Export", current=False),
        obs(6, sales, eng, ack_state="fixed", ack_by="head@example.com", theme="Export", current=False),
        obs(7, sales, sales, ack_state="planned", theme="Other department", current=False),
    ]
    end = MONDAY + timedelta(days=7)
    week = WeekData(WEEK, MONDAY, end, current, [], [], acted, {}, {}, [], set())
    routed = route(week, eng)
    assert [o.id for o in routed.own] == [2, 3] and [o.id for o in routed.addressed] == [1, 4]
    assert [u.text for u in urgent_items(week, eng, ZoneInfo("UTC"))] == ["text 4"]
    assert [(a.label, a.state, a.count, a.by) for a in acted_items(week, eng)] == [
        ("Export", "fixed", 2, "cto@example.com, head@example.com")
    ]


def test_sparkline_bars_are_the_heights_the_template_computed():
    """``render._bar_height`` (computed once per issue) gives what the template's filters gave per bar,
    ``2 + (14 * value / top)|round|int``, for every value up to the largest week."""
    from frontline.core.templating import environment
    from frontline.digests.render import _bar_height

    template = environment().from_string("{{ 2 + (14 * value / top)|round|int }}")
    for top in [*range(1, 80), 333, 1000]:
        for value in range(top + 1):
            assert str(_bar_height(value, top)) == template.render(value=value, top=top), (value, top)
