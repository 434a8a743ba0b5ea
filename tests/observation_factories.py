"""Small builders shared by the observation and escalation tests: a policy file, departments, a
rotator on rotation with a mentor, and reading queued mail back."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

from sqlmodel import Session, select

from frontline.observations.policy import forget_cached_policies
from models import Department, Employee, MentorPairing, OutboundMessage, Rotation, session_scope

ROOT = Path(__file__).resolve().parent.parent


def write_policy(settings, extra: str = "") -> Path:
    """Copy the example policy to the test's policy path (optionally appending TOML)."""
    path = Path(settings.policy_path)
    shutil.copyfile(ROOT / "frontline.example.toml", path)
    if extra:
        text = path.read_text()
        path.write_text(text + "\n" + extra)
    return path


def set_policy_value(settings, section_key: str, value: str) -> None:
    """Replace ``key = ...`` in the copied policy (first occurrence)."""
    import re

    path = Path(settings.policy_path)
    text = path.read_text()
    new, n = re.subn(rf"(?m)^{re.escape(section_key)}\s*=.*$", f"{section_key} = {value}", text, count=1)
    assert n == 1, section_key
    path.write_text(new)


def org(session: Session) -> dict:
    """Departments Support, Engineering, Finance, Product, Operations; a rotator (Finance) on rotation
    this week with an active mentor pairing; a second rotator with no rotation."""
    depts = {}
    for name, head in [
        ("Support", "sam"),
        ("Engineering", "erin"),
        ("Finance", "fiona"),
        ("Product", "pat"),
        ("Operations", "olga"),
    ]:
        d = Department(
            name=name,
            head_name=head.title() + " Head",
            head_email=f"{head}.head@example.com",
            digest_recipients=[f"{name.lower()}-leads@example.com", f"{head}.head@example.com"],
        )
        session.add(d)
        depts[name] = d
    session.flush()

    def person(eid, name, dept, mentor=False):
        e = Employee(
            employee_id=eid,
            name=name,
            email=f"{eid.lower()}@example.com",
            department_id=depts[dept].id,
            hire_date=date(2020, 1, 1),
            timezone="Europe/Berlin",
            country="DE",
            is_mentor=mentor,
            mentor_capacity=2 if mentor else 0,
        )
        session.add(e)
        return e

    rotator = person("E100", "Rita Rotator", "Finance")
    other = person("E200", "Otto Other", "Engineering")
    mentor = person("E900", "Mona Mentor", "Support", mentor=True)
    session.flush()
    today = date.today()
    monday = today - timedelta(days=today.weekday())
    rotation = Rotation(
        employee_id=rotator.id,
        start=monday - timedelta(days=7),
        end=monday + timedelta(days=20),
        kind="cycle",
        status="invited",
        due=monday - timedelta(days=7),
    )
    session.add(rotation)
    session.flush()
    session.add(MentorPairing(rotation_id=rotation.id, mentor_id=mentor.id, status="active"))
    session.flush()
    return {"depts": depts, "rotator": rotator, "other": other, "mentor": mentor, "rotation": rotation}


def world_ids(settings, engine) -> dict:
    """The example policy (read afresh) and :func:`org` in the test's database, as ids usable after the
    session is closed: ``rotator``, ``other``, ``mentor``, ``rotation``, ``rotator_hr`` (the rotator's HR
    id) and ``depts`` (name -> id)."""
    write_policy(settings)
    forget_cached_policies()
    with session_scope(engine) as session:
        made = org(session)
        return {
            "rotator": made["rotator"].id,
            "other": made["other"].id,
            "mentor": made["mentor"].id,
            "rotation": made["rotation"].id,
            "rotator_hr": made["rotator"].employee_id,
            "depts": {name: d.id for name, d in made["depts"].items()},
        }


def mails(session: Session, kind: str | None = None) -> list:
    q = select(OutboundMessage).order_by(OutboundMessage.id)
    if kind:
        q = q.where(OutboundMessage.kind == kind)
    out = []
    for row in session.exec(q).all():
        msg = message_from_bytes(row.mime, policy=email_policy.default)
        msg.row = row  # type: ignore[attr-defined]
        out.append(msg)
    return out


def body(msg, subtype: str) -> str:
    return msg.get_body(preferencelist=(subtype,)).get_content()
