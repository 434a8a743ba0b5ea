"""Invites, updates and cancellations end to end: decided from the database, queued in the outbox,
delivered over real SMTP on loopback, parsed back with ``email``, icalendar and the strict ``ical``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar
from mailserver import SMTPServer
from sqlmodel import Session, select

from frontline.calendar.invites import (
    process_invites,
    process_reminders,
    rotations_for_reminders,
    rotations_to_announce,
)
from frontline.core import clock
from frontline.mail.delivery import deliver_pending
from frontline.mail.transport import SMTPTransport
from models import Department, Employee, MentorPairing, Observation, OutboundMessage, Rotation

START = date(2026, 3, 16)  # a Monday; Berlin switches to summer time on 29 March
AS_OF = date(2026, 3, 2)


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def seed(engine) -> dict[str, int]:
    with Session(engine) as s:
        sales = Department(name="Sales", head_name="Hanna Head", head_email="head@example.com")
        support = Department(name="Support", head_name="Sam Lead", head_email="lead@example.com")
        s.add(sales)
        s.add(support)
        s.flush()
        rotator = Employee(
            employee_id="E1",
            name='Doe, "Jane"',
            email="jane@example.com",
            department_id=sales.id,
            hire_date=date(2024, 1, 1),
            timezone="Europe/Berlin",
            country="DE",
        )
        mentor, other = (
            Employee(
                employee_id=employee_id,
                name=name,
                email=email,
                department_id=support.id,
                hire_date=date(2020, 1, 1),
                timezone="Europe/Berlin",
                country="DE",
                is_mentor=True,
                mentor_capacity=2,
            )
            for employee_id, name, email in (
                ("S1", "Max Mentor", "max@example.com"),
                ("S2", "Nora Next", "nora@example.com"),
            )
        )
        s.add_all([rotator, mentor, other])
        s.flush()
        rotation = Rotation(
            employee_id=rotator.id, start=START, end=START + timedelta(days=27), kind="cycle", due=START
        )
        later = Rotation(
            employee_id=other.id,
            start=START + timedelta(weeks=12),
            end=START + timedelta(weeks=16, days=-1),
            kind="cycle",
            due=START,
        )
        s.add_all([rotation, later])
        s.flush()
        s.add(MentorPairing(rotation_id=rotation.id, mentor_id=mentor.id, checkin_weekday=2, checkin_time_utc="09:00"))
        ids = {
            "rotator": rotator.id,
            "mentor": mentor.id,
            "other": other.id,
            "rotation": rotation.id,
            "later": later.id,
            "sales": sales.id,
        }
        s.commit()
    return ids


def run_invites(engine, as_of=AS_OF) -> dict:
    with Session(engine) as s:
        ids = rotations_to_announce(s, as_of, 8)
        counts = process_invites(s, ids, as_of=as_of, announce_weeks=8)
        s.commit()
    return counts.as_dict()


def remind_on(engine, day: date) -> dict:
    """The reminders run for ``day`` (7 and 1 days before), committed."""
    with Session(engine) as s:
        rids = rotations_for_reminders(s, day, [7, 1])
        counts = process_reminders(s, rids, as_of=day, days_before=[7, 1])
        s.commit()
    return counts


def deliver(engine, smtp) -> int:
    transport = SMTPTransport(smtp.url, rate_per_second=1000)
    try:
        result = deliver_pending(engine, transport)
        assert not result.errors, result.errors
        return result.sent
    finally:
        transport.close()


def calendar_parts(msg: EmailMessage):
    inline = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    attached = [p for p in msg.walk() if p.get_content_type() == "application/ics"]
    assert len(inline) == 1 and len(attached) == 1
    ics = inline[0].get_payload(decode=True)
    assert attached[0].get_payload(decode=True) == ics and attached[0].get_filename() == "invite.ics"
    cal = Calendar.from_ical(ics)
    assert not any(c.errors for c in cal.walk())
    assert inline[0].get_param("method") == str(cal["METHOD"])  # MIME method == ICS METHOD
    strict = IcsCalendarStream.calendar_from_ics(ics.decode())  # the independent strict parser accepts it
    return cal, strict, ics.decode()


def summary(msg: EmailMessage):
    cal, strict, raw = calendar_parts(msg)
    ev = cal.walk("VEVENT")[0]
    return {
        "to": msg["To"].addresses[0].addr_spec,
        "method": str(cal["METHOD"]),
        "uid": str(ev["UID"]),
        "seq": int(ev["SEQUENCE"]),
        "status": str(ev.get("STATUS", "")),
        "strict": strict,
        "raw": raw,
        "event": ev,
    }


def change_rotation(engine, rid: int, **fields) -> None:
    """Set these fields of a rotation (as HR or the planner would), committed."""
    with Session(engine) as s:
        rot = s.get(Rotation, rid)
        for name, value in fields.items():
            setattr(rot, name, value)
        s.add(rot)
        s.commit()


def rotation(engine, rid) -> Rotation:
    with Session(engine) as s:
        return s.get(Rotation, rid)


def test_create_move_cancel_over_real_smtp(engine, settings, smtp):
    ids = seed(engine)
    counts = run_invites(engine)
    assert counts["requests"] == 1 and counts["checkin_requests"] == 2 and counts["queued"] == 3
    assert deliver(engine, smtp) == 3
    first = [summary(m) for m in smtp.handler.messages]
    by = {(s["to"], s["uid"].split("-")[0]): s for s in first}
    inv = by[("jane@example.com", "rotation")]
    assert inv["method"] == "REQUEST" and inv["seq"] == 0 and inv["uid"] == f"rotation-{ids['rotation']}@example.com"
    ev = inv["strict"].events[0]
    assert ev.dtstart == START and ev.dtend == START + timedelta(days=28)  # exclusive DTEND
    unfolded = inv["raw"].replace("\r\n ", "")
    assert 'CN="Doe, Jane"' in unfolded and "PARTSTAT=NEEDS-ACTION" in unfolded and "RSVP=TRUE" in unfolded
    assert "TRANSP:TRANSPARENT" in unfolded and "ORGANIZER;CN=Frontline:mailto:frontline@example.com" in unfolded
    dtstamp = inv["event"]["DTSTAMP"].dt
    assert abs(dtstamp - clock.utcnow()) < timedelta(minutes=5), "DTSTAMP is the organisation clock's now"
    # the HTML body stands on its own: dates, mentor, observation link
    html = next(
        p for p in smtp.handler.messages[first.index(inv)].walk() if p.get_content_type() == "text/html"
    ).get_content()
    assert "Monday 16 March 2026" in html and "Max Mentor" in html and "http://frontline.test/observe/" in html
    assert "Doe, &#34;Jane&#34;" in html or "Doe, &quot;Jane&quot;" in html  # escaped, not raw
    # the check-in series went to both, local 10:00 Berlin on Wednesdays
    for who in ("jane@example.com", "max@example.com"):
        ci = by[(who, "checkins")]
        assert ci["method"] == "REQUEST" and ci["seq"] == 0
        assert "DTSTART;TZID=Europe/Berlin:20260318T100000" in ci["raw"] and "BEGIN:VTIMEZONE" in ci["raw"]
        # week 1's occurrence is the kickoff on the first day; the last one is the wrap-up (same UID)
        assert "RECURRENCE-ID;TZID=Europe/Berlin:20260318T100000" in ci["raw"]
        assert "DTSTART;TZID=Europe/Berlin:20260316T100000" in ci["raw"] and "SUMMARY:Wrap-up" in ci["raw"]
        assert len(ci["strict"].events) == 3 and {e.uid for e in ci["strict"].events} == {ci["uid"]}
    mentor_mail = next(m for m in smtp.handler.messages if m["To"].addresses[0].addr_spec == "max@example.com")
    text = mentor_mail.get_body(("plain",)).get_content()
    assert "kickoff Monday 16 March 2026 at 10:00, then Wednesdays at 10:00 (Europe/Berlin)" in text
    assert "until the wrap-up on Wednesday 8 April 2026" in text
    r = rotation(engine, ids["rotation"])
    assert (r.status, r.sequence, r.announced_start, r.announced_state) == ("invited", 0, START, "invited")
    assert rotation(engine, ids["later"]).status == "draft"  # outside the 8-week window: stays draft

    # nothing changed -> nothing sent; idempotent re-run
    again = run_invites(engine)
    assert again["queued"] == 0 and again["unchanged"] == 1
    assert deliver(engine, smtp) == 0

    # moved by a week -> REQUEST, same UID, SEQUENCE 1
    change_rotation(engine, ids["rotation"], start=START + timedelta(weeks=1), end=START + timedelta(days=34))
    moved = run_invites(engine)
    assert moved["updates"] == 1 and moved["checkin_requests"] == 2
    assert deliver(engine, smtp) == 3
    second = [summary(m) for m in smtp.handler.messages[3:]]
    upd = next(s for s in second if s["uid"].startswith("rotation-"))
    assert (upd["method"], upd["uid"], upd["seq"]) == ("REQUEST", inv["uid"], 1)
    assert upd["strict"].events[0].dtstart == START + timedelta(weeks=1)
    assert {s["seq"] for s in second} == {1}
    assert run_invites(engine)["queued"] == 0

    # cancelled -> CANCEL, same UID, SEQUENCE 2, STATUS:CANCELLED; check-ins cancelled for both
    change_rotation(engine, ids["rotation"], status="cancelled")
    cancelled = run_invites(engine)
    assert cancelled["cancels"] == 1 and cancelled["checkin_cancels"] == 2
    assert deliver(engine, smtp) == 3
    third = [summary(m) for m in smtp.handler.messages[6:]]
    cancel = next(s for s in third if s["uid"].startswith("rotation-"))
    assert (cancel["method"], cancel["uid"], cancel["seq"], cancel["status"]) == ("CANCEL", inv["uid"], 2, "CANCELLED")
    assert all(s["method"] == "CANCEL" and s["seq"] == 2 for s in third)
    assert run_invites(engine)["queued"] == 0
    assert deliver(engine, smtp) == 0
    assert len(smtp.handler.messages) == 9
    with Session(engine) as s:
        keys = sorted(s.exec(select(OutboundMessage.idempotency_key)).all())
    r = ids["rotation"]
    assert f"invite:{r}:0" in keys and f"invite:{r}:1" in keys and f"cancel:{r}:2" in keys


def test_replaced_mentor_gets_a_cancel_and_the_new_one_an_invite(engine, settings, smtp):
    ids = seed(engine)
    run_invites(engine)
    deliver(engine, smtp)
    with Session(engine) as s:
        old = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        old.status = "replaced"
        s.add(old)
        s.add(
            MentorPairing(
                rotation_id=ids["rotation"], mentor_id=ids["other"], checkin_weekday=3, checkin_time_utc="13:00"
            )
        )
        s.commit()
    counts = run_invites(engine)
    assert counts["updates"] == 1 and counts["checkin_requests"] == 2 and counts["checkin_cancels"] == 1
    assert deliver(engine, smtp) == 4
    got = {(s["to"], s["uid"].split("-")[0]): s for s in map(summary, smtp.handler.messages[3:])}
    assert got[("max@example.com", "checkins")]["method"] == "CANCEL"
    assert got[("nora@example.com", "checkins")]["method"] == "REQUEST"
    assert got[("jane@example.com", "rotation")]["seq"] == 1
    assert "Nora Next" in str(got[("jane@example.com", "rotation")]["event"]["SUMMARY"])
    assert {s["seq"] for s in got.values()} == {1}
    assert rotation(engine, ids["rotation"]).announced_mentor_id == ids["other"]


def test_reminders_welcome_and_nudge_are_sent_once(engine, settings):
    ids = seed(engine)
    run_invites(engine)

    assert remind_on(engine, START - timedelta(days=8))["queued"] == 0
    assert remind_on(engine, START - timedelta(days=7))["reminders"] == 1
    assert remind_on(engine, START - timedelta(days=6))["queued"] == 0  # the 7-day one was sent already
    assert remind_on(engine, START - timedelta(days=1))["reminders"] == 1
    assert remind_on(engine, START - timedelta(days=1))["queued"] == 0
    assert remind_on(engine, START)["welcomes"] == 1
    assert (
        remind_on(engine, START + timedelta(days=1))["queued"] == 0
    )  # Tuesday: welcome done, no nudge before Thursday
    with Session(engine) as s:
        s.add(
            Observation(
                rotator_id=ids["rotator"],
                rotation_id=ids["rotation"],
                text="x",
                impact=3,
                product_area="billing",
                category="bug",
                target_department_id=ids["sales"],
                created_at=datetime(2026, 3, 17, 12, tzinfo=UTC),
            )
        )
        s.commit()
    assert remind_on(engine, START + timedelta(days=3))["nudges"] == 0  # wrote one this week
    thursday2 = START + timedelta(days=10)
    assert remind_on(engine, thursday2)["nudges"] == 1
    assert remind_on(engine, thursday2 + timedelta(days=1))["nudges"] == 0  # once per ISO week
    with Session(engine) as s:
        rows = s.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        keys = [r.idempotency_key for r in rows if r.kind != "invite"]
    r, e = ids["rotation"], ids["rotator"]
    assert keys == [f"reminder:{r}:{START}:7", f"reminder:{r}:{START}:1", f"welcome:{r}", f"nudge:{e}:2026-W13"]
    welcome = next(x for x in rows if x.kind == "welcome")
    assert b"Max Mentor" in welcome.mime


FEED_TODAY = date(2031, 10, 22)  # a fixed day, far from the seed's dates and from the machine's clock


def test_calendar_feeds_personal_team_revoked(engine, settings):
    from fastapi.testclient import TestClient

    from frontline.calendar.feeds import create_feed_token, feed_ics, find_feed_token
    from frontline.core.security import hash_secret
    from frontline.web.app import create_app
    from frontline.web.calendar_feed import organisation_today
    from models import CalendarFeedToken, utcnow

    ids = seed(engine)
    today = FEED_TODAY
    with Session(engine) as s:  # move the seeded rotations near today so they fall in the feed window
        for rid, weeks in ((ids["rotation"], 2), (ids["later"], 20)):
            rot = s.get(Rotation, rid)
            monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)
            rot.start, rot.end = monday, monday + timedelta(days=27)
            s.add(rot)
        s.add(
            Rotation(
                employee_id=ids["mentor"],
                start=today + timedelta(days=500),
                end=today + timedelta(days=527),
                kind="cycle",
                due=today,
            )
        )  # beyond a year: not in any feed
        jane, jane_token = create_feed_token(s, employee_id=ids["rotator"])
        max_row, max_token = create_feed_token(s, employee_id=ids["mentor"])
        _team, team_token = create_feed_token(s, employee_id=None, label="HR")
        jane_id, max_id = jane.id, max_row.id
        s.commit()
        stored = s.get(CalendarFeedToken, jane_id).token_hash
    assert stored == hash_secret(jane_token) and jane_token not in stored

    app = create_app()
    app.dependency_overrides[organisation_today] = lambda: today  # the feed's "today" is the fixed day
    client = TestClient(app)
    res = client.get(f"/calendar/{jane_token}.ics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/calendar")
    cal = IcsCalendarStream.calendar_from_ics(res.text)
    assert "METHOD" not in res.text and "ATTENDEE" not in res.text
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT12H" in res.text and "X-PUBLISHED-TTL:PT12H" in res.text
    summaries = sorted(e.summary for e in cal.events)  # the series master and its kickoff / wrap-up overrides
    assert summaries == [
        "Check-in: Doe, Jane / Max Mentor",
        "Customer-support rotation (tentative)",
        "Kickoff: Doe, Jane / Max Mentor",
        "Wrap-up: Doe, Jane / Max Mentor",
    ]
    checkin = next(e for e in cal.events if e.summary.startswith("Check-in"))
    assert checkin.dtstart.tzinfo is not None and "BEGIN:VTIMEZONE" in res.text

    mentor_feed = IcsCalendarStream.calendar_from_ics(client.get(f"/calendar/{max_token}.ics").text)
    assert sorted(e.summary for e in mentor_feed.events) == [  # his own rotation is more than a year away
        "Check-in: Doe, Jane / Max Mentor",
        "Kickoff: Doe, Jane / Max Mentor",
        "Wrap-up: Doe, Jane / Max Mentor",
    ]

    team = IcsCalendarStream.calendar_from_ics(client.get(f"/calendar/{team_token}.ics").text)
    assert sorted(e.summary for e in team.events) == [
        "Support rotation: Doe, Jane (tentative)",
        "Support rotation: Nora Next (tentative)",
    ]

    with Session(engine) as s:  # the window follows the day asked for: two years on, nothing is left
        later = feed_ics(s, find_feed_token(s, team_token), today=today + timedelta(days=730))
    assert b"BEGIN:VCALENDAR" in later and b"BEGIN:VEVENT" not in later

    assert client.get("/calendar/not-a-real-token.ics").status_code == 404
    with Session(engine) as s:
        row = s.get(CalendarFeedToken, max_id)
        row.revoked_at = utcnow()
        s.add(row)
        s.commit()
    assert client.get(f"/calendar/{max_token}.ics").status_code == 404
    assert client.get(f"/calendar/{jane_token}.ics").status_code == 200


def test_calendar_feed_cli_create_list_revoke(engine, settings):
    from typer.testing import CliRunner

    from frontline.cli import app

    seed(engine)
    runner = CliRunner()
    out = runner.invoke(app, ["calendar", "feed", "create", "--employee", "jane@example.com", "--label", "phone"])
    assert out.exit_code == 0, out.output
    url = next(line for line in out.output.splitlines() if line.startswith("http://frontline.test/calendar/"))
    assert url.endswith(".ics")
    assert runner.invoke(app, ["calendar", "feed", "create"]).exit_code != 0
    assert "no employee" in runner.invoke(app, ["calendar", "feed", "create", "--employee", "nobody"]).output
    listing = runner.invoke(app, ["calendar", "feed", "list"])
    assert (
        "jane@example.com" in listing.output
        and "active" in listing.output
        and url.rsplit("/", 1)[1] not in listing.output
    )
    assert runner.invoke(app, ["calendar", "feed", "revoke", "1"]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["calendar", "feed", "list"]).output


@pytest.mark.prefect
def test_invite_reminder_and_delivery_flows(prefect_harness, sqlite_engine, sqlite_settings, smtp, monkeypatch):
    from flows.invites import send_invites, send_reminders
    from flows.mail import deliver_mail
    from frontline.core.settings import get_settings

    sqlite_settings.policy_path.write_text('support_department = "Support"\n[reminders]\ndays_before = [7, 1]\n')
    monkeypatch.setenv("FRONTLINE_SMTP_URL", smtp.url)
    get_settings.cache_clear()
    seed(sqlite_engine)
    first = send_invites(as_of=START - timedelta(days=7), announce_weeks=8)
    assert first["requests"] == 1 and first["queued"] == 3 and first["rotations_checked"] == 1
    assert send_invites(as_of=START - timedelta(days=7))["queued"] == 0  # idempotent re-run
    reminders = send_reminders(as_of=START - timedelta(days=7))
    assert reminders["reminders"] == 1 and reminders["queued"] == 1
    assert send_reminders(as_of=START - timedelta(days=7))["queued"] == 0
    delivered = deliver_mail()
    assert delivered["sent"] == 4 and delivered["failed"] == 0
    kinds = sorted(m.get_content_type() for m in smtp.handler.messages)
    assert kinds == ["multipart/alternative", "multipart/mixed", "multipart/mixed", "multipart/mixed"]


def test_announced_rotation_moved_beyond_the_window_is_still_updated(engine, settings, smtp):
    ids = seed(engine)
    run_invites(engine)
    change_rotation(
        engine, ids["rotation"], start=START + timedelta(weeks=20), end=START + timedelta(weeks=24, days=-1)
    )
    counts = run_invites(engine)
    assert counts["updates"] == 1
    assert deliver(engine, smtp) == 6
    update = next(
        summary(m)
        for m in smtp.handler.messages[3:]
        if m["To"].addresses[0].addr_spec == "jane@example.com" and "rotation" in summary(m)["uid"]
    )
    assert update["seq"] == 1 and update["strict"].events[0].dtstart == START + timedelta(weeks=20)
    assert run_invites(engine)["queued"] == 0


def test_rotation_moved_after_its_reminder_gets_a_reminder_for_the_new_start(engine, settings):
    """The 7-day reminder went out, then HR deferred the rotation by two weeks: the rotator must be
    reminded again before the new start (the reminder key names the start, not only the rotation)."""
    ids = seed(engine)
    run_invites(engine)

    assert remind_on(engine, START - timedelta(days=7))["reminders"] == 1
    new_start = START + timedelta(weeks=2)
    change_rotation(engine, ids["rotation"], start=new_start, end=new_start + timedelta(days=27))
    run_invites(engine, as_of=START - timedelta(days=6))
    assert remind_on(engine, new_start - timedelta(days=7))["reminders"] == 1
    assert remind_on(engine, new_start - timedelta(days=7))["queued"] == 0
    with Session(engine) as s:
        reminders = s.exec(
            select(OutboundMessage).where(OutboundMessage.kind == "reminder").order_by(OutboundMessage.id)
        ).all()
    assert len(reminders) == 2
    assert "in 7 days" in reminders[1].subject and str(new_start.day) in reminders[1].subject


def test_mentor_replaced_without_a_successor_cancels_the_rotators_checkins_too(engine, settings, smtp):
    """The mentor leaves and the re-pairing finds nobody: the old mentor and the rotator both get a CANCEL
    of the check-in series (otherwise the rotator keeps weekly check-ins with a mentor who is gone)."""
    ids = seed(engine)
    run_invites(engine)
    deliver(engine, smtp)
    with Session(engine) as s:
        old = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        old.status = "replaced"
        s.add(old)
        s.commit()
    counts = run_invites(engine)
    assert counts["updates"] == 1 and counts["checkin_requests"] == 0 and counts["checkin_cancels"] == 2
    assert deliver(engine, smtp) == 3
    got = {(s["to"], s["uid"].split("-")[0]): s for s in map(summary, smtp.handler.messages[3:])}
    assert got[("max@example.com", "checkins")]["method"] == "CANCEL"
    assert got[("jane@example.com", "checkins")]["method"] == "CANCEL"
    assert got[("jane@example.com", "rotation")]["method"] == "REQUEST"
    assert {s["seq"] for s in got.values()} == {1}
    assert run_invites(engine)["queued"] == 0


def test_unlocked_announced_rotation_kept_in_place_still_gets_its_reminder(engine, settings):
    """HR unlocks an invited rotation (it becomes a draft the planner may move) and the planner keeps it
    where it was: the rotator was told these dates, so the reminder still goes out (nothing else does)."""
    from frontline.rotations.overrides import unlock

    ids = seed(engine)
    run_invites(engine)
    with Session(engine) as s:
        unlock(s, ids["rotation"], "let the planner move it if needed")
        s.commit()
    assert run_invites(engine)["queued"] == 0  # nothing changed: nothing is sent

    assert remind_on(engine, START - timedelta(days=7))["reminders"] == 1
    assert remind_on(engine, START)["welcomes"] == 1
    # moved but not yet announced: no reminder about dates the rotator has not been told
    change_rotation(engine, ids["rotation"], start=START + timedelta(weeks=3), end=START + timedelta(weeks=3, days=27))
    assert remind_on(engine, START + timedelta(weeks=3) - timedelta(days=7))["queued"] == 0


def test_no_welcome_or_nudge_to_a_rotator_who_has_left(engine, settings):
    """The roster import marks a leaver inactive but keeps a rotation that already started: the welcome
    and the weekly nudges must not keep going to the departed employee."""
    ids = seed(engine)
    run_invites(engine)
    with Session(engine) as s:
        e = s.get(Employee, ids["rotator"])
        e.active, e.left_on = False, START
        s.add(e)
        s.commit()
    with Session(engine) as s:
        for day in (START, START + timedelta(days=3), START + timedelta(days=10)):
            counts = process_reminders(s, rotations_for_reminders(s, day, [7, 1]), as_of=day, days_before=[7, 1])
            assert counts["queued"] == 0, (day, counts)


def test_onboarding_invite_uses_the_policy_working_hours_like_send_invites(engine, settings):
    """The onboarding flow's invite task must compute the kickoff with the policy's working hours, as
    send-invites does: otherwise the new hire's first (and only) invite shows a different kickoff."""
    from flows.onboarding import invite_task

    settings.policy_path.write_text('support_department = "Support"\n[mentoring]\nworking_hours = [7, 15]\n')
    ids = seed(engine)
    with Session(engine) as s:
        p = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        p.checkin_weekday, p.checkin_time_utc = 2, "06:30"  # 07:30 in Berlin (CET): inside 7-15, outside 9-17
        s.add(p)
        s.commit()
    assert invite_task.fn([ids["rotation"]], AS_OF, 8)["checkin_requests"] == 2
    with Session(engine) as s:
        mime = s.exec(
            select(OutboundMessage.mime).where(OutboundMessage.idempotency_key.startswith("checkins:"))
        ).first()
    from email import message_from_bytes
    from email import policy as email_policy

    text = message_from_bytes(mime, policy=email_policy.default).get_body(("plain",)).get_content()
    assert "kickoff Monday 16 March 2026 at 07:30" in text, text


