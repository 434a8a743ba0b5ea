"""Digests at scale (issue 14): the SQL statements a digest run sends do not grow with the number of
departments (a department more costs rows, never queries), for the week's themes, the queued digests and
the previews. Counted with an SQLAlchemy ``before_cursor_execute`` listener on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import event
from sqlmodel import Session, select

from models import Department, DigestOptOut, Employee, Observation, OutboundMessage, Rotation

WEEK = "2027-W05"  # Monday 1 February 2027
MONDAY = datetime(2027, 2, 1, tzinfo=UTC)
TEXTS = [
    ("export", "confusing_ux", "Customers can't find the export button"),
    ("export", "confusing_ux", "Where is the CSV export? a caller looked for ages"),
    ("checkout", "bug", "Checkout crashes when paying by card"),
    ("checkout", "bug", "Card payment at checkout fails with an error"),
    ("billing", "policy_pricing", "The pricing page is confusing about VAT"),
]


def make_departments(engine, n: int) -> list[int]:
    """``n`` departments, each alike: two people (one shares a name with someone in the next department),
    observations this week (addressed by the next department's people, and its own), last week and five
    weeks ago (the trend), an urgent item still open from before, one acknowledged during the week,
    rotations now and next; every other department has two recipients, the third one an opt-out."""
    with Session(engine) as s:
        depts = [
            Department(
                name=f"Dept {i:03d}",
                head_name=f"Head {i}",
                head_email=f"head{i}@example.com",
                digest_recipients=[f"a{i}@example.com", f"b{i}@example.com"] if i % 2 else [],
            )
            for i in range(n)
        ]
        s.add_all(depts)
        s.flush()
        people = []
        for i, d in enumerate(depts):
            for k, name in enumerate((f"Person {i}", f"Namesake {i // 2}")):
                people.append(
                    Employee(
                        employee_id=f"e{i}-{k}",
                        name=name,
                        email=f"p{i}-{k}@example.com",
                        department_id=d.id,
                        hire_date=date(2020, 1, 1),
                        timezone="UTC",
                        country="DE",
                    )
                )
        s.add_all(people)
        s.flush()
        for i, d in enumerate(depts):
            if i % 3 == 2:
                s.add(DigestOptOut(department_id=d.id, email=f"b{i}@example.com"))
            other = people[2 * ((i + 1) % n)]
            own = people[2 * i + 1]
            for j, (area, category, text) in enumerate(TEXTS):
                when = MONDAY + timedelta(hours=9 + j, days=j % 7)
                rotator = own if j == 4 else other
                s.add(
                    Observation(
                        rotator_id=rotator.id,
                        target_department_id=d.id,
                        text=f"{text} ({i})",
                        product_area=area,
                        category=category,
                        impact=1 + j % 5,
                        customer_count=1 + j,
                        urgent=j == 2,
                        created_at=when,
                    )
                )
            for days, extra in ((-4, {}), (-33, {"theme": "Customers can't find the export button"})):
                s.add(
                    Observation(
                        rotator_id=other.id,
                        target_department_id=d.id,
                        text=f"Export is hard to find ({i}, {days})",
                        product_area="export",
                        category="confusing_ux",
                        impact=2,
                        created_at=MONDAY + timedelta(days=days),
                        **extra,
                    )
                )
            s.add(
                Observation(
                    rotator_id=other.id,
                    target_department_id=d.id,
                    text=f"Refund never arrived ({i})",
                    product_area="billing",
                    category="bug",
                    impact=4,
                    urgent=True,
                    created_at=MONDAY - timedelta(days=20),
                )
            )
            s.add(
                Observation(
                    rotator_id=other.id,
                    target_department_id=d.id,
                    text=f"Invoices show the wrong address ({i})",
                    product_area="billing",
                    category="bug",
                    impact=4,
                    created_at=MONDAY - timedelta(days=10),
                    ack_state="planned",
                    ack_by=f"head{i}@example.com",
                    ack_at=MONDAY + timedelta(days=2),
                )
            )
            for k, start, status in ((0, date(2027, 1, 25), "invited"), (1, date(2027, 2, 15), "draft")):
                s.add(
                    Rotation(
                        employee_id=people[2 * i + k].id,
                        start=start,
                        end=start + timedelta(weeks=4, days=-1),
                        kind="cycle",
                        due=start,
                        status=status,
                    )
                )
        s.commit()
        return [d.id for d in depts if d.id is not None]


@contextmanager
def counted(engine) -> Iterator[list[str]]:
    """The SQL statements sent to ``engine`` inside the block (an executemany counts once)."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _empty(engine) -> None:
    from sqlmodel import SQLModel

    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())


