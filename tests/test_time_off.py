"""Time off from out-of-office calendars (issue 15): real ``.ics`` files made with icalendar, served by a real
HTTP server on loopback, read into absences; bad feeds change nothing and show in ``frontline status``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event, vCalAddress
from sqlmodel import col, select

from frontline.core.policy import TimeOff, TimeOffFeed
from frontline.people.time_off import (
    CalendarEvent,
    FeedError,
    apply_feed,
    days_off,
    fetch_feed,
    read_calendar,
)
from models import Absence, Department, Employee, Rotation, session_scope

TODAY = date(2031, 10, 27)  # a Monday, far from the machine's clock
SECRET = "private-token-5f0c9e"


# --- a real HTTP server on loopback -------------------------------------------------------------------


class _Feeds:
    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, bytes]] = {}
        self.hits = 0


@pytest.fixture
def feed_server() -> Iterator[tuple[str, _Feeds]]:
    feeds = _Feeds()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            feeds.hits += 1
            status, body = feeds.pages.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", feeds
    finally:
        server.shutdown()
        server.server_close()


# --- the company and the calendars ---------------------------------------------------------------------


def _company(engine) -> dict[str, int]:
    with session_scope(engine) as s:
        support = Department(name="Support", head_name="Sue", head_email="sue@example.com")
        finance = Department(name="Finance", head_name="Fin", head_email="fin@example.com")
        s.add_all([support, finance])
        s.flush()
        people = {
            "ann": ("E1", "Europe/Berlin", finance.id),
            "bob": ("E2", "America/New_York", finance.id),
            "cat": ("E3", "Asia/Tokyo", finance.id),
            "sam": ("E4", "Europe/Berlin", support.id),
        }
        ids = {}
        for name, (eid, zone, dept) in people.items():
            e = Employee(
                employee_id=eid,
                name=name.title(),
                email=f"{name}@example.com",
                department_id=dept,
                hire_date=date(2020, 1, 1),
                timezone=zone,
                country="DE",
                is_mentor=name == "sam",
            )
            s.add(e)
            s.flush()
            assert e.id is not None
            ids[name] = e.id
        return ids


def _event(summary: str, start, end, *who: str, **extra) -> Event:
    ev = Event()
    ev.add("uid", f"{summary.replace(' ', '-')}@calendar.test")
    ev.add("summary", summary)
    ev.add("dtstamp", datetime(2031, 10, 1, tzinfo=UTC))
    ev.add("dtstart", start)
    ev.add("dtend", end)
    for w in who:
        ev.add("attendee", vCalAddress(f"MAILTO:{w.upper() if w == 'ann@example.com' else w}"))
    for key, value in extra.items():
        ev.add(key, value)
    return ev


def team_calendar(*, with_holiday: bool = True) -> bytes:
    tokyo, new_york = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")
    cal = Calendar()
    cal.add("prodid", "-//Frontline tests//calendar.test//")
    cal.add("version", "2.0")
    if with_holiday:  # all-day, Mon-Fri (DTEND is exclusive)
        cal.add_component(_event("Ann holiday", date(2031, 11, 3), date(2031, 11, 8), "ann@example.com"))
    # every Friday for four weeks, the second one taken back
    fridays = _event("Bob Fridays off", date(2031, 11, 7), date(2031, 11, 8), "bob@example.com")
    fridays.add("rrule", {"freq": "weekly", "count": 4})
    fridays.add("exdate", date(2031, 11, 14))
    cal.add_component(fridays)
    # timed, in Tokyo: 9 hours of 10 Nov there
    cal.add_component(
        _event(
            "Cat training",
            datetime(2031, 11, 10, 9, 0, tzinfo=tokyo),
            datetime(2031, 11, 10, 18, 0, tzinfo=tokyo),
            "cat@example.com",
        )
    )
    # a one-hour appointment is not a day off
    cal.add_component(
        _event(
            "Ann dentist",
            datetime(2031, 11, 20, 10, 0, tzinfo=UTC),
            datetime(2031, 11, 20, 11, 0, tzinfo=UTC),
            "ann@example.com",
        )
    )
    # one night flight, two people: 7 h of 12 Nov in New York (17:00-24:00), 9 h of 13 Nov in Berlin (00:00-09:00)
    cal.add_component(
        _event(
            "Offsite travel",
            datetime(2031, 11, 12, 22, 0, tzinfo=UTC),
            datetime(2031, 11, 13, 8, 0, tzinfo=UTC),
            "ann@example.com",
            "bob@example.com",
            "zed@elsewhere.example",
        )
    )
    # cancelled and free events are not time off
    cal.add_component(
        _event("Cancelled trip", date(2031, 11, 24), date(2031, 11, 29), "bob@example.com", status="CANCELLED")
    )
    cal.add_component(
        _event("Optional party", date(2031, 12, 1), date(2031, 12, 2), "cat@example.com", transp="TRANSPARENT")
    )
    # a New York all-day event long past the window is not read
    cal.add_component(_event("Old", date(2030, 1, 1), date(2030, 1, 3), "bob@example.com"))
    _ = new_york
    return cal.to_ical()


EXPECTED = {
    "ann": {(date(2031, 11, 3), date(2031, 11, 7)), (date(2031, 11, 13), date(2031, 11, 13))},
    "bob": {
        (date(2031, 11, 7), date(2031, 11, 7)),
        (date(2031, 11, 12), date(2031, 11, 12)),
        (date(2031, 11, 21), date(2031, 11, 21)),
        (date(2031, 11, 28), date(2031, 11, 28)),
    },
    "cat": {(date(2031, 11, 10), date(2031, 11, 10))},
}


def _absences(engine, ids: dict[str, int], source: str | None = None) -> dict[str, set[tuple[date, date]]]:
    names = {v: k for k, v in ids.items()}
    out: dict[str, set[tuple[date, date]]] = {}
    with session_scope(engine) as s:
        query = select(Absence)
        if source:
            query = query.where(col(Absence.source) == source)
        for a in s.exec(query).all():
            out.setdefault(names[a.employee_id], set()).add((a.start, a.end))
    return out


def _sync(engine, feed: TimeOffFeed, settings: TimeOff = TimeOff(), today: date = TODAY):
    data = fetch_feed(feed, settings)
    with session_scope(engine) as s:
        return apply_feed(s, feed, read_calendar(data, feed.name), today, settings, ZoneInfo("Europe/Berlin"))


# --- tests ----------------------------------------------------------------------------------------------


def test_a_team_feed_becomes_each_persons_absences_in_their_own_time_zone(engine, feed_server):
    base, feeds = feed_server
    ids = _company(engine)
    feeds.pages[f"/ooo/{SECRET}.ics"] = (200, team_calendar())
    feed = TimeOffFeed(name="team-ooo", url=f"{base}/ooo/{SECRET}.ics")
    result = _sync(engine, feed)
    assert _absences(engine, ids) == EXPECTED
    assert result.people == 3 and result.added == 7 and result.removed == 0
    assert result.unmatched == ["zed@elsewhere.example"]
    with session_scope(engine) as s:
        reasons = {a.reason for a in s.exec(select(Absence)).all()}
        sources = {a.source for a in s.exec(select(Absence)).all()}
    assert reasons == {"out of office (calendar team-ooo)"} and sources == {"calendar:team-ooo"}
    # the same feed again changes nothing
    again = _sync(engine, feed)
    assert (again.added, again.removed) == (0, 0) and _absences(engine, ids) == EXPECTED


def test_each_feed_replaces_only_its_own_absences(engine, feed_server, tmp_path):
    base, feeds = feed_server
    ids = _company(engine)
    with session_scope(engine) as s:  # what absences.csv gave
        s.add(Absence(employee_id=ids["ann"], start=date(2031, 11, 3), end=date(2031, 11, 7), reason="leave"))
    feeds.pages["/team.ics"] = (200, team_calendar())
    feed = TimeOffFeed(name="team-ooo", url=f"{base}/team.ics")
    _sync(engine, feed)
    # Ann's holiday leaves the calendar: the feed's copy goes, the roster's stays
    feeds.pages["/team.ics"] = (200, team_calendar(with_holiday=False))
    result = _sync(engine, feed)
    assert result.removed == 1 and result.added == 0
    assert _absences(engine, ids, "roster") == {"ann": {(date(2031, 11, 3), date(2031, 11, 7))}}
    assert (date(2031, 11, 3), date(2031, 11, 7)) not in _absences(engine, ids, "calendar:team-ooo")["ann"]
    # a personal feed (every event is its owner's, whoever it names) lives beside the team feed
    personal = Calendar()
    personal.add("prodid", "-//t//")
    personal.add("version", "2.0")
    personal.add_component(_event("Off", date(2031, 12, 8), date(2031, 12, 10), "someone@else.example"))
    feeds.pages["/sam.ics"] = (200, personal.to_ical())
    own = TimeOffFeed(name="sam-ooo", url=f"{base}/sam.ics", employee_id="E4")
    assert _sync(engine, own).unmatched == []
    assert _absences(engine, ids, "calendar:sam-ooo") == {"sam": {(date(2031, 12, 8), date(2031, 12, 9))}}
    assert "sam" not in _absences(engine, ids, "calendar:team-ooo")


def test_a_roster_import_leaves_calendar_time_off_alone(sqlite_engine, sqlite_settings, feed_server, tmp_path):
    from frontline.people.roster import import_roster

    base, feeds = feed_server
    (tmp_path / "d.csv").write_text(
        "department,head_name,head_email\nFinance,Fin,fin@example.com\nSupport,Sue,sue@example.com\n"
    )
    (tmp_path / "e.csv").write_text(
        "employee_id,name,email,department,title,hire_date,timezone,country,languages,skills,mentor,"
        "mentor_capacity,last_rotation\n"
        "E1,Ann,ann@example.com,Finance,Analyst,2020-01-01,Europe/Berlin,DE,en,,no,,\n"
        "E4,Sam,sam@example.com,Support,Agent,2020-01-01,Europe/Berlin,DE,en,,yes,2,\n"
    )
    (tmp_path / "a.csv").write_text("employee_id,start,end,reason\nE1,2032-01-05,2032-01-09,parental leave\n")
    with session_scope(sqlite_engine) as s:
        import_roster(s, tmp_path / "d.csv", tmp_path / "e.csv", tmp_path / "a.csv", actor="test")
    feeds.pages["/team.ics"] = (200, team_calendar())
    _sync(sqlite_engine, TimeOffFeed(name="team-ooo", url=f"{base}/team.ics"))
    with session_scope(sqlite_engine) as s:
        ids = {e.name.lower(): e.id for e in s.exec(select(Employee)).all() if e.id is not None}
        import_roster(s, tmp_path / "d.csv", tmp_path / "e.csv", tmp_path / "a.csv", actor="test")
    after = _absences(sqlite_engine, ids)
    assert after["ann"] == EXPECTED["ann"] | {(date(2032, 1, 5), date(2032, 1, 9))}


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ((500, b"oops"), "the server answered HTTP 500"),
        ((200, b"<!doctype html><html>Sign in to your calendar</html>"), "not an iCalendar file"),
        ((200, b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n"), "ends before END:VCALENDAR"),
        ((200, b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:notadate\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), "calendar"),
        ((200, "\udcff".encode("utf-8", "surrogatepass")), "not UTF-8"),
    ],
)
def test_a_bad_feed_changes_nothing_and_says_why_without_its_url(engine, feed_server, page, expected):
    base, feeds = feed_server
    ids = _company(engine)
    feeds.pages["/team.ics"] = (200, team_calendar())
    feed = TimeOffFeed(name="team-ooo", url=f"{base}/team.ics?token={SECRET}")
    feeds.pages["/team.ics?token=" + SECRET] = (200, team_calendar())
    _sync(engine, feed)
    feeds.pages["/team.ics?token=" + SECRET] = page
    with pytest.raises(FeedError) as raised:
        _sync(engine, feed)
    message = str(raised.value)
    assert expected in message and "team-ooo" in message
    assert SECRET not in message and "127.0.0.1" not in message
    assert _absences(engine, ids) == EXPECTED  # what the last good read gave is kept


def test_a_server_that_is_down_or_a_stranger_as_owner_is_an_error(engine, feed_server):
    base, feeds = feed_server
    _company(engine)
    with pytest.raises(FeedError, match="cannot fetch it"):
        fetch_feed(TimeOffFeed(name="gone", url=f"http://127.0.0.1:9/{SECRET}.ics"), TimeOff(timeout_seconds=2))
    feeds.pages["/x.ics"] = (200, team_calendar())
    with pytest.raises(FeedError, match="'E99' is not an active employee"):
        _sync(engine, TimeOffFeed(name="x", url=f"{base}/x.ics", employee_id="E99"))
    feeds.pages["/big.ics"] = (200, team_calendar())
    with pytest.raises(FeedError, match="larger than time_off.max_bytes"):
        fetch_feed(TimeOffFeed(name="big", url=f"{base}/big.ics"), TimeOff(max_bytes=1000))


def test_days_off_follow_the_persons_day_and_dst():
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    night = CalendarEvent(datetime(2031, 11, 12, 22, 0, tzinfo=UTC), datetime(2031, 11, 13, 8, 0, tzinfo=UTC), ())
    assert days_off(night, berlin, 4) == [(date(2031, 11, 13), date(2031, 11, 13))]
    assert days_off(night, new_york, 4) == [(date(2031, 11, 12), date(2031, 11, 12))]
    assert days_off(night, new_york, 8) == []
    # a whole 23-hour day (clocks go forward) still counts as a day off with min_hours 24
    spring = CalendarEvent(datetime(2031, 3, 30, 0, 0, tzinfo=berlin), datetime(2031, 3, 31, 0, 0, tzinfo=berlin), ())
    assert days_off(spring, berlin, 24) == [(date(2031, 3, 30), date(2031, 3, 30))]
    # all-day: DTEND is exclusive
    week = CalendarEvent(date(2031, 11, 3), date(2031, 11, 8), ())
    assert days_off(week, berlin, 4) == [(date(2031, 11, 3), date(2031, 11, 7))]


def test_status_shows_each_connector_and_flags_a_failing_one(engine, settings, feed_server):
    from flows.jobs import _record_time_off_failure as _record_failure
    from frontline.operations.status import collect_status

    base, feeds = feed_server
    _company(engine)
    feeds.pages["/team.ics?k=" + SECRET] = (200, team_calendar())
    feed = TimeOffFeed(name="team-ooo", url=f"{base}/team.ics?k={SECRET}")
    from frontline.operations.connectors import record_success

    result = _sync(engine, feed)
    with session_scope(engine) as s:
        record_success(s, "calendar:team-ooo", result.summary(), datetime.now(UTC) - timedelta(minutes=1))
        report = collect_status(s, now=datetime.now(UTC), with_prefect=False)
    assert report["connectors"][0]["state"] == "ok" and report["stuck"]["connectors_failing"] == []
    feeds.pages["/team.ics?k=" + SECRET] = (503, b"busy")
    with pytest.raises(FeedError) as raised:
        _sync(engine, feed)
    _record_failure(feed, str(raised.value))
    with session_scope(engine) as s:
        report = collect_status(s, now=datetime.now(UTC) + timedelta(minutes=5), with_prefect=False)
    failing = report["stuck"]["connectors_failing"]
    assert [f["connector"] for f in failing] == ["calendar:team-ooo"] and "HTTP 503" in failing[0]["last_error"]
    assert report["ok"] is False and SECRET not in str(report)


@pytest.mark.prefect
def test_the_sync_flow_replans_a_draft_that_now_overlaps_time_off(
    sqlite_engine, sqlite_settings, feed_server, prefect_harness, monkeypatch
):
    from flows.time_off import sync_time_off
    from tests.observation_factories import write_policy

    base, feeds = feed_server
    ids = _company(sqlite_engine)
    feeds.pages["/team.ics"] = (200, team_calendar())
    write_policy(
        sqlite_settings,
        f'[[time_off.feeds]]\nname = "team-ooo"\nurl = "{base}/team.ics"\n'
        f'[[time_off.feeds]]\nname = "broken"\nurl = "{base}/missing.ics"\n',
    )
    with session_scope(sqlite_engine) as s:  # Ann's draft lies on her holiday week
        s.add(
            Rotation(
                employee_id=ids["ann"],
                start=date(2031, 11, 3),
                end=date(2031, 11, 30),
                kind="cycle",
                due=date(2031, 11, 3),
            )
        )
    state = sync_time_off(as_of=TODAY, return_state=True)
    assert state.is_failed() and "calendar feed broken: the server answered HTTP 404" in (state.message or "")
    with session_scope(sqlite_engine) as s:
        live = s.exec(
            select(Rotation).where(col(Rotation.employee_id) == ids["ann"], col(Rotation.status) == "draft")
        ).all()
        assert live, "Ann keeps a rotation"
        for r in live:
            assert not (r.start <= date(2031, 11, 7) and r.end >= date(2031, 11, 3)), (r.start, r.end)
    assert _absences(sqlite_engine, ids) == EXPECTED
    # the command prints each feed, names the broken one without its URL, and exits with 1
    from typer.testing import CliRunner

    from frontline.cli import app

    out = CliRunner().invoke(app, ["time-off", "sync", "--as-of", "2031-10-27"])
    assert out.exit_code == 1, out.output
    assert "calendar team-ooo: 7 event(s), 3 people, 7 absence(s) (+0 / -0)" in out.output
    assert "calendar feed broken: the server answered HTTP 404" in out.output and base not in out.output