def test_console_invite_updates_use_the_policy_working_hours(engine, settings):
    """The HR console queues invite updates after a move/re-pair: same working hours as send-invites."""
    from zoneinfo import ZoneInfo

    from frontline.core.clock import today
    from frontline.core.policy import load_policy
    from frontline.web.console import actions

    settings.policy_path.write_text('support_department = "Support"\n[mentoring]\nworking_hours = [7, 15]\n')
    ids = seed(engine)
    start = today() + timedelta(days=14 - today().weekday())  # a Monday two weeks ahead
    local = datetime.combine(
        start + timedelta(days=2), datetime.min.time().replace(hour=7, minute=30), tzinfo=ZoneInfo("Europe/Berlin")
    )
    with Session(engine) as s:
        rot = s.get(Rotation, ids["rotation"])
        rot.start, rot.end = start, start + timedelta(days=27)
        s.add(rot)
        p = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        p.checkin_weekday, p.checkin_time_utc = 2, f"{local.astimezone(UTC):%H:%M}"
        s.add(p)
        s.commit()
    with Session(engine) as s:
        assert actions.queue_invite_updates(s, load_policy(), [ids["rotation"]]) == 1
        s.commit()
    from email import message_from_bytes
    from email import policy as email_policy

    with Session(engine) as s:
        mime = s.exec(
            select(OutboundMessage.mime).where(OutboundMessage.idempotency_key.startswith("checkins:"))
        ).first()
    text = message_from_bytes(mime, policy=email_policy.default).get_body(("plain",)).get_content()
    assert f"kickoff Monday {start.day} {start:%B %Y} at 07:30" in text, text


