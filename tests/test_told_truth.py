"""What people are told must be true (issue 16): the manager named in the roster is really told, once per
change of their report's rotation (and the invite claims it only then); check-in times are given in each
recipient's own time zone and agree with the .ics (expanded back by an independent parser); a mentor-only
change is announced as such. Mail goes over real SMTP on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar
from mailserver import SMTPServer
from sqlmodel import Session, select
from test_invites import START, change_rotation, deliver, run_invites, seed

from frontline.mentors.checkins import WEEKDAY_NAMES, choose_checkin
from frontline.people.roster_csv import parse_roster
from models import Employee, MentorPairing, OutboundMessage

BOSS = "boss@example.com"


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def set_employee(engine, employee_id: int, **fields) -> None:
    with Session(engine) as s:
        e = s.get(Employee, employee_id)
        for name, value in fields.items():
            setattr(e, name, value)
        s.add(e)
        s.commit()


def mails_to(smtp, address: str) -> list[EmailMessage]:
    return [m for m in smtp.handler.messages if m["To"].addresses[0].addr_spec == address]


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def html_of(msg: EmailMessage) -> str:
    return msg.get_body(("html",)).get_content()


def keys(engine) -> list[str]:
    with Session(engine) as s:
        return sorted(s.exec(select(OutboundMessage.idempotency_key)).all())


def test_manager_is_told_once_per_change_and_the_invite_says_so(sqlite_engine, sqlite_settings, smtp):
    engine = sqlite_engine
    ids = seed(engine)
    set_employee(engine, ids["rotator"], manager_email=BOSS)
    assert run_invites(engine)["manager_notices"] == 1
    deliver(engine, smtp)
    (first,) = mails_to(smtp, BOSS)
    assert "Monday 16 March 2026 to Sunday 12 April 2026" in first["Subject"]
    assert "from Monday 16 March 2026 to Sunday 12 April 2026 (4 weeks)" in text_of(first)
    invite = next(m for m in mails_to(smtp, "jane@example.com") if "rotation" in m["Subject"])
    assert "your manager has been told." in text_of(invite) and "your manager has been told." in html_of(invite)

    # re-runs send nothing twice
    assert run_invites(engine)["queued"] == 0
    assert deliver(engine, smtp) == 0

    # a mentor-only change is not a change of the dates: the manager hears nothing
    with Session(engine) as s:
        old = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        old.status = "replaced"
        s.add(old)
        s.add(MentorPairing(rotation_id=ids["rotation"], mentor_id=ids["other"]))
        s.commit()
    assert run_invites(engine)["manager_notices"] == 0

    # moved: one mail naming the new and the old dates
    change_rotation(engine, ids["rotation"], start=START + timedelta(weeks=1), end=START + timedelta(days=34))
    assert run_invites(engine)["manager_notices"] == 1
    assert run_invites(engine)["queued"] == 0
    deliver(engine, smtp)
    moved = mails_to(smtp, BOSS)[-1]
    assert moved["Subject"].startswith("Moved:")
    assert "now runs from Monday 23 March 2026" in text_of(moved) and "no longer from Monday 16 March 2026" in text_of(
        moved
    )

    # cancelled: one mail with the dates the manager was told
    change_rotation(engine, ids["rotation"], status="cancelled")
    assert run_invites(engine)["manager_notices"] == 1
    assert run_invites(engine)["queued"] == 0
    deliver(engine, smtp)
    cancelled = mails_to(smtp, BOSS)[-1]
    assert cancelled["Subject"].startswith("Cancelled:") and "Monday 23 March 2026" in text_of(cancelled)
    assert len(mails_to(smtp, BOSS)) == 3
    r = ids["rotation"]
    assert [k for k in keys(engine) if k.startswith("manager:")] == [
        f"manager:{r}:0",
        f"manager:{r}:2",
        f"manager:{r}:3",
    ]


def test_without_a_manager_the_invite_claims_nothing(sqlite_engine, sqlite_settings, smtp):
    seed(sqlite_engine)
    assert run_invites(sqlite_engine)["manager_notices"] == 0
    deliver(sqlite_engine, smtp)
    invite = next(m for m in mails_to(smtp, "jane@example.com") if "rotation" in m["Subject"])
    for body in (text_of(invite), html_of(invite)):
        assert "has been told" not in body and "please agree the time away with your manager" in body
    assert not [k for k in keys(sqlite_engine) if k.startswith("manager:")]


def test_mentor_only_change_is_announced_as_such(sqlite_engine, sqlite_settings, smtp):
    engine = sqlite_engine
    ids = seed(engine)
    run_invites(engine)
    deliver(engine, smtp)
    told = len(mails_to(smtp, "jane@example.com"))
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
    assert run_invites(engine)["updates"] == 1
    deliver(engine, smtp)
    (update,) = [m for m in mails_to(smtp, "jane@example.com")[told:] if "check-ins" not in m["Subject"].lower()]
    assert update["Subject"] == (
        "Your mentor changed to Nora Next; dates unchanged (Monday 16 March 2026 to Sunday 12 April 2026)"
    )
    text = text_of(update)
    assert "Your mentor changed to Nora Next (was Max Mentor); dates unchanged" in text
    assert "has changed: it now runs" not in text and "now runs" not in update["Subject"]
    assert "dates unchanged" in html_of(update) and "Max Mentor" in html_of(update)

    # a move still reads as a move
    change_rotation(engine, ids["rotation"], start=START + timedelta(weeks=1), end=START + timedelta(days=34))
    run_invites(engine)
    deliver(engine, smtp)
    moved = [m for m in mails_to(smtp, "jane@example.com") if m["Subject"].startswith("Updated: your support")]
    assert len(moved) == 1 and "Your support rotation has changed: it now runs" in text_of(moved[0])


def weekly_local_times(ics: bytes, tz: ZoneInfo) -> list[datetime]:
    """The check-in occurrences of an invite's .ics (expanded by recurring_ical_events), in ``tz``."""
    cal = Calendar.from_ical(ics)
    occurrences = recurring_ical_events.of(cal).between(START - timedelta(days=1), START + timedelta(days=40))
    return sorted(e["DTSTART"].dt.astimezone(tz) for e in occurrences)


