"""What goes into the mentor matching and what comes out: plain frozen data, no numpy."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frontline.core.policy import Mentoring


@dataclass(frozen=True)
class Rotator:
    key: Hashable
    dept: str
    languages: frozenset[str]
    skills: frozenset[str]
    tz_hours: float
    start_week: int
    end_week: int  # exclusive
    previous_mentors: frozenset[Hashable] = frozenset()
    is_new_hire: bool = False
    name: str = ""


@dataclass(frozen=True)
class Mentor:
    key: Hashable
    dept: str
    languages: frozenset[str]
    skills: frozenset[str]
    tz_hours: float
    capacity: int  # rotators at once in any week
    annual_cap: int  # new rotators this horizon may still add
    unavailable_weeks: frozenset[int] = frozenset()
    ever_mentored: bool = False
    feedback: float | None = None  # average pairing feedback 1..5
    load_so_far: int = 0  # rotators already given this year (load-balance cost starts here)
    busy_weeks: Mapping[int, int] = field(default_factory=dict)  # week -> seats taken by kept pairings
    name: str = ""


@dataclass(frozen=True)
class Weights:
    max_timezone_gap_hours: float = 6.0
    shared_skill: float = 3.0
    timezone_hour: float = 1.0
    load_balance: float = 0.5
    feedback: float = 2.0
    first_time_mentor_new_hire: float = 5.0
    unmatched_penalty: float = 1000.0

    @classmethod
    def from_policy(cls, mentoring: Mentoring) -> Weights:
        """From ``policy.mentoring`` (a :class:`frontline.core.policy.Mentoring`)."""
        return cls(
            max_timezone_gap_hours=float(mentoring.max_timezone_gap_hours),
            shared_skill=mentoring.weight_shared_skill,
            timezone_hour=mentoring.weight_timezone_hour,
            load_balance=mentoring.weight_load_balance,
            feedback=mentoring.weight_feedback,
            first_time_mentor_new_hire=mentoring.weight_first_time_mentor_new_hire,
            unmatched_penalty=getattr(mentoring, "unmatched_penalty", 1000.0),
        )


@dataclass
class Unmatched:
    key: Hashable
    reason: str
    relaxation: str | None = None


@dataclass
class Solution:
    assignments: dict[Hashable, Hashable]  # rotator key -> mentor key
    costs: dict[Hashable, float]  # rotator key -> pairing cost (without the load-balance term)
    unmatched: list[Unmatched]
    objective: float
    bound: float | None
    gap: float | None  # (objective - bound) / objective
    seconds: float
    method: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def matched(self) -> int:
        return len(self.assignments)
