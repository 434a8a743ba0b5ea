"""Fairness is a rule of the planner: nobody stays unplaced while someone due later is placed, unless a hard
rule (absence, blackout, hire date, leaving date, exemption, or the capacity the later person does not free)
makes the difference. The checks below restate the hard rules independently of the planner's helpers."""

from __future__ import annotations

from datetime import date
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontline.rotations import solver
from frontline.rotations.solver import LockedRotation, Person, PlanInput, Weights, solve, unplaced_cost

MONDAY = date(2027, 1, 4)


def window(inp: PlanInput, p: Person) -> list[int]:
    """Allowed start weeks, written out from the hard rules."""
    lo = max(p.release_week, 0)
    if not p.is_new_hire:
        lo = max(lo, p.due_week - inp.early_weeks)
    hi = inp.weeks - 1 if p.deadline_week is None else min(p.deadline_week, inp.weeks - 1)
    return [s for s in range(lo, hi + 1) if s not in p.blocked_starts and s not in inp.blocked_starts]


def loads(inp: PlanInput, starts: dict[str, int]) -> tuple[dict[int, int], dict[tuple[str, int], int]]:
    """People on rotation per week (seats) and per (department, week), locked rotations included."""
    dept_of = {p.key: p.dept for p in inp.people}
    seat: dict[int, int] = {}
    dept: dict[tuple[str, int], int] = {}
    rows = [(lr.dept, lr.start_week) for lr in inp.locked] + [(dept_of[k], s) for k, s in starts.items()]
    for d, s in rows:
        for w in range(s, s + inp.length_weeks):
            seat[w] = seat.get(w, 0) + 1
            dept[(d, w)] = dept.get((d, w), 0) + 1
    return seat, dept


def fits(inp: PlanInput, p: Person, s: int, starts: dict[str, int]) -> bool:
    """Would ``p`` starting in ``s`` keep every week within the seats and ``p``'s department cap?"""
    seat, dept = loads(inp, starts)
    cap = inp.dept_caps.get(p.dept, inp.seats_per_week)
    return all(
        seat.get(w, 0) < inp.seats_per_week and dept.get((p.dept, w), 0) < cap for w in range(s, s + inp.length_weeks)
    )


def unfair_pairs(inp: PlanInput, assignments: dict[str, int]) -> list[tuple[str, str | None]]:
    """(unplaced A, placed B due later whose place A could take, or None when A fits without anyone leaving)."""
    by_key = {p.key: p for p in inp.people}
    found: list[tuple[str, str | None]] = []
    for a in inp.people:
        if a.key in assignments or not window(inp, a):
            continue
        if any(fits(inp, a, s, assignments) for s in window(inp, a)):
            found.append((a.key, None))
            continue
        for bkey in assignments:
            if by_key[bkey].due_week <= a.due_week:
                continue
            without_b = {k: s for k, s in assignments.items() if k != bkey}
            if any(fits(inp, a, s, without_b) for s in window(inp, a)):
                found.append((a.key, bkey))
    return found


def test_the_most_overdue_are_placed_before_colleagues_due_later():
    """The issue's case: a department cap that cannot fit everyone due. Before, the two people 39 and 33
    weeks overdue were left out (squared lateness made them the most expensive to place) and five colleagues
    due months later were placed."""
    people = [Person("OLD1", "Sales", -60, -39), Person("OLD2", "Sales", -60, -33)]
    people += [Person(f"LATER{i}", "Sales", -60, 4 + 2 * i) for i in range(5)]
    people += [Person(f"ENG{i}", "Eng", -60, 0) for i in range(3)]
    inp = PlanInput(MONDAY, 20, 4, 6, people, {"Sales": 1, "Eng": 3})
    out = solve(inp)
    assert "OLD1" in out.assignments and "OLD2" in out.assignments
    assert sorted(u.key for u in out.unplaced) == ["LATER3", "LATER4"]  # the two due last
    assert unfair_pairs(inp, out.assignments) == []


def test_unplaced_cost_grows_with_how_overdue_a_person_is():
    inp = PlanInput(MONDAY, 20, 4, 6, [], {})
    costs = [unplaced_cost(inp, Person("X", "D", -60, due)) for due in range(-52, 20)]
    assert all(a > b for a, b in zip(costs, costs[1:], strict=False))
    new_hire = [unplaced_cost(inp, Person("X", "D", due, due, is_new_hire=True)) for due in range(0, 20)]
    assert all(a > b for a, b in zip(new_hire, new_hire[1:], strict=False))


