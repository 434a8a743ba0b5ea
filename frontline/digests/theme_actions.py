"""Acting on a digest theme: a theme's action link (acknowledge / planned / fixed / won't fix) applies to
that week's observations of the theme that are addressed to the link's department, through
:func:`frontline.observations.acknowledgement.set_ack_state`, which also tells the reporting rotators.
The link is bound to the recipient it was mailed to and works only while they still head the department
or receive its digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from frontline.core import audit, clock
from frontline.digests.weeks import week_window
from frontline.observations.acknowledgement import receives_department_mail, set_ack_state
from models import Department, Observation


@dataclass(frozen=True)
class ThemeLink:
    """What a theme action link names (the payload of its signed token)."""

    department_id: int
    week: str
    product_area: str
    category: str
    theme: str
    recipient: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ThemeLink:
        return cls(payload["d"], payload["w"], payload["a"], payload["c"], payload["t"], payload["r"])


def recipient_still_current(session: Session, link: ThemeLink) -> bool:
    """Whether the link's recipient still heads the department or receives its digest."""
    return receives_department_mail(session.get(Department, link.department_id), link.recipient)


def theme_observations(session: Session, link: ThemeLink) -> list[Observation]:
    """The observations a theme action link applies to: the week's observations of that theme addressed
    to the link's department."""
    start, end = week_window(link.week, clock.org_tz())
    rows = session.exec(
        select(Observation)
        .where(
            Observation.target_department_id == link.department_id,
            Observation.theme == link.theme[:200],
            Observation.created_at >= start,
            Observation.created_at < end,
        )
        .order_by(col(Observation.id))
    ).all()
    # A theme's observations may carry different areas and categories (a semantic theme gathers a
    # problem filed under the wrong area); the lexical fallback keeps one (area, category) per theme.
    return list(rows)


@dataclass
class ThemeView:
    """What the theme action page shows."""

    department: str  # the department's name
    observations: list[Observation]


def theme_view(session: Session, link: ThemeLink) -> ThemeView:
    department = session.get(Department, link.department_id)
    return ThemeView(department.name if department else "(deleted department)", theme_observations(session, link))


def reroute_theme(session: Session, link: ThemeLink, department: str, observation_ids: list[int] | None = None) -> int:
    """ "Not ours": send the theme's observations (or those of ``observation_ids`` among them) to
    ``department`` as the link's recipient (audited; the router learns from it). Returns how many.
    ``RerouteError`` for an unknown department."""
    from frontline.observations.routing import reroute

    theirs = [o.id for o in theme_observations(session, link) if o.id is not None]
    chosen = theirs if not observation_ids else [i for i in theirs if i in set(observation_ids)]
    for oid in chosen:
        reroute(session, oid, department, actor=link.recipient, reason=f"digest week {link.week}")
    return len(chosen)


def apply_theme_action(
    session: Session, link: ThemeLink, action: str, note: str | None = None, *, now: datetime | None = None
) -> int:
    """Set ``action`` (a state) on the theme's observations as the link's recipient (at ``now``, default:
    the clock), audit it, and tell the reporting rotators; returns how many observations it applied to.
    ``ValueError`` for an unknown state."""
    ids = [o.id for o in theme_observations(session, link) if o.id is not None]
    if not ids:
        return 0
    set_ack_state(session, ids, action, link.recipient, note=note, now=now)
    audit.record(
        session,
        actor=link.recipient,
        action="digest.theme_action",
        subject_type="department",
        subject_id=link.department_id,
        week=link.week,
        theme=link.theme,
        state=action,
        observations=len(ids),
    )
    return len(ids)
