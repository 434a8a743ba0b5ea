"""Finding observations: the console's filter (one object for the page and its CSV export), the
queries it drives, theme labels for what it finds, and one observation with its department and
rotator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from frontline.digests.grouping import group_observations
from frontline.digests.themes import ThemeInput, theme_of
from frontline.observations.vocabulary import STATES
from models import Department, Employee, Observation

MAX_COMPUTED_THEMES = 2000
MAX_NEW_EMBEDDINGS = 64  # a console page embeds at most this many new texts (else lexical themes this time)


@dataclass(frozen=True)
class ObservationFilter:
    """Which observations a console user asked for and may see. Empty values do not filter."""

    q: str = ""  # words in the text, the suggestion or the theme (case-insensitive)
    department_id: int | None = None  # addressed to this department
    product_area: str = ""
    category: str = ""
    state: str = ""  # one of STATES
    urgent: bool = False  # only urgent ones
    visible_departments: frozenset[int] | None = None  # what the user may see: None = every department

    def __post_init__(self) -> None:
        if self.state and self.state not in STATES:
            raise ValueError(f"state: {self.state!r} is not one of {', '.join(STATES)}")

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        department = col(Observation.target_department_id)
        if self.visible_departments is not None:
            where.append(department.in_(list(self.visible_departments) or [-1]))
        if self.department_id is not None:
            where.append(department == self.department_id)
        if self.q:
            needle = f"%{self.q.lower()}%"
            where.append(
                sa.or_(
                    sa.func.lower(col(Observation.text)).like(needle),
                    sa.func.lower(col(Observation.suggestion)).like(needle),
                    sa.func.lower(col(Observation.theme)).like(needle),
                )
            )
        if self.product_area:
            where.append(col(Observation.product_area) == self.product_area)
        if self.category:
            where.append(col(Observation.category) == self.category)
        if self.state:
            where.append(col(Observation.ack_state) == self.state)
        if self.urgent:
            where.append(col(Observation.urgent).is_(True))
        return where


def count_matching(session: Session, f: ObservationFilter) -> int:
    return session.exec(select(sa.func.count()).select_from(Observation).where(*f.clauses())).one()


def newest_matching(session: Session, f: ObservationFilter, limit: int) -> list[Observation]:
    """The ``limit`` newest observations the filter matches, newest first."""
    return list(
        session.exec(
            select(Observation)
            .where(*f.clauses())
            .order_by(col(Observation.created_at).desc(), col(Observation.id).desc())
            .limit(limit)
        ).all()
    )


def export_rows(session: Session, f: ObservationFilter) -> list[tuple[Observation, str | None]]:
    """Every observation the filter matches with its rotator's email, oldest first (the CSV export)."""
    return list(
        session.exec(
            select(Observation, Employee.email)
            .outerjoin(Employee, col(Employee.id) == col(Observation.rotator_id))
            .where(*f.clauses())
            .order_by(col(Observation.created_at), col(Observation.id))
        ).all()
    )


def theme_labels(
    session: Session, rows: list[Observation], limit: int = MAX_COMPUTED_THEMES
) -> dict[int, tuple[str, bool]]:
    """``{observation id: (theme label, computed_now)}``: the stored theme, else one computed now with
    :func:`frontline.digests.grouping.group_observations` over the rows that have none (at most ``limit``)."""
    labels: dict[int, tuple[str, bool]] = {o.id: (o.theme, False) for o in rows if o.theme and o.id is not None}
    missing = [o for o in rows if not o.theme and o.id is not None][:limit]
    if missing:
        found = group_observations(
            session,
            [
                ThemeInput(id=o.id, text=o.text, product_area=o.product_area, category=o.category)
                for o in missing
                if o.id is not None
            ],
            max_new_embeddings=MAX_NEW_EMBEDDINGS,
        )
        for oid, label in theme_of(found).items():
            labels[oid] = (label, True)
    return labels


def departments_by_id(session: Session) -> dict[int, Department]:
    return {d.id: d for d in session.exec(select(Department)).all() if d.id is not None}


def employees_by_id(session: Session, ids: Iterable[int]) -> dict[int, Employee]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {e.id: e for e in session.exec(select(Employee).where(col(Employee.id).in_(wanted))).all() if e.id}


def find_observation(session: Session, observation_id: int) -> Observation | None:
    return session.get(Observation, observation_id)