@st.composite
def tight(draw):
    """Random companies where not everyone fits: few seats, department caps of 1-2, long rotations."""
    weeks = draw(st.integers(4, 12))
    L = draw(st.integers(1, 4))
    depts = [f"D{i}" for i in range(draw(st.integers(1, 3)))]
    people = []
    for i in range(draw(st.integers(2, 12))):
        nh = draw(st.integers(0, 3)) == 0
        due = draw(st.integers(-40, weeks - 1))
        release = due if nh else draw(st.sampled_from([-60, -60, draw(st.integers(0, weeks))]))
        deadline = draw(st.one_of(st.none(), st.none(), st.integers(0, weeks)))
        blocked = frozenset(draw(st.lists(st.integers(-2, weeks), max_size=3)))
        current = draw(st.one_of(st.none(), st.integers(0, weeks - 1)))
        people.append(Person(f"E{i:02d}", draw(st.sampled_from(depts)), release, due, deadline, nh, blocked, current))
    locked = [
        LockedRotation(f"L{i}", draw(st.sampled_from(depts)), draw(st.integers(-L, weeks - 1)))
        for i in range(draw(st.integers(0, 2)))
    ]
    return PlanInput(
        horizon_start=MONDAY,
        weeks=weeks,
        length_weeks=L,
        seats_per_week=draw(st.integers(1, 3)),
        people=people,
        dept_caps={d: draw(st.integers(1, 2)) for d in depts},
        locked=locked,
        blocked_starts=frozenset(draw(st.lists(st.integers(0, weeks - 1), max_size=2))),
        new_hire_within_weeks=draw(st.integers(1, 4)),
        early_weeks=draw(st.integers(0, 2)),
        weights=Weights(balance=draw(st.sampled_from([2.0, 0.0, 3.0])), balance_steps=draw(st.integers(1, 3))),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tight())
def test_fairness_on_random_tight_instances(inp):
    out = solve(inp)
    assert unfair_pairs(inp, out.assignments) == []


def latest_due_first(run, idx):
    """A stand-in for the optimiser (``solver._optimise``) that makes the most unfair plan it can: the latest
    due placed first, each in the first start week of their window that fits (the test's own rules)."""
    inp, plan = run.inp, {}
    for p in sorted(inp.people, key=lambda p: (-p.due_week, p.key)):
        s = next((s for s in window(inp, p) if fits(inp, p, s, plan)), None)
        if s is not None:
            plan[p.key] = s
    start_of = np.array([plan.get(p.key, solver.NO_START) for p in run.P.people], dtype=np.int64)
    return start_of, 0.0, None, "latest-due-first"


def test_the_exchange_pass_undoes_the_issues_unfair_plan():
    """The issue's case again, from the plan that places the five colleagues due later (and not the two most
    overdue): the exchange pass alone must end where the optimiser does."""
    people = [Person("OLD1", "Sales", -60, -39), Person("OLD2", "Sales", -60, -33)]
    people += [Person(f"LATER{i}", "Sales", -60, 4 + 2 * i) for i in range(5)]
    inp = PlanInput(MONDAY, 20, 4, 6, people, {"Sales": 1})
    with mock.patch.object(solver, "_optimise", latest_due_first):
        out = solve(inp)
    assert out.stats["fairness_exchanges"] >= 2
    assert "OLD1" in out.assignments and "OLD2" in out.assignments
    assert sorted(u.key for u in out.unplaced) == ["LATER3", "LATER4"]
    assert unfair_pairs(inp, out.assignments) == []


def test_the_exchange_pass_tells_colleagues_alike_apart_by_their_absences():
    """A_OLD and B_OLD are due in the same week in the same department; A_OLD may only start in weeks 0-1,
    which a locked rotation holds, so nothing helps A_OLD. B_OLD may start anywhere and only the place of
    LATER (due later, in week 3) would let them. The pass skips colleagues alike to one it could not help (100k
    employees: 29k left out, most of them alike); B_OLD is not alike, and must still get LATER's place."""
    people = [
        Person("A_OLD", "D", -60, -10, blocked_starts=frozenset({2, 3, 4})),
        Person("B_OLD", "D", -60, -10),
        Person("LATER", "D", -60, 5),
    ]
    inp = PlanInput(MONDAY, 5, 2, 1, people, {"D": 1}, locked=[LockedRotation("L0", "D", 0)])
    with mock.patch.object(solver, "_optimise", latest_due_first):
        out = solve(inp)
    assert out.assignments == {"B_OLD": 2, "LATER": 4}  # LATER is left out, then fits again after B_OLD
    assert unfair_pairs(inp, out.assignments) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tight())
