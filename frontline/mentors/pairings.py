"""Reads of mentor pairings that pairing, the load view and the surveys share."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col, select

from models import MentorPairing, Rotation


def active_pairings_overlapping(session: Session, first: date, last: date) -> list[tuple[MentorPairing, Rotation]]:
    """Active pairings of rotations that are not cancelled and overlap the days [``first``, ``last``],
    with their rotation, by pairing id."""
    rows = session.exec(
        select(MentorPairing, Rotation)
        .join(Rotation, col(Rotation.id) == MentorPairing.rotation_id)
        .where(
            MentorPairing.status == "active",
            Rotation.status != "cancelled",
            Rotation.end >= first,
            Rotation.start <= last,
        )
        .order_by(col(MentorPairing.id))
    ).all()
    return [(p, r) for p, r in rows]