def checkin_ics(msg: EmailMessage) -> bytes:
    (part,) = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    return part.get_payload(decode=True)


@pytest.mark.parametrize(
    ("rotator_tz", "mentor_tz"),
    [("America/New_York", "Europe/Paris"), ("Europe/London", "Asia/Kolkata"), ("Australia/Sydney", "Asia/Kolkata")],
)
def test_checkin_times_are_each_recipients_own_and_agree_with_the_ics(
    sqlite_engine, sqlite_settings, smtp, rotator_tz, mentor_tz
):
    """New York and Paris change to summer time three weeks apart, inside the rotation: the rotator's
    time moves by an hour, and the mail says from which week; the mentor's stays put."""
    engine = sqlite_engine
    ids = seed(engine)
    set_employee(engine, ids["rotator"], timezone=rotator_tz)
    set_employee(engine, ids["mentor"], timezone=mentor_tz)
    slot = choose_checkin(START, START + timedelta(days=27), mentor_tz, rotator_tz)
    assert slot is not None
    with Session(engine) as s:
        pairing = s.exec(select(MentorPairing).where(MentorPairing.rotation_id == ids["rotation"])).one()
        pairing.checkin_weekday, pairing.checkin_time_utc = slot
        s.add(pairing)
        s.commit()
    run_invites(engine)
    deliver(engine, smtp)
    for address, tz_name, other_tz in (
        ("jane@example.com", rotator_tz, mentor_tz),
        ("max@example.com", mentor_tz, rotator_tz),
    ):
        tz = ZoneInfo(tz_name)
        checkins = next(m for m in mails_to(smtp, address) if "check-ins" in m["Subject"].lower())
        occurrences = weekly_local_times(checkin_ics(checkins), tz)
        assert len(occurrences) == 4  # kickoff, two check-ins, wrap-up
        kickoff, weekly = occurrences[0], occurrences[1:]
        expected = f"{WEEKDAY_NAMES[weekly[0].weekday()]}s at {weekly[0]:%H:%M} ({tz_name})"
        for previous, moment in zip(weekly, weekly[1:], strict=False):
            if moment.time() != previous.time():
                expected += f"; at {moment:%H:%M} from {WEEKDAY_NAMES[moment.weekday()]} {moment.day} {moment:%B %Y}"
        text = text_of(checkins)
        assert expected in text, (expected, text)
        assert f"kickoff {WEEKDAY_NAMES[kickoff.weekday()]} {kickoff.day} {kickoff:%B %Y} at {kickoff:%H:%M}" in text
        assert other_tz not in text  # nobody reads the other person's zone
        if address == "jane@example.com":
            invite = next(m for m in mails_to(smtp, address) if "rotation" in m["Subject"])
            assert f"Check-ins: {expected}" in text_of(invite)
            assert mentor_tz not in text_of(invite) and mentor_tz not in html_of(invite)
    if rotator_tz == "America/New_York":  # the case from the issue: 15:00 Paris is not what New York reads
        rotator_mail = next(m for m in mails_to(smtp, "jane@example.com") if "check-ins" in m["Subject"].lower())
        assert "(America/New_York); at " in text_of(rotator_mail)  # the US/EU summer-time gap is named