def test_mentor_without_a_checkin_slot_is_still_told(engine, settings):
    """A pairing without a common check-in slot has no check-in series to send; the mentor must still
    hear that they mentor this rotator (once; a re-run sends nothing), and so must a replacement."""
    ids = seed(engine)
    with Session(engine) as s:
        p = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        p.checkin_weekday, p.checkin_time_utc = None, None
        s.add(p)
        s.commit()
    counts = run_invites(engine)
    assert counts["requests"] == 1 and counts["checkin_requests"] == 0
    assert run_invites(engine)["queued"] == 0

    def mentor_mail():
        with Session(engine) as s:
            return [r for r in s.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all() if r.kind == "mentor"]

    rows = mentor_mail()
    assert [r.recipient for r in rows] == ["max@example.com"]
    assert "Doe" in rows[0].subject
    with Session(engine) as s:
        old = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        old.status = "replaced"
        s.add(old)
        s.add(MentorPairing(rotation_id=ids["rotation"], mentor_id=ids["other"]))
        s.commit()
    assert run_invites(engine)["updates"] == 1
    rows = mentor_mail()
    assert sorted((r.recipient, r.subject.split()[0]) for r in rows[1:]) == [
        ("max@example.com", "No"),
        ("nora@example.com", "You"),
    ]
    assert run_invites(engine)["queued"] == 0
    change_rotation(engine, ids["rotation"], status="cancelled")  # the mentor (no check-ins to cancel) is told
    assert run_invites(engine)["cancels"] == 1
    assert [(r.recipient, r.subject.split()[0]) for r in mentor_mail()[3:]] == [("nora@example.com", "No")]
    assert run_invites(engine)["queued"] == 0


def test_cancel_after_an_unannounced_move_names_the_dates_the_rotator_was_told(engine, settings, smtp):
    """Moved (update not yet sent), then cancelled: the CANCEL is about the announced dates, not the
    new ones the rotator never heard of."""
    ids = seed(engine)
    run_invites(engine)
    change_rotation(
        engine,
        ids["rotation"],
        start=START + timedelta(weeks=3),
        end=START + timedelta(weeks=3, days=27),
        status="cancelled",
    )
    assert run_invites(engine)["cancels"] == 1
    with Session(engine) as s:
        cancel = s.exec(select(OutboundMessage).where(OutboundMessage.idempotency_key.startswith("cancel:"))).one()
    assert cancel.subject == "Cancelled: your support rotation Monday 16 March 2026 to Sunday 12 April 2026"
    deliver(engine, smtp)
    cancels = [
        x for x in map(summary, smtp.handler.messages) if x["uid"].startswith("rotation-") and x["method"] == "CANCEL"
    ]
    assert len(cancels) == 1 and cancels[0]["event"]["DTSTART"].dt == START