def test_the_exchange_pass_makes_any_plan_fair(inp):
    """Whatever plan the solver hands over (here the most unfair one), nobody stays unplaced while a free start
    or the place of someone due later would fit them (the safety net behind the optimiser's penalties)."""
    with mock.patch.object(solver, "_optimise", latest_due_first):
        out = solve(inp)
    assert unfair_pairs(inp, out.assignments) == []


# --- preferences: soft terms below fairness and a new hire's lateness ------------------------------


def test_preferences_move_a_cycle_start_within_what_lateness_allows():
    def start(**prefs) -> int:
        inp = PlanInput(MONDAY, 8, 1, 5, [Person("P", "D", -60, 2, **prefs)], {})
        return solve(inp).assignments["P"]

    assert start() == 2  # on time
    assert start(unavailable=frozenset({2, 3})) == 1  # one week early (0.5) rather than an unavailable week (2)
    assert start(preferred=frozenset({1})) == 1  # a preferred week one early (0.5) beats on time elsewhere (1)
    assert start(preferred=frozenset({4})) == 2  # two weeks late (4) is too much for a preference (1)
    assert start(unavailable=frozenset({0, 1, 2})) == 3  # one week late (1) rather than an unavailable week (2)
    assert start(unavailable=frozenset({0, 1, 2, 3})) == 2  # but not two weeks late (4)
    assert start(unavailable=frozenset({0, 1, 2, 3, 4, 5, 6, 7})) == 2  # nothing available: on time anyway


def test_a_new_hire_never_waits_for_preferences():
    for prefs in ({"unavailable": frozenset({0})}, {"preferred": frozenset({1})}, {"unavailable": frozenset({0, 1})}):
        nh = Person("NH", "D", 0, 0, is_new_hire=True, **prefs)
        for balance in (0.0, 2.0, 3.0):
            out = solve(PlanInput(MONDAY, 8, 1, 5, [nh], {}, weights=Weights(balance=balance)))
            assert out.assignments["NH"] == 0, (prefs, balance)


@st.composite
def tight_with_preferences(draw):
    """:func:`tight` companies where everyone states random preferred and unavailable weeks (no drafts, so
    that the move cost is not part of the comparison)."""
    inp = draw(tight())
    weeks = st.frozensets(st.integers(-1, inp.weeks + 3), max_size=4)
    roomy = draw(st.booleans())  # half of them with room to spare, where a preference could pull someone later
    people = [
        Person(
            p.key,
            p.dept,
            p.release_week,
            p.due_week,
            p.deadline_week,
            p.is_new_hire or (roomy and draw(st.booleans())),
            p.blocked_starts,
            None,
        )
        for p in inp.people
    ]
    people = [Person(**{**p.__dict__, "release_week": p.due_week}) if p.is_new_hire else p for p in people]
    if roomy:
        inp = PlanInput(
            **{**inp.__dict__, "seats_per_week": inp.seats_per_week + 3, "dept_caps": dict.fromkeys(inp.dept_caps, 4)}
        )
    people = [
        Person(**{**p.__dict__, "preferred": draw(weeks), "unavailable": draw(weeks)}) if draw(st.booleans()) else p
        for p in people
    ]
    return PlanInput(**{**inp.__dict__, "people": people})


def free_earlier_start(inp: PlanInput, assignments: dict[str, int], p: Person) -> int | None:
    """An allowed start before ``p``'s own in which ``p`` would fit with everyone else where they are."""
    others = {k: s for k, s in assignments.items() if k != p.key}
    return next((s for s in window(inp, p) if s < assignments[p.key] and fits(inp, p, s, others)), None)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tight_with_preferences())
def test_preferences_never_outweigh_fairness_or_a_new_hires_lateness(inp):
    out = solve(inp)
    assert unfair_pairs(inp, out.assignments) == []
    for p in inp.people:
        if p.is_new_hire and p.key in out.assignments:
            assert free_earlier_start(inp, out.assignments, p) is None, (p.key, out.assignments[p.key])
