"""The digest a department head acts on (issue 17): top issues ranked by customers x impact x trend, each
problem once with its sources as tags, "N of M contacts" only on a large enough base, one urgent count in
the headline, the HTML, the text and the inbox preview line, an 8-week trend, namesakes told apart and no
internal actor names."""

from __future__ import annotations

import re
from datetime import date, timedelta

from test_digests import MONDAY, WEEK, _dept, _obs

from frontline.digests.content import TAG_ADDRESSED, TAG_OWN, TAG_URGENT, build_digest
from frontline.digests.loading import compute_themes, load_week
from frontline.digests.render import render_digest
from frontline.digests.weeks import shift_week, week_monday
from models import ContactCount, Employee, Observation, session_scope


def _person(session, name, dept, hr):
    e = Employee(
        employee_id=hr,
        name=name,
        email=f"{hr}@example.com",
        department_id=dept.id,
        hire_date=date(2020, 1, 1),
        timezone="Europe/Berlin",
        country="DE",
    )
    session.add(e)
    session.flush()
    return e


def _build(engine, dept_id, week=WEEK):
    with session_scope(engine) as s:
        compute_themes(s, week)
        data = load_week(s, week)
        return build_digest(data, data.departments[dept_id])


def _world(engine):
    """Engineering gets: a small, frequent, low-impact issue (4 observations, 1 customer each, impact 1),
    a rarer severe one (2 observations, 30 customers, impact 5), an urgent one addressed by Sales, two old
    urgent items still open, and an urgent observation its own person addressed to Finance. Two people
    called Alex Kim (Sales and Support), two called Sam Lee in Sales."""
    with session_scope(engine) as s:
        eng, sales, support, fin = _dept(s, "Engineering"), _dept(s, "Sales"), _dept(s, "Support"), _dept(s, "Finance")
        alex_sales, alex_support = _person(s, "Alex Kim", sales, "S1"), _person(s, "Alex Kim", support, "P1")
        sam1, sam2 = _person(s, "Sam Lee", sales, "S2"), _person(s, "Sam Lee", sales, "S3")
        erin = _person(s, "Erin", eng, "E1")
        t = MONDAY + timedelta(hours=9)
        for i in range(4):
            _obs(
                s,
                alex_sales,
                eng,
                f"Tooltip typo on the settings page {i}",
                t + timedelta(hours=i),
                product_area="onboarding",
                category="documentation",
                impact=1,
            )
        _obs(
            s,
            alex_support,
            eng,
            "Exports lose every row after 10000, customers re-enter data",
            t,
            product_area="export",
            category="bug",
            impact=5,
            customer_count=18,
        )
        _obs(
            s,
            erin,
            eng,
            "Exports lose every row after 10000 rows",
            t + timedelta(days=1),
            product_area="export",
            category="bug",
            impact=5,
            customer_count=12,
        )
        _obs(
            s,
            sam1,
            eng,
            "Checkout double charges cards",
            t + timedelta(days=2),
            product_area="checkout",
            category="bug",
            impact=5,
            urgent=True,
        )
        _obs(
            s,
            erin,
            fin,
            "Refund stuck for a week",
            t + timedelta(days=2),
            product_area="billing",
            category="bug",
            urgent=True,
        )  # own person, addressed to Finance
        old = _obs(
            s,
            sam2,
            eng,
            "Login loop on SSO",
            MONDAY - timedelta(days=10),
            product_area="account",
            category="bug",
            urgent=True,
        )
        _obs(
            s,
            alex_support,
            eng,
            "Invoices PDF blank since the update",
            MONDAY - timedelta(days=20),
            product_area="billing",
            category="bug",
            urgent=True,
        )
        acked = _obs(
            s,
            sam2,
            eng,
            "Password reset mail never arrives",
            t + timedelta(days=3),
            product_area="account",
            category="bug",
            urgent=True,
        )
        acked.ack_state, acked.ack_by, acked.ack_at = "acknowledged", "demo: department head", t + timedelta(days=4)
        s.add(acked)
        return {"eng": eng.id, "old": old.id, "sales_people": [alex_sales.id, sam1.id, sam2.id], "erin": erin.id}


def test_issues_ranked_once_with_tags_and_urgent_counts_agree(engine, settings):
    ids = _world(engine)
    content = _build(engine, ids["eng"])
    labels = [i.label for i in content.issues]
    # severe export loss (30 customers x impact 5) ranks above the frequent typo (4 x 1)
    export = next(i for i in content.issues if i.product_area == "export")
    typo = next(i for i in content.issues if i.product_area == "onboarding")
    assert labels.index(export.label) < labels.index(typo.label)
    assert export.score > typo.score and typo.count > export.count
    # one problem, both sources: a Support rotator addressed it, an Engineering person observed it
    assert export.count == 2 and set(export.tags) == {TAG_ADDRESSED, TAG_OWN}
    checkout = next(i for i in content.issues if i.product_area == "checkout")
    assert TAG_URGENT in checkout.tags
    assert len({(i.product_area, i.category, i.label) for i in content.issues}) == len(content.issues)
    # the one urgent count: this week's urgent items addressed to Engineering plus the two older open ones
    assert len(content.urgent) == 4 and content.urgent_open == 3
    metric = next(m for m in content.metrics if m.label == "urgent for you")
    assert metric.value == 4
    rendered = render_digest(content, "head@engineering.example")
    preheader = re.search(r'<div style="display: none;[^>]*>([^<]*)</div>', rendered.html).group(1)
    counts = {
        "preview": re.search(r"(\d+) urgent \((\d+) still open\)", preheader).groups(),
        "html": re.search(r"Urgent: (\d+) urgent \((\d+) still open\)", rendered.html).groups(),
        "text": re.search(r"URGENT: (\d+) urgent \((\d+) still open\)", rendered.text).groups(),
    }
    assert set(counts.values()) == {("4", "3")}, counts
    assert "- 4 urgent for you" in rendered.text
    # only 9 observations: no share of observations anywhere, and no contacts recorded: no percentages
    assert all(i.share_text is None for i in content.issues)
    assert "%" not in re.sub(r"\(\+?[−-]?\d+%\)", "", rendered.text.split("TOP ISSUES")[1].split("YOUR PEOPLE")[0])


