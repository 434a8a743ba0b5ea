"""A rotation's life: draft -> invited -> done, or cancelled; which rotations are fixed, and withdrawing one.

A *draft* is the planner's to move. A rotation is *fixed* (never moved by the planner) when HR locked it
or once it was announced (``invited``) or is over (``done``), unless HR unlocked it. Withdrawing a
rotation cancels it when somebody was told about it (announced, or already paired with a mentor), so
invites and pairings can be cancelled too; a draft nobody heard of is simply deleted.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlmodel import Session, col, select

from frontline.core import audit
from models import ChangeRequest, MentorPairing, PairingGap, Rotation, utcnow

FIXED_STATUSES = frozenset({"invited", "done"})


class _Status(Protocol):
    @property
    def locked(self) -> bool: ...
    @property
    def status(self) -> str: ...


def is_fixed(rot: _Status) -> bool:
    """Locked by HR, announced or over: the planner never moves it."""
    return rot.locked or rot.status in FIXED_STATUSES


def must_cancel(session: Session, rot: Rotation) -> bool:
    """Announced rotations, and rotations that already have a mentor pairing, are cancelled (so the
    rotator and mentor hear about it); never-announced drafts are deleted."""
    if rot.announced_start is not None or rot.status in FIXED_STATUSES:
        return True
    if session.exec(select(ChangeRequest.id).where(col(ChangeRequest.rotation_id) == rot.id)).first() is not None:
        return True  # a request about it keeps its history (and its requester is told the outcome)
    return session.exec(select(MentorPairing.id).where(col(MentorPairing.rotation_id) == rot.id)).first() is not None


def withdraw(session: Session, rot: Rotation, why: str, actor: str, **details: Any) -> str:
    """Cancel or delete ``rot`` with an audit event; returns ``cancelled`` or ``deleted``."""
    action = "cancelled" if must_cancel(session, rot) else "deleted"
    audit.record(
        session,
        actor=actor,
        action=f"rotation.{action}",
        subject_type="rotation",
        subject_id=rot.id,
        reason=why,
        start=rot.start.isoformat(),
        **details,
    )
    if action == "cancelled":
        rot.status, rot.change_reason, rot.updated_at = "cancelled", why, utcnow()
        session.add(rot)
    else:
        for gap in session.exec(select(PairingGap).where(col(PairingGap.rotation_id) == rot.id)).all():
            session.delete(gap)  # why it had no mentor goes with it
        session.flush()
        session.delete(rot)
    return action
