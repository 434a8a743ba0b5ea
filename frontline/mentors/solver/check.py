"""An independent checker of any assignment (tests, benchmark): the hard-rule violations and the
objective, written in plain Python from the definitions in the package docstring, not from the
solver's arrays (:class:`frontline.mentors.solver.model.Instance`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

from frontline.mentors.solver.problem import Mentor, Rotator, Weights


def _pair_problems(r: Rotator, mk: Hashable, x: Mentor, weights: Weights) -> list[str]:
    problems = []
    if x.dept == r.dept:
        problems.append(f"{r.key}: mentor {mk} is in the same department")
    if not (r.languages & x.languages):
        problems.append(f"{r.key}: no shared language with {mk}")
    if abs(r.tz_hours - x.tz_hours) > weights.max_timezone_gap_hours + 1e-9:
        problems.append(f"{r.key}: time zones of {mk} too far apart")
    if mk in r.previous_mentors:
        problems.append(f"{r.key}: {mk} was a previous mentor")
    if any(w in x.unavailable_weeks for w in range(r.start_week, r.end_week)):
        problems.append(f"{r.key}: {mk} is absent during the rotation")
    return problems


def _seats(
    rotators: Sequence[Rotator], assignments: Mapping[Hashable, Hashable]
) -> tuple[Counter[tuple[Hashable, int]], Counter[Hashable]]:
    """New rotators per (mentor, week) and per mentor."""
    weekly: Counter[tuple[Hashable, int]] = Counter()
    yearly: Counter[Hashable] = Counter()
    for r in rotators:
        mk = assignments.get(r.key)
        if mk is not None:
            weekly.update((mk, w) for w in range(r.start_week, r.end_week))
            yearly[mk] += 1
    return weekly, yearly


def _overfull_weeks(
    rotators: Sequence[Rotator], by_key: Mapping[Hashable, Mentor], assignments: Mapping[Hashable, Hashable]
) -> list[tuple[Hashable, int, int]]:
    """(mentor, week, rotators that week including kept pairings) for every cell over capacity."""
    weekly, _ = _seats(rotators, assignments)
    out = []
    for (mk, w), c in weekly.items():
        x = by_key[mk]
        if c + x.busy_weeks.get(w, 0) > x.capacity:
            out.append((mk, w, c + x.busy_weeks.get(w, 0)))
    return out


def violations(
    rotators: Sequence[Rotator],
    mentors: Sequence[Mentor],
    weights: Weights,
    assignments: Mapping[Hashable, Hashable],
) -> list[str]:
    """Every hard-rule violation of ``assignments`` (rotator key -> mentor key), as text."""
    by_key = {x.key: x for x in mentors}
    problems = []
    for r in rotators:
        mk = assignments.get(r.key)
        if mk is not None:
            problems += _pair_problems(r, mk, by_key[mk], weights)
    for mk, w, c in _overfull_weeks(rotators, by_key, assignments):
        problems.append(f"mentor {mk} has {c} rotators in week {w} (capacity {by_key[mk].capacity})")
    for mk, c in _seats(rotators, assignments)[1].items():
        if c > by_key[mk].annual_cap:
            problems.append(f"mentor {mk} gets {c} rotators (annual cap {by_key[mk].annual_cap})")
    return problems


def weekly_cap_violations(
    rotators: Sequence[Rotator],
    mentors: Sequence[Mentor],
    weights: Weights,
    assignments: Mapping[Hashable, Hashable],
) -> int:
    """Number of (mentor, week) cells over capacity."""
    return len(_overfull_weeks(rotators, {x.key: x for x in mentors}, assignments))


def pair_cost(r: Rotator, x: Mentor, weights: Weights) -> float:
    """The cost of pairing ``r`` with ``x``, without the load-balance term."""
    feedback = 3.0 if x.feedback is None else min(5.0, max(1.0, float(x.feedback)))
    return (
        weights.timezone_hour * abs(r.tz_hours - x.tz_hours)
        + weights.shared_skill * len(r.skills - x.skills)
        + weights.feedback * (5.0 - feedback)
        + weights.first_time_mentor_new_hire * (r.is_new_hire and not x.ever_mentored)
    )


def objective(
    rotators: Sequence[Rotator],
    mentors: Sequence[Mentor],
    weights: Weights,
    assignments: Mapping[Hashable, Hashable],
) -> float:
    """Objective value of any assignment (the definition the solver minimises): the pairing costs, the
    load cost (the k-th new rotator of a mentor costs ``load_balance * (load_so_far + k - 1)``) and the
    unmatched penalty per rotator without a mentor."""
    by_key = {x.key: x for x in mentors}
    total = 0.0
    for r in rotators:
        mk = assignments.get(r.key)
        total += weights.unmatched_penalty if mk is None else pair_cost(r, by_key[mk], weights)
    for mk, c in _seats(rotators, assignments)[1].items():
        base = max(0, by_key[mk].load_so_far)
        total += weights.load_balance * sum(base + k for k in range(c))
    return total