def test_people_named_unambiguously_and_internal_actors_hidden(engine, settings):
    ids = _world(engine)
    content = _build(engine, ids["eng"])
    rendered = render_digest(content, "head@engineering.example")
    reporters = {q.reporter for i in content.issues for q in i.quotes} | {u.reporter for u in content.urgent}
    assert "Alex Kim (Sales)" in reporters and "Alex Kim (Support)" in reporters
    assert {"Sam Lee (Sales, S2)", "Sam Lee (Sales, S3)"} <= reporters  # namesakes in one department: HR id
    assert "Erin" in reporters  # a unique name stays as it is
    assert "demo:" not in rendered.html and "demo:" not in rendered.text
    acked = next(u for u in content.urgent if u.ack_state == "acknowledged")
    assert acked.ack_by == "someone in your department"


def test_contacts_share_needs_a_large_base_and_has_an_8_week_trend(engine, settings):
    ids = _world(engine)
    monday = week_monday(WEEK)
    with session_scope(engine) as s:
        people = ids["sales_people"]
        for day in range(5):  # 3 people x 5 days x 40 = 600 contacts this week
            for p in people:
                split = {"export": 10} if p != people[2] or day < 1 else {}  # 2 x 5 x 10 + 10 = 110
                s.add(ContactCount(employee_id=p, day=monday + timedelta(days=day), contacts=40, by_area=split))
        s.add(ContactCount(employee_id=people[0], day=monday - timedelta(days=14), contacts=60))  # 2 weeks ago
    content = _build(engine, ids["eng"])
    export = next(i for i in content.issues if i.product_area == "export")
    with session_scope(engine) as s:
        # an observation filed under the export theme two weeks ago (its digest stored the label) counts
        # in that issue's trend
        old = Observation(
            rotator_id=people[0],
            target_department_id=ids["eng"],
            text="Exports drop rows",
            created_at=MONDAY - timedelta(days=13),
            impact=4,
            product_area=export.product_area,
            category=export.category,
            theme=export.label,
        )
        s.add(old)
    content = _build(engine, ids["eng"])
    c = content.contacts
    customers = next(m.value for m in content.metrics if m.label == "customers affected")
    assert c is not None and c.contacts == 600 and c.customers == customers
    assert c.text == f"{customers} of 600 contacts this week ({100 * customers / 600:.1f}%)"
    assert [p.week for p in c.trend] == [shift_week(WEEK, i - 7) for i in range(8)]
    # two weeks ago: its own base; its customers: the export observation and the urgent SSO item (10 days back)
    assert c.trend[-3].base == 60 and c.trend[-3].value == 2
    assert "of 60" in c.trend[-3].share and "%" not in c.trend[-3].share  # 60 contacts: too few for a share
    export = next(i for i in content.issues if i.product_area == "export")
    assert export.customers_text == "30 of 600 contacts (5.0%)"
    # contacts split by area give the export issue its own base (110 export contacts, at least 100)
    assert export.area_text == "30 of 110 export contacts (27%)"
    assert [p.value for p in export.trend8] == [0, 0, 0, 0, 0, 1, 0, 2]
    rendered = render_digest(content, "head@engineering.example")
    assert f"{customers} of 600 contacts this week" in rendered.html and "8 weeks: 0 0 0 0 0 1 0 2" in rendered.text


def test_issue_figures_tags_and_responses(engine, settings):
    """An issue's figures come from its observations alone: customers summed, impact averaged, reporters
    counted once, responses counted by state over those addressed to the department; "addressed to you"
    only when someone from elsewhere addressed it (an own person's observation to the department is
    "from your people" alone)."""
    with session_scope(engine) as s:
        eng, sales = _dept(s, "Engineering"), _dept(s, "Sales")
        erin, sam, ann = _person(s, "Erin", eng, "E1"), _person(s, "Sam", sales, "S1"), _person(s, "Ann", sales, "S2")
        t = MONDAY + timedelta(hours=9)
        area = {"product_area": "dashboard", "category": "bug"}
        _obs(s, erin, eng, "Dashboard charts are blank", t, ack_state="planned", **area)
        _obs(s, erin, eng, "The dashboard charts stay blank", t + timedelta(hours=1), ack_state="planned", **area)
        pay = {"product_area": "checkout", "category": "bug"}
        _obs(s, sam, eng, "Checkout double charges cards", t, urgent=True, impact=5, customer_count=4, **pay)
        _obs(s, ann, eng, "Cards charged twice at checkout", t, impact=2, customer_count=6, ack_state="fixed", **pay)
        _obs(s, sam, eng, "Checkout charged a card twice", t, impact=2, customer_count=1, **pay)
        eng_id = eng.id
    issues = {i.product_area: i for i in _build(engine, eng_id).issues}
    dash, pay_issue = issues["dashboard"], issues["checkout"]
    assert (dash.tags, dash.ack, dash.actionable, dash.reporters, dash.count) == ([TAG_OWN], {"planned": 2}, 2, 1, 2)
    assert pay_issue.tags == [TAG_URGENT, TAG_ADDRESSED] and pay_issue.reporters == 2
    assert (pay_issue.customers, pay_issue.impact, pay_issue.actionable) == (11, 3.0, 3)
    assert pay_issue.ack == {"new": 2, "fixed": 1}