def test_checkin_when_in_moves_with_daylight_saving():
    """Unit check of the wording: Paris 15:00 every Wednesday is 10:00 then 09:00 in New York."""
    from frontline.mentors.checkins import CheckinSeries

    paris = ZoneInfo("Europe/Paris")
    first = datetime(2026, 3, 18, 15, 0, tzinfo=paris)
    series = CheckinSeries(first=first, count=4, minutes=30, kickoff=datetime(2026, 3, 16, 15, 0, tzinfo=paris))
    assert series.when == "Wednesdays at 15:00 (Europe/Paris)"
    assert series.when_in(ZoneInfo("America/New_York")) == (
        "Wednesdays at 10:00 (America/New_York); at 09:00 from Wednesday 1 April 2026"
    )
    assert (
        series.when_in(ZoneInfo("Asia/Tokyo"))
        == "Wednesdays at 23:00 (Asia/Tokyo); at 22:00 from Wednesday 1 April 2026"
    )
    assert series.weekly()[0].astimezone(UTC) == datetime(2026, 3, 25, 14, 0, tzinfo=UTC)


ROSTER_DEPTS = "department,head_name,head_email\nSales,Hanna Head,head@example.com\n"
ROSTER_HEADER = "employee_id,name,email,department,hire_date,timezone,country,manager_email\n"


def test_manager_email_column_is_optional_and_validated():
    ok = parse_roster(
        ("departments.csv", ROSTER_DEPTS),
        (
            "employees.csv",
            ROSTER_HEADER + "E1,Ann,ann@example.com,Sales,2024-01-01,Europe/Berlin,DE,Boss@Example.com\n",
        ),
    )
    assert ok.employees[0].manager_email == "boss@example.com"
    empty = parse_roster(
        ("departments.csv", ROSTER_DEPTS),
        ("employees.csv", ROSTER_HEADER + "E1,Ann,ann@example.com,Sales,2024-01-01,Europe/Berlin,DE,\n"),
    )
    assert empty.employees[0].manager_email is None
    from frontline.core.errors import RosterError

    with pytest.raises(RosterError) as refused:
        parse_roster(
            ("departments.csv", ROSTER_DEPTS),
            (
                "employees.csv",
                ROSTER_HEADER
                + "E1,Ann,ann@example.com,Sales,2024-01-01,Europe/Berlin,DE,not-an-address\n"
                + "E2,Bob,bob@example.com,Sales,2024-01-01,Europe/Berlin,DE,BOB@example.com\n",
            ),
        )
    problems = str(refused.value)
    assert "employees.csv:2: manager_email: 'not-an-address' is not a valid e-mail address" in problems
    assert "employees.csv:3: manager_email: 'bob@example.com' is the employee's own address" in problems


def test_roster_import_stores_and_updates_the_manager(sqlite_engine, sqlite_settings):
    from frontline.people.roster import import_roster

    row = "E1,Ann,ann@example.com,Sales,2024-01-01,Europe/Berlin,DE,{}\n"
    for manager in (BOSS, "new.boss@example.com"):
        with Session(sqlite_engine) as s:
            import_roster(s, ("departments.csv", ROSTER_DEPTS), ("employees.csv", ROSTER_HEADER + row.format(manager)))
            s.commit()
        with Session(sqlite_engine) as s:
            assert s.exec(select(Employee.manager_email)).one() == manager