def _run(engine, n: int, tmp_path: Path) -> dict[str, int]:
    """Statements of each step of a digest run over ``n`` departments (on emptied tables)."""
    from frontline.digests.loading import compute_themes
    from frontline.digests.queue import preview_digests, queue_digests

    _empty(engine)
    ids = make_departments(engine, n)
    steps: dict[str, int] = {}
    with Session(engine) as s:
        with counted(engine) as statements:
            themes = compute_themes(s, WEEK, persist=True)
        steps["themes"] = len(statements)
        with counted(engine) as statements:
            outcomes = queue_digests(s, WEEK, department_ids=ids, themes=themes)
        steps["queue"] = len(statements)
        s.commit()
        recipients = sum((2 - (i % 3 == 2)) if i % 2 else 1 for i in range(n))
        assert sum(o.queued for o in outcomes) == recipients == len(s.exec(select(OutboundMessage.id)).all())
        with counted(engine) as statements:
            again = queue_digests(s, WEEK, department_ids=ids, themes=themes)
        steps["queue again"] = len(statements)
        assert sum(o.queued for o in again) == 0 and sum(o.already for o in again) == recipients
        with counted(engine) as statements:
            previews = preview_digests(s, WEEK, tmp_path / f"preview-{n}")
        steps["preview"] = len(statements)
        assert sum(1 for o in previews if o.files) == n
    return steps


def test_statements_of_a_digest_run_do_not_grow_with_departments(engine, settings, tmp_path):
    """3 departments and 12 departments (each with the same kinds of rows) cost the same number of SQL
    statements in every step: nothing is queried per department, per recipient or per observation."""
    small = _run(engine, 3, tmp_path)
    large = _run(engine, 12, tmp_path)
    assert small == large, f"statements per step, 3 departments {small} vs 12 departments {large}"
    assert all(v > 0 for v in small.values())


class _Counted(list):
    """A list that counts the items read by iterating it."""

    reads = 0

    def __iter__(self):
        for item in super().__iter__():
            self.reads += 1
            yield item


def _items_read(engine, n: int) -> dict[str, int]:
    """Items of the week's lists read while building and rendering the digests of ``n`` departments."""
    from frontline.digests.content import build_digest
    from frontline.digests.loading import compute_themes, load_week
    from frontline.digests.render import render_digest

    _empty(engine)
    make_departments(engine, n)
    with Session(engine) as s:
        data = load_week(s, WEEK, themes=compute_themes(s, WEEK, persist=False))
        lists = {
            name: _Counted(getattr(data, name))
            for name in ("current", "previous", "open_urgent", "acted", "history", "rotations")
        }
        for name, counted in lists.items():
            setattr(data, name, counted)
        for dept in data.departments.values():
            render_digest(build_digest(data, dept), "head@example.com")
    assert all(len(c) >= n for c in lists.values())
    return {name: c.reads for name, c in lists.items()}


def test_digests_read_the_week_once_not_once_per_department(engine, settings):
    """Building and rendering every department's digest reads each of the week's lists once (to index it
    by department), whatever the number of departments: 4 times the departments (each alike) read 4 times
    the items. A digest that rescanned the whole week for its department would read 16 times as many."""
    small, large = _items_read(engine, 3), _items_read(engine, 12)
    assert large == {name: 4 * reads for name, reads in small.items()}, (small, large)


def test_a_batch_loads_what_the_whole_week_gives_its_departments(engine, settings):
    """``load_week`` for a batch of departments (two queries: addressed to the batch, then written by its
    people elsewhere; open urgent and acted-on by target) gives each of its departments the very lists
    the whole week's load gives it, in the same order, datetimes aware UTC as the ORM reads them (on
    PostgreSQL with the session in another time zone, so the conversion is exercised)."""
    from dataclasses import astuple

    from frontline.digests.loading import load_week

    _empty(engine)
    ids = make_departments(engine, 5)
    with Session(engine) as s:
        if engine.dialect.name == "postgresql":
            s.connection().exec_driver_sql("SET TIME ZONE 'America/New_York'")
        full = load_week(s, WEEK, themes={}).by_department
        names = ["current_from", "current_to", "previous_from", "previous_to", "open_urgent_to", "acted_to"]
        seen = dict.fromkeys(names, 0)
        for batch in ([ids[0]], ids[1:3], ids[3:]):
            part = load_week(s, WEEK, department_ids=batch, themes={}).by_department
            for d in batch:
                for name in names:
                    got = part.get(name, d)
                    assert [astuple(o) for o in got] == [astuple(o) for o in full.get(name, d)], (name, d)
                    seen[name] += len(got)
                    for o in got:
                        stored = s.get(Observation, o.id)
                        assert stored is not None and (o.created_at, o.ack_at) == (stored.created_at, stored.ack_at)
                        assert o.created_at.tzinfo is UTC and (o.ack_at is None or o.ack_at.tzinfo is UTC)
        assert all(seen.values()), seen  # every list has items to compare
