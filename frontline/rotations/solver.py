"""The rotation planner: a pure solver over plain data (no database, no Prefect).

Weeks are integer indices counted from ``PlanInput.horizon_start`` (a Monday): week 0 is the first
week of the horizon, ``weeks - 1`` the last week in which a rotation may start. A rotation that starts
in week ``s`` occupies weeks ``s .. s + length_weeks - 1`` (it may run past the horizon end).

Hard rules (never broken): at most ``seats_per_week`` people on rotation in any week (minus locked
rotations), at most ``dept_caps[dept]`` people of a department away in any week, no start in a
blocked start week (absences, blackouts), no start before ``release_week`` or after
``deadline_week``. Soft rules (the objective, see :class:`Weights`): squared weeks late, new hires
weighted above cycle staff, a heavy linear cost per week a new hire starts after their onboarding
window, a small cost per week a cycle rotation starts early, a cost for moving an existing draft
rotation (stable re-planning), a very large cost per person left unplaced that grows with how overdue
they are (fairness, :func:`fairness_penalty`), the people's preferred and unavailable weeks
(:func:`preference_costs`) and, last, balance across weeks: a convex piecewise-linear cost of the starts in each week, ``balance`` per start beyond the
weekly target, ``2 x balance`` beyond twice the target, ... (continuous variables
``over[k, w] >= starts_w - k x target``, integer target, inside the same LP/MIP, so the bound stays exact).

Method (exact aggregation): people with the same department, window, due week, kind, current start
and the same blocked start weeks inside their window are interchangeable, so they form one class
with an integer count. HiGHS solves the LP relaxation over (class, start week) counts (every capacity
row is a window of consecutive weeks, so the LP is almost integral; by dual simplex, or by interior point
with crossover when the LP is wide, ``PlanInput.ipm_columns_per_row``; when seats are short, over classes
merged across their absences, kept exact by Hall's rows, :func:`_coarse`); the integral part ``floor(y)``
is kept and only the small remainder is re-solved as a MIP on the capacity that is left. The LP
optimum is a lower bound of every plan, so ``gap = (objective - lower_bound) / objective`` proves how
close to optimal the plan is. When the repair leaves a gap and the model is small, the whole class
model is solved as a MIP as well and the better plan wins.

Deterministic: classes and members are ordered by their keys, so the same input gives the same plan.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

INT_TOL = 1e-6


@dataclass(frozen=True)
class Weights:
    """Objective weights (documented in the README, *Planning*)."""

    new_hire: float = 10.0  # per squared week between hire week and start
    cycle: float = 1.0  # per squared week late past the due week
    new_hire_outside_window: float = 500.0  # per week a new hire starts after hire + new_hire_within_weeks
    early: float = 0.5  # per week a cycle rotation starts before its due week
    move: float = 50.0  # moving an existing draft rotation (stable re-planning)
    # Balance across weeks, convex in the starts of a week: ``balance`` per start beyond the weekly target
    # T = ceil((people to place + locked starts in the horizon) / weeks), ``balance`` more per start beyond
    # 2T, ... up to ``balance_steps`` x T. Moving one person lowers this term by at most the steepest slope,
    # balance_steps x balance = 6 < new_hire = 10: no new hire ever starts a week later for balance. A cycle
    # rotation moves for balance only when its own extra cost is below the slope it relieves: early weeks
    # (0.5 each), on time -> 1 week late (1), 1 -> 2 weeks late (3) or 2 -> 3 (5) out of a heavily stacked
    # week; nobody 3+ weeks late waits longer (next week >= 7). 0 turns balance off.
    balance: float = 2.0
    balance_steps: int = 3
    # Preferences (soft, below fairness and a new hire's lateness): a rotation overlapping an unavailable week
    # costs 2/3 x ``preference``, and each of its weeks outside the person's preferred weeks (when they named
    # any) 1/3 x ``preference`` / length. None = min(3, new_hire - 1 - balance x balance_steps) >= 0: one
    # person's preferences change a plan's cost by less than a new hire's first week late, even together
    # with the balance term (3 with the defaults: an unavailable week outweighs one week late for cycle staff).
    preference: float | None = None
    # per unplaced person, before fairness_penalty (which grows with how overdue they are);
    # None = 10 x the largest placement cost + 10^4
    unplaced: float | None = None


@dataclass(frozen=True)
class Person:
    """One person to plan. All week fields are indices relative to the horizon start (may be < 0)."""

    key: str
    dept: str
    release_week: int  # earliest allowed start (hire week, end of an exemption, ...)
    due_week: int  # week the rotation is due (new hires: the hire week); < 0 means overdue
    deadline_week: int | None = None  # last allowed start (hard, e.g. leaving); None = horizon end
    is_new_hire: bool = False
    blocked_starts: frozenset[int] = frozenset()  # start weeks whose rotation would overlap an absence
    current_start: int | None = None  # start of this person's existing draft rotation (stability)
    preferred: frozenset[int] = frozenset()  # weeks they would like to be on rotation (soft)
    unavailable: frozenset[int] = frozenset()  # weeks they would rather not be on rotation (soft)


@dataclass(frozen=True)
class LockedRotation:
    """A rotation that never moves (announced, locked by HR, or already running). Uses capacity."""

    key: str
    dept: str
    start_week: int
    end_week: int | None = None  # last week it covers (a stored rotation's real end); None: start + length - 1


@dataclass
class PlanInput:
    horizon_start: date
    weeks: int
    length_weeks: int
    seats_per_week: int
    people: list[Person]
    dept_caps: dict[str, int]
    locked: list[LockedRotation] = field(default_factory=list)
    blocked_starts: frozenset[int] = frozenset()  # start weeks blocked for everyone (blackouts)
    new_hire_within_weeks: int = 8
    early_weeks: int = 2  # cycle staff may start up to this many weeks before their due week
    weights: Weights = field(default_factory=Weights)
    time_limit: float = 300.0
    exact_mip_max_columns: int = 60_000  # solve the full class MIP when the repair left a gap ...
    exact_mip_seconds: float = 20.0  # ... for at most this long (the better plan wins)
    initial_window: int = 10  # first LP: this many start weeks from each window's first week (grown as needed)
    # an LP with more columns than this many per row is solved by HiGHS's interior point (with crossover to a
    # vertex), not its dual simplex: when seats are short every window grows to the horizon and the dual
    # simplex needs ~18k pivots over 85k columns (10k employees, seats 60 % of need: 7.1 s; interior point
    # 2.9 s; 100k: 66.5 s against 38.1 s), while on the demo's own LPs (6-7 columns a row) it is 2-3x faster
    ipm_columns_per_row: float = 12.0
    # whole windows (seats short): classes that differ only in their allowed start weeks are merged for the LP,
    # with Hall's rows to keep it exact (see _coarse); a class with more such rows keeps its parts apart
    hall_rows_per_class: int = 2000

    def week_start(self, week: int) -> date:
        return self.horizon_start + timedelta(weeks=week)


class Unplaced(NamedTuple):
    key: str
    code: str  # no_window | blocked | no_seat | department_cap | capacity
    reason: str


@dataclass
class PlanOutput:
    assignments: dict[str, int]  # person key -> start week index
    unplaced: list[Unplaced]
    objective: float
    lower_bound: float | None
    gap: float | None
    solve_seconds: float
    stats: dict[str, Any] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)  # person key -> cost of their placement


# --------------------------------------------------------------------------------------------------
# Windows and costs


def person_window(inp: PlanInput, p: Person) -> tuple[int, int]:
    """First and last allowed start week of ``p`` inside the horizon (first > last: none)."""
    first = max(p.release_week, 0)
    if not p.is_new_hire:
        first = max(first, p.due_week - inp.early_weeks)
    last = inp.weeks - 1 if p.deadline_week is None else min(p.deadline_week, inp.weeks - 1)
    return first, last


def start_costs(inp: PlanInput, starts, due, new_hire, current) -> np.ndarray:
    """Vectorised cost of starting in ``starts`` (arrays broadcast; ``current`` < -10^8 = none)."""
    w = inp.weights
    s = np.asarray(starts, dtype=np.float64)
    due = np.asarray(due, dtype=np.float64)
    nh = np.asarray(new_hire, dtype=bool)
    late = np.maximum(s - due, 0.0)
    cost = np.where(nh, w.new_hire, w.cycle) * late * late
    cost = cost + np.where(nh, w.new_hire_outside_window * np.maximum(s - due - inp.new_hire_within_weeks, 0.0), 0.0)
    cost = cost + np.where(nh, 0.0, w.early * np.maximum(due - s, 0.0))
    cur = np.asarray(current, dtype=np.float64)
    cost = cost + np.where((cur > -1e8) & (cur != s), w.move, 0.0)
    return cost


def _current_valid(inp: PlanInput, p: Person) -> bool:
    first, last = person_window(inp, p)
    c = p.current_start
    return c is not None and first <= c <= last and c not in p.blocked_starts and c not in inp.blocked_starts


def person_cost(inp: PlanInput, p: Person, start: int | None) -> float:
    """Cost of starting ``p`` in week ``start`` (None: unplaced)."""
    if start is None:
        return unplaced_cost(inp, p) + (inp.weights.move if _current_valid(inp, p) else 0.0)
    cur = p.current_start if _current_valid(inp, p) else -1e9
    base = float(start_costs(inp, [start], [p.due_week], [p.is_new_hire], [cur])[0])
    return base + float(preference_costs(inp, p)[start])


def preference_weight(inp: PlanInput) -> float:
    """The most one person's preferences can add to a start's cost (see :class:`Weights`)."""
    w = inp.weights
    if w.preference is not None:
        return max(w.preference, 0.0)
    return float(min(3.0, max(0.0, w.new_hire - 1.0 - w.balance * max(w.balance_steps, 1))))


def preference_costs(inp: PlanInput, p: Person) -> np.ndarray:
    """What ``p``'s preferences add to a start in each week 0 .. weeks - 1 (zeros without preferences)."""
    W, L = inp.weeks, inp.length_weeks
    cost = np.zeros(W, dtype=np.float64)
    pi = preference_weight(inp)
    if pi <= 0 or not (p.preferred or p.unavailable):
        return cost
    starts = np.arange(W)
    covered = starts[:, None] + np.arange(L)[None, :]  # (W, L): the weeks each start covers
    if p.unavailable:
        bad = np.isin(covered, np.fromiter(p.unavailable, dtype=np.int64))
        cost += np.where(bad.any(axis=1), 2.0 * pi / 3.0, 0.0)
    if p.preferred:
        outside = ~np.isin(covered, np.fromiter(p.preferred, dtype=np.int64))
        cost += (pi / 3.0) * outside.sum(axis=1) / L
    return cost


def unplaced_penalty(inp: PlanInput) -> float:
    if inp.weights.unplaced is not None:
        return inp.weights.unplaced
    w, span = inp.weights, inp.weeks + 60
    worst = max(w.new_hire * span * span + w.new_hire_outside_window * span, w.cycle * span * span) + w.move
    return float(10 * worst + 1e4)


def _max_step_cost(inp: PlanInput, late: np.ndarray) -> np.ndarray:
    """An upper bound of what placing anyone ``late`` weeks after their due week can cost, plus what the
    exchange of one placed person for another can change elsewhere (moves, balance)."""
    w = inp.weights
    late = np.maximum(np.asarray(late, dtype=np.float64), 0.0)
    nh = w.new_hire * late * late + w.new_hire_outside_window * np.maximum(late - inp.new_hire_within_weeks, 0.0)
    cyc = w.cycle * late * late
    extra = (
        w.early * max(inp.early_weeks, 0)
        + 2 * w.move
        + 2 * w.balance * max(w.balance_steps, 1)
        + 2 * preference_weight(inp)
        + 1.0
    )
    return np.maximum(nh, cyc) + extra


def fairness_penalty(inp: PlanInput, due) -> np.ndarray:
    """The part of the unplaced cost that grows with how overdue a person is: ``F(weeks - due)`` with
    ``F(n) = sum over l < n of (the most any placement l weeks late can cost + 1)``.

    One week earlier due adds more than any placement in the horizon costs, so leaving out someone due
    earlier while someone due later is placed is never cheapest: taking the later person out and placing the
    earlier one (where the capacity allows) always lowers the objective (the fairness rule)."""
    due = np.asarray(due, dtype=np.int64)
    n = np.maximum(inp.weeks - due, 0)
    top = int(n.max()) if n.size else 0
    F = np.concatenate([[0.0], np.cumsum(_max_step_cost(inp, np.arange(top)))])
    return F[n]


def unplaced_cost(inp: PlanInput, p: Person) -> float:
    """What leaving ``p`` unplaced costs: the base penalty plus :func:`fairness_penalty` of their due week."""
    return unplaced_penalty(inp) + float(fairness_penalty(inp, [p.due_week])[0])


def locked_starts(inp: PlanInput) -> np.ndarray:
    """Locked rotations starting in each week 0 .. weeks - 1."""
    n = np.zeros(inp.weeks, dtype=np.int64)
    for lr in inp.locked:
        if 0 <= lr.start_week < inp.weeks:
            n[lr.start_week] += 1
    return n


def balance_target(inp: PlanInput, to_place: int) -> float:
    """Starts per week that cost no balance: ceil((people to place + locked starts in the horizon) / weeks).

    An integer, so that the balance rows are one-week windows with integer right-hand sides like the seat
    rows: the LP stays almost integral (a fractional target puts a fractional breakpoint into the LP)."""
    return float(-(-(to_place + int(locked_starts(inp).sum())) // max(inp.weeks, 1)))


def balance_cost(inp: PlanInput, starts: np.ndarray, target: float) -> float:
    """``balance`` x the starts beyond k x ``target`` summed over weeks and k = 1 .. ``balance_steps``
    (``starts``: new starts per week; locked starts count too)."""
    n = np.asarray(starts, dtype=np.float64) + locked_starts(inp)
    k = np.arange(1, max(inp.weights.balance_steps, 1) + 1, dtype=np.float64)
    return float(inp.weights.balance * np.maximum(n[None, :] - k[:, None] * target, 0.0).sum())


def _balance_rhs(inp: PlanInput, target: float, fixed: np.ndarray | None = None) -> np.ndarray | None:
    """Right-hand sides of the balance rows ``starts_w - over[k, w] <= k x target - locked_w - fixed_w``,
    flattened k-major (row r is week r % weeks); None when balance is off."""
    if inp.weights.balance <= 0:
        return None
    k = np.arange(1, max(inp.weights.balance_steps, 1) + 1, dtype=np.float64)
    base = locked_starts(inp).astype(np.float64) + (0.0 if fixed is None else fixed)
    return (k[:, None] * target - base[None, :]).ravel()


# --------------------------------------------------------------------------------------------------
# Capacity bookkeeping


def _rows(inp: PlanInput) -> int:
    return inp.weeks + inp.length_weeks - 1


def locked_load(inp: PlanInput, depts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Seats and department places used by locked rotations in weeks 0 .. weeks + L - 2."""
    R, L = _rows(inp), inp.length_weeks
    seat = np.zeros(R, dtype=np.int64)
    dept_index = {d: i for i, d in enumerate(depts)}
    dept = np.zeros((len(depts), R), dtype=np.int64)
    for lr in inp.locked:
        last = lr.start_week + L - 1 if lr.end_week is None else lr.end_week
        lo, hi = max(lr.start_week, 0), min(last + 1, R)
        if lo >= hi:
            continue
        seat[lo:hi] += 1
        if lr.dept in dept_index:
            dept[dept_index[lr.dept], lo:hi] += 1
    return seat, dept


def _dept_cap(inp: PlanInput, dept: str) -> int:
    return int(inp.dept_caps.get(dept, inp.seats_per_week))


# --------------------------------------------------------------------------------------------------
# The solver


NO_START = -(10**9)


@dataclass
class _People:
    """Per-person arrays (people sorted by key)."""

    people: list[Person]
    depts: list[str]
    dept: np.ndarray  # index into depts
    first: np.ndarray
    last: np.ndarray
    due: np.ndarray
    nh: np.ndarray
    cur: np.ndarray  # current draft start if still allowed, else NO_START
    allowed: np.ndarray  # (N, weeks) bool: start allowed (window, absences, blackouts)
    pid: np.ndarray  # preference profile per person (0: none)
    pref: np.ndarray  # (profiles, weeks): what each profile adds to a start's cost

    def pref_cost(self, people: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return self.pref[self.pid[people], starts]


def _people_arrays(inp: PlanInput, people: list[Person], depts: list[str]) -> _People:
    N, W = len(people), inp.weeks
    pos = {d: i for i, d in enumerate(depts)}
    win = [person_window(inp, p) for p in people]
    first = np.fromiter((w[0] for w in win), dtype=np.int64, count=N)
    last = np.fromiter((w[1] for w in win), dtype=np.int64, count=N)
    weeks = np.arange(W, dtype=np.int64)
    allowed = (weeks[None, :] >= first[:, None]) & (weeks[None, :] <= last[:, None])
    bi = [(i, b) for i, p in enumerate(people) for b in p.blocked_starts if 0 <= b < W]
    if bi:
        arr = np.asarray(bi, dtype=np.int64)
        allowed[arr[:, 0], arr[:, 1]] = False
    glob = [b for b in inp.blocked_starts if 0 <= b < W]
    if glob:
        allowed[:, glob] = False
    cur = np.fromiter(
        (NO_START if p.current_start is None else p.current_start for p in people), dtype=np.int64, count=N
    )
    valid = (cur >= 0) & (cur < W)
    valid[valid] = allowed[np.nonzero(valid)[0], cur[valid]]
    cur = np.where(valid, cur, NO_START)  # an old start that is no longer allowed must move, at no extra cost
    profiles: dict[tuple[frozenset[int], frozenset[int]], int] = {(frozenset(), frozenset()): 0}
    rows = [np.zeros(W, dtype=np.float64)]
    pid = np.zeros(N, dtype=np.int64)
    for i, p in enumerate(people):
        if p.preferred or p.unavailable:
            key = (p.preferred, p.unavailable)
            if key not in profiles:
                profiles[key] = len(rows)
                rows.append(preference_costs(inp, p))
            pid[i] = profiles[key]
    return _People(
        people,
        depts,
        np.fromiter((pos[p.dept] for p in people), dtype=np.int64, count=N),
        first,
        last,
        np.fromiter((p.due_week for p in people), dtype=np.int64, count=N),
        np.fromiter((p.is_new_hire for p in people), dtype=bool, count=N),
        cur,
        allowed,
        pid,
        np.vstack(rows),
    )


@dataclass
class _Model:
    """Class-aggregated model over a subset of people with per-person window ends."""

    idx: np.ndarray  # person indices (ascending = key order)
    class_of: np.ndarray  # class per entry of idx
    counts: np.ndarray
    col_class: np.ndarray
    col_start: np.ndarray
    col_cost: np.ndarray
    A_ub: sp.csr_matrix | None  # capacity rows (the MIPs'; None where only the LP's flow form is needed)
    slack_cost: np.ndarray  # per class: the unplaced penalty (+ the move cost when dropping an existing draft)


@dataclass
class _Capacity:
    binding: list[int]  # dept indices whose cap can bind (cap < seats)
    block_of: np.ndarray  # dept index -> block number or -1
    b_ub: np.ndarray  # seats rows, then one block of rows per binding department
    R: int


def _capacity(inp: PlanInput, depts: list[str]) -> _Capacity:
    R = _rows(inp)
    seat_locked, dept_locked = locked_load(inp, depts)
    binding = [i for i, d in enumerate(depts) if _dept_cap(inp, d) < inp.seats_per_week]
    block_of = np.full(len(depts), -1, dtype=np.int64)
    b = [np.maximum(inp.seats_per_week - seat_locked, 0)]
    for j, i in enumerate(binding):
        block_of[i] = j
        b.append(np.maximum(_dept_cap(inp, depts[i]) - dept_locked[i], 0))
    return _Capacity(binding, block_of, np.concatenate(b).astype(np.float64), R)


def _matrix(inp: PlanInput, cap: _Capacity, col_dept: np.ndarray, col_start: np.ndarray) -> sp.csr_matrix:
    R, L, ncol = cap.R, inp.length_weeks, len(col_start)
    k = np.arange(L, dtype=np.int64)
    rows = [(col_start[:, None] + k[None, :]).ravel()]
    cols = [np.repeat(np.arange(ncol, dtype=np.int64), L)]
    col_block = cap.block_of[col_dept]
    sel = np.nonzero(col_block >= 0)[0]
    if len(sel):
        rows.append((R + col_block[sel][:, None] * R + col_start[sel][:, None] + k[None, :]).ravel())
        cols.append(np.repeat(sel, L))
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(R * (1 + len(cap.binding)), ncol))


def _model(inp: PlanInput, P: _People, cap: _Capacity, idx: np.ndarray, end: np.ndarray, matrix: bool = True) -> _Model:
    """Aggregate people ``idx`` (window ends ``end``) into classes of interchangeable people."""
    W = inp.weeks
    allowed = P.allowed[idx] & (np.arange(W)[None, :] <= end[:, None])
    bits = np.packbits(allowed, axis=1).astype(np.int64)
    keys = np.column_stack([P.dept[idx], P.due[idx], P.nh[idx].astype(np.int64), P.cur[idx], P.pid[idx], bits])
    uniq, rep, class_of = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    class_of = class_of.ravel()
    counts = np.bincount(class_of, minlength=len(uniq)).astype(np.int64)
    col_class, col_start = np.nonzero(allowed[rep])
    rep_p = idx[rep]
    col_cost = start_costs(inp, col_start, P.due[rep_p][col_class], P.nh[rep_p][col_class], P.cur[rep_p][col_class])
    col_cost = col_cost + P.pref_cost(rep_p[col_class], col_start)
    A = _matrix(inp, cap, P.dept[rep_p][col_class], col_start) if matrix else None
    slack = (
        unplaced_penalty(inp)
        + fairness_penalty(inp, P.due[rep_p])
        + np.where(P.cur[rep_p] != NO_START, inp.weights.move, 0.0)
    )
    return _Model(idx, class_of, counts, col_class.astype(np.int64), col_start.astype(np.int64), col_cost, A, slack)


def _eq_matrix(col_class: np.ndarray, nclass: int) -> sp.csr_matrix:
    ncol = len(col_class)
    A = sp.csr_matrix((np.ones(ncol), (col_class, np.arange(ncol))), shape=(nclass, ncol))
    return sp.hstack([A, sp.identity(nclass, format="csr")], format="csr")


def _solve_mip(
    m: _Model,
    b_ub: np.ndarray,
    big: float,
    time_limit: float,
    rel_gap: float = 1e-9,
    balance: float = 0.0,
    start_rhs: np.ndarray | None = None,
    weeks: int = 0,
):
    """Integer counts per column (+ unplaced slack per class); returns (y, proven optimal) or (None, False).

    With ``balance`` > 0, one continuous ``over[r] >= starts_(r % weeks) - start_rhs[r]`` per balance row
    costs ``balance`` (see :func:`_balance_rhs`; the starts already fixed are subtracted there)."""
    nclass, ncol = len(m.counts), len(m.col_cost)
    W = 0 if balance <= 0 or start_rhs is None else len(start_rhs)
    A_eq = _eq_matrix(m.col_class, nclass)
    A_eq = sp.hstack([A_eq, sp.csr_matrix((nclass, W))], format="csr")
    assert m.A_ub is not None
    A_full = sp.hstack([m.A_ub, sp.csr_matrix((m.A_ub.shape[0], nclass + W))], format="csr")
    cons_rhs = [b_ub]
    if W:
        S = sp.csr_matrix((np.ones(ncol), (m.col_start, np.arange(ncol))), shape=(weeks, ncol))
        S = sp.vstack([S] * (W // weeks), format="csr")
        A_bal = sp.hstack([S, sp.csr_matrix((W, nclass)), -sp.identity(W, format="csr")], format="csr")
        A_full = sp.vstack([A_full, A_bal], format="csr")
        cons_rhs.append(np.asarray(start_rhs, dtype=np.float64))
    c = np.concatenate([m.col_cost, m.slack_cost, np.full(W, balance)])
    ub = np.concatenate([m.counts[m.col_class], m.counts, np.full(W, np.inf)]).astype(np.float64)
    res = milp(
        c,
        integrality=np.concatenate([np.ones(ncol + nclass), np.zeros(W)]),
        bounds=Bounds(np.zeros(ncol + nclass + W), ub),
        constraints=[
            LinearConstraint(A_full, -np.inf, np.concatenate(cons_rhs)),
            LinearConstraint(A_eq, m.counts, m.counts),
        ],
        options={"time_limit": max(time_limit, 1.0), "mip_rel_gap": rel_gap, "presolve": True},
    )
    if res.x is None:
        return None, False
    return np.round(res.x[:ncol]).astype(np.int64), res.status == 0


def _lp_flow(
    inp: PlanInput,
    cap: _Capacity,
    m: _Model,
    big: float,
    ndept: int,
    dept_of_person: np.ndarray,
    time_limit: float,
    start_rhs: np.ndarray | None = None,
    hall: tuple[sp.csr_matrix, np.ndarray] | None = None,
):
    """The LP in "flow" form: class columns y[c, s] feed node (dept, s) whose total z[d, s] carries the
    capacity rows. Every y column has two non-zeros (its class row and its node row), so HiGHS works on a
    far sparser matrix than with the sliding-window rows on every column.
    Variables: y (columns), slack (per class), z (dept x week), over (step x week, when balance is on).
    Rows: class eq, node eq, capacity ub, Hall's rows of merged classes over y (see :func:`_coarse`), balance ub
    (sum_d z[d, w] - over[k, w] <= start_rhs[k, w])."""
    W = inp.weeks
    nclass, ncol, nz = len(m.counts), len(m.col_cost), ndept * W
    col_dept = dept_of_person[m.idx[_first_member(m)]][m.col_class]
    node = col_dept * W + m.col_start
    rows = np.concatenate([m.col_class, nclass + node, np.arange(nclass), nclass + np.arange(nz)])
    cols = np.concatenate([np.arange(ncol), np.arange(ncol), ncol + np.arange(nclass), ncol + nclass + np.arange(nz)])
    vals = np.concatenate([np.ones(2 * ncol + nclass), -np.ones(nz)])
    A_eq = sp.csr_matrix((vals, (rows, cols)), shape=(nclass + nz, ncol + nclass + nz))
    b_eq = np.concatenate([m.counts.astype(np.float64), np.zeros(nz)])
    z_dept = np.repeat(np.arange(ndept), W)
    z_start = np.tile(np.arange(W), ndept)
    Az = _matrix(inp, cap, z_dept, z_start)
    A_ub = sp.hstack([sp.csr_matrix((Az.shape[0], ncol + nclass)), Az], format="csr")
    c = np.concatenate([m.col_cost, m.slack_cost, np.zeros(nz)])
    b_ub = cap.b_ub
    if hall is not None and hall[0].shape[0]:
        H = sp.hstack([hall[0], sp.csr_matrix((hall[0].shape[0], nclass + nz))], format="csr")
        A_ub, b_ub = sp.vstack([A_ub, H], format="csr"), np.concatenate([b_ub, hall[1]])
    if start_rhs is not None:
        nb = len(start_rhs)
        Zw = sp.csr_matrix((np.ones(nz), (z_start, np.arange(nz))), shape=(W, nz))
        Zw = sp.vstack([Zw] * (nb // W), format="csr")
        A_ub = sp.hstack([A_ub, sp.csr_matrix((A_ub.shape[0], nb))], format="csr")
        A_bal = sp.hstack([sp.csr_matrix((nb, ncol + nclass)), Zw, -sp.identity(nb, format="csr")], format="csr")
        A_ub = sp.vstack([A_ub, A_bal], format="csr")
        A_eq = sp.hstack([A_eq, sp.csr_matrix((A_eq.shape[0], nb))], format="csr")
        b_ub = np.concatenate([b_ub, start_rhs])
        c = np.concatenate([c, np.full(nb, inp.weights.balance)])
    nhall = 0 if hall is None else hall[0].shape[0]  # short rows: not counted
    wide = len(c) > inp.ipm_columns_per_row * (A_ub.shape[0] - nhall + A_eq.shape[0])
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=b_ub,
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=(0, None),
        method="highs-ipm" if wide else "highs-ds",
        options={"time_limit": max(time_limit, 1.0), "presolve": True},
    )
    res["interior"] = wide
    return res


def _first_member(m: _Model) -> np.ndarray:
    """Position (in m.idx) of one member of every class."""
    first = np.full(len(m.counts), len(m.class_of), dtype=np.int64)
    np.minimum.at(first, m.class_of, np.arange(len(m.class_of)))
    return first


@dataclass
class _Coarse:
    """The classes of a model merged where only their allowed start weeks differ (see :func:`_coarse`)."""

    lp: _Model  # the merged classes (the LP's columns: every start week one of its parts may take)
    of_fine: np.ndarray  # merged class per class of the exact model
    col_map: np.ndarray  # merged column per column of the exact model
    hall: sp.csr_matrix  # Hall's rows over the merged columns: the sum of y over a week set <= hall_rhs
    hall_rhs: np.ndarray


def _coarse(inp: PlanInput, P: _People, cap: _Capacity, fine: _Model) -> _Coarse:
    """Merge the classes of ``fine`` that differ only in their allowed start weeks (same department, due week,
    kind, current start and preferences, so the same costs). 100k employees with seats for 60 %: the
    absences' patterns make 10,797 classes of what would be 1,576, and the LP over their 381k columns took
    37-40 s.

    Merged, a class may start in any week one of its parts may: alone, a relaxation. It is made exact by
    Hall's condition for sharing the merged starts ``y`` out to the parts (:func:`_disaggregate`, a
    transportation problem): for every set S of weeks, ``y(S) <= n - (members of the parts that may start in
    none of S)``. With ``H_g`` the weeks the merged class may start in and part ``g`` may not, the parts that
    may start in none of S are those with ``S <= H_g``, and for a given family of them the tightest S is the
    intersection of their ``H_g``; so one row per intersection of the parts' ``H_g`` is enough (week
    bitmasks; :func:`_hall_sets`). The merged LP then has the exact LP's optimum, and every solution of it can
    be shared out. A class with more than ``PlanInput.hall_rows_per_class`` intersections (many different
    absences: their number grows with the square of the parts) keeps its parts apart instead."""
    W = inp.weeks
    nfine = len(fine.counts)
    rep = fine.idx[_first_member(fine)]
    masks = _week_masks(fine.col_class, fine.col_start, nfine, W)
    apart = np.zeros(nfine, dtype=bool)
    g = np.arange(nfine, dtype=np.int64)
    known: dict[tuple[int, ...], Any] = {}
    while True:
        keys = np.column_stack(
            [P.dept[rep], P.due[rep], P.nh[rep].astype(np.int64), P.cur[rep], P.pid[rep], np.where(apart, g, -1)]
        )
        _, crep, of_fine = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        of_fine = of_fine.ravel()
        rows, too_many = _hall_sets(of_fine, masks, fine.counts, inp.hall_rows_per_class, known)
        if not len(too_many):
            break
        apart[np.isin(of_fine, too_many)] = True
    col_key = of_fine[fine.col_class] * W + fine.col_start
    ckeys, first_col, col_map = np.unique(col_key, return_index=True, return_inverse=True)
    col_class, col_start = of_fine[fine.col_class[first_col]], fine.col_start[first_col]
    lp = _Model(
        fine.idx,
        of_fine[fine.class_of],
        np.bincount(of_fine, weights=fine.counts, minlength=len(crep)).astype(np.int64),
        col_class,
        col_start,
        fine.col_cost[first_col],
        None,
        fine.slack_cost[crep],
    )
    r, w = np.nonzero(_mask_weeks([weeks_set for _, weeks_set, _ in rows], W))
    cls = np.fromiter((cl for cl, _, _ in rows), dtype=np.int64, count=len(rows))
    c = np.searchsorted(ckeys, cls[r] * W + w)
    hall = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), len(ckeys)))
    rhs = np.fromiter((bound for _, _, bound in rows), dtype=np.float64, count=len(rows))
    return _Coarse(lp, of_fine, col_map.ravel(), hall, rhs)


def _week_masks(col_class: np.ndarray, col_start: np.ndarray, nclass: int, weeks: int) -> list[int]:
    """Per class: its allowed start weeks as a bitmask (bit w = week w)."""
    allowed = np.zeros((nclass, weeks), dtype=bool)
    allowed[col_class, col_start] = True
    packed = np.packbits(allowed, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _mask_weeks(masks: list[int], weeks: int) -> np.ndarray:
    """The inverse of :func:`_week_masks`: (masks, weeks) bool, True where bit w of a mask is set."""
    nbytes = (weeks + 7) // 8
    raw = np.frombuffer(b"".join(m.to_bytes(nbytes, "little") for m in masks), dtype=np.uint8)
    return np.unpackbits(raw.reshape(len(masks), nbytes), axis=1, bitorder="little")[:, :weeks].astype(bool)


def _hall_sets(
    of_fine: np.ndarray, masks: list[int], counts: np.ndarray, limit: int, known: dict[tuple[int, ...], Any]
) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Hall's rows of the merged classes (see :func:`_coarse`): (merged class, week set I as a bitmask, its
    members minus those of the parts that may start in no week of I); and the merged classes with more than
    ``limit`` such sets (no rows for them). ``known`` keeps each class's sets by its parts across calls."""
    by_class: dict[int, list[int]] = {}
    for g, cl in enumerate(of_fine.tolist()):
        by_class.setdefault(cl, []).append(g)
    rows: list[tuple[int, int, int]] = []
    too_many: list[int] = []
    for cl, parts in by_class.items():
        if len(parts) == 1:
            continue
        sets = known.get(tuple(parts))
        if sets is None:
            sets = known[tuple(parts)] = _class_hall_sets(parts, masks, counts, limit)
        if not sets:
            too_many.append(cl)
        rows.extend((cl, weeks_set, bound) for weeks_set, bound in sets)
    return rows, np.asarray(too_many, dtype=np.int64)


def _class_hall_sets(parts: list[int], masks: list[int], counts: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """One merged class's Hall sets (week set, bound); empty when there are more than ``limit``."""
    union = 0
    for g in parts:
        union |= masks[g]
    holes: dict[int, int] = {}  # H_g -> members of those parts
    for g in parts:
        h = union & ~masks[g]
        if h:
            holes[h] = holes.get(h, 0) + int(counts[g])
    total = sum(int(counts[g]) for g in parts)
    if union < 1 << 62:  # the weeks fit in an int64: the closure by numpy
        h_arr = np.fromiter(holes, dtype=np.int64, count=len(holes))
        n_arr = np.fromiter(holes.values(), dtype=np.int64, count=len(holes))
        family = frontier = np.unique(h_arr)
        while len(frontier) and len(family) <= limit:
            new = np.unique(np.bitwise_and.outer(frontier, family))
            frontier = np.setdiff1d(new[new != 0], family, assume_unique=True)
            family = np.union1d(family, frontier)
        if len(family) > limit:
            return []
        missing = ((family[:, None] & h_arr[None, :]) == family[:, None]).astype(np.int64) @ n_arr
        return list(zip(family.tolist(), (total - missing).tolist(), strict=True))
    sets, frontier_ = set(holes), list(holes)
    while frontier_ and len(sets) <= limit:
        fresh = {a & b for a in frontier_ for b in sets} - sets - {0}
        sets |= fresh
        frontier_ = list(fresh)
    if len(sets) > limit:
        return []
    return [
        (weeks_set, total - sum(n for h, n in holes.items() if h & weeks_set == weeks_set))
        for weeks_set in sorted(sets)
    ]


def _disaggregate(fine: _Model, co: _Coarse, y: np.ndarray) -> np.ndarray | None:
    """Share the merged classes' starts ``y`` out among their parts, each part only in its own allowed start
    weeks and at most its count: a transportation problem per merged class, all in one small LP over the
    starts ``y`` uses. Returns the values of the exact model's columns; None if some start cannot be shared
    out (Hall's rows rule that out; only numerics could)."""
    parts = np.bincount(co.of_fine)
    x = np.zeros(len(fine.col_cost))
    multi = parts[co.of_fine[fine.col_class]] > 1
    x[~multi] = y[co.col_map[~multi]]
    sel = np.nonzero(multi & (y[co.col_map] > INT_TOL))[0]
    if not len(sel):
        return x
    demand, d_row = np.unique(co.col_map[sel], return_inverse=True)
    supply, s_row = np.unique(fine.col_class[sel], return_inverse=True)
    A_eq = sp.csr_matrix((np.ones(len(sel)), (d_row, np.arange(len(sel)))), shape=(len(demand), len(sel)))
    A_ub = sp.csr_matrix((np.ones(len(sel)), (s_row, np.arange(len(sel)))), shape=(len(supply), len(sel)))
    res = linprog(
        np.zeros(len(sel)),
        A_ub=A_ub,
        b_ub=fine.counts[supply].astype(np.float64),
        A_eq=A_eq,
        b_eq=y[demand],
        bounds=(0, None),
        method="highs-ds",
    )
    if res.status != 0:
        return None
    x[sel] = res.x
    return x


def _record_round(stats: dict, rounds: int, m: _Model, res: Any, t_round: float) -> None:
    """One LP round in the stats: the exact model's size, the round's seconds and method, a failure."""
    stats.update(lp_rounds=rounds, classes=len(m.counts), columns=len(m.col_cost))
    stats.setdefault("lp_round_seconds", []).append(round(time.perf_counter() - t_round, 2))
    stats.setdefault("lp_round_methods", []).append("interior point" if res.interior else "dual simplex")
    if res.status != 0:
        stats["lp_status"] = res.message


def _merged_lp(
    inp: PlanInput,
    P: _People,
    cap: _Capacity,
    m: _Model,
    big: float,
    t0: float,
    stats: dict,
    start_rhs: np.ndarray | None,
    rounds: int,
):
    """The LP of whole windows over merged classes (:func:`_coarse`), shared out to the exact classes of
    ``m`` (:func:`_disaggregate`). Returns (m, column values or None when HiGHS fails, lower bound)."""
    co = _coarse(inp, P, cap, m)
    ncol = len(co.lp.col_cost)
    t_round = time.perf_counter()
    time_left = inp.time_limit - (time.perf_counter() - t0)
    res = _lp_flow(inp, cap, co.lp, big, len(P.depts), P.dept, time_left, start_rhs, (co.hall, co.hall_rhs))
    _record_round(stats, rounds, m, res, t_round)
    stats.update(lp_classes=len(co.lp.counts), lp_columns=ncol, hall_rows=len(co.hall_rhs))
    if res.status != 0:
        return m, None, None
    x = _disaggregate(m, co, res.x[:ncol])
    if x is None:  # numerics only: then the LP over the exact classes
        stats["lp_status"] = "the merged classes' starts could not be shared out: the exact LP"
        time_left = inp.time_limit - (time.perf_counter() - t0)
        res = _lp_flow(inp, cap, m, big, len(P.depts), P.dept, time_left, start_rhs)
        if res.status != 0:
            return m, None, None
        x = res.x[: len(m.col_cost)]
    return m, x, float(res.fun)


def _solve_lp(
    inp: PlanInput,
    P: _People,
    cap: _Capacity,
    idx: np.ndarray,
    big: float,
    t0: float,
    stats: dict,
    start_rhs: np.ndarray | None = None,
):
    """LP relaxation by growing windows (column generation on whole start weeks).

    Every person starts with the first ``initial_window`` weeks of their window (their whole window when the
    people need more rotation weeks than the horizon has seats: then the duals price the seats in every week
    and the windows grow to their ends anyway, so the narrow first LP would be wasted; 10k employees with
    seats for 60 % of them: 0.7 s of 3.5 at 10k). With whole windows the LP is solved over merged classes
    (:func:`_coarse`, exact by Hall's rows) and shared out to the exact ones (:func:`_disaggregate`). After
    each LP the
    duals price every start week left out; people with an improving start get a longer window and the
    LP is solved again. When nothing improves, the LP value is the optimum of the full LP: a proven lower
    bound of every plan. Returns (model, column values, lower bound); column values None when HiGHS fails.
    """
    W = inp.weeks
    first, last = P.first[idx], P.last[idx]
    end = np.minimum(last, first + inp.initial_window - 1)
    if len(idx) * inp.length_weeks > cap.b_ub[:W].sum():  # more rotation weeks than seats: the LP prices
        end = last.copy()  # seats everywhere and every window grows to its end (one LP, not two)
        stats["lp_whole_windows"] = True
    weeks = np.arange(W, dtype=np.int64)
    rounds = 0
    while True:
        rounds += 1
        m = _model(inp, P, cap, idx, end, matrix=False)
        if (end >= last).all():  # nothing left to price: the merged classes' LP
            return _merged_lp(inp, P, cap, m, big, t0, stats, start_rhs, rounds)
        t_round = time.perf_counter()
        res = _lp_flow(inp, cap, m, big, len(P.depts), P.dept, inp.time_limit - (time.perf_counter() - t0), start_rhs)
        _record_round(stats, rounds, m, res, t_round)
        if res.status != 0:
            return m, None, None
        nclass = len(m.counts)
        x = res.x[: len(m.col_cost)]
        # price the left-out starts: reduced cost = cost - class dual - dual of its (department, week) node
        pi = res.eqlin.marginals[:nclass][m.class_of]
        node_dual = res.eqlin.marginals[nclass:].reshape(len(P.depts), W)
        open_ = np.nonzero(end < last)[0]
        neg_any = np.zeros(len(idx), dtype=bool)
        furthest = np.full(len(idx), -1, dtype=np.int64)
        bound_terms = 0.0
        for chunk in np.array_split(open_, max(1, len(open_) // 20000)):
            p = idx[chunk]
            rc = start_costs(inp, weeks[None, :], P.due[p][:, None], P.nh[p][:, None], P.cur[p][:, None])
            rc = rc + P.pref[P.pid[p]]
            rc = rc - pi[chunk][:, None] - node_dual[P.dept[p]]
            outside = P.allowed[p] & (weeks[None, :] > end[chunk][:, None])
            rc = np.where(outside, rc, np.inf)
            low = rc.min(axis=1)
            tol = -1e-7 * max(1.0, big)
            neg = low < tol
            neg_any[chunk] = neg
            # the latest improving start: grow the window past it (duals show how far congestion reaches)
            furthest[chunk] = np.where(neg, W - 1 - np.argmax((rc < tol)[:, ::-1], axis=1), -1)
            bound_terms += float(np.minimum(low[neg], 0.0).sum())
        if not neg_any.any():
            return m, x, float(res.fun)
        if time.perf_counter() - t0 > inp.time_limit * 0.7:
            stats["lp_status"] = "window growth stopped at the time limit; bound from reduced costs"
            return m, x, float(res.fun) + bound_terms  # Lagrangian bound, valid before convergence
        grow = np.nonzero(neg_any)[0]
        length = end[grow] - first[grow] + 1
        step = np.maximum(end[grow] + np.maximum(length, inp.initial_window), furthest[grow] + inp.initial_window)
        end[grow] = np.minimum(last[grow], step)


@dataclass
class _Run:
    """One call of :func:`solve`: the people as arrays, the capacity rows, the balance rows and the clock."""

    inp: PlanInput
    P: _People
    cap: _Capacity
    big: float  # the cost of leaving one person unplaced
    target: float  # starts per week that cost no balance
    start_rhs: np.ndarray | None  # right-hand sides of the balance rows (None: balance off)
    t0: float
    stats: dict[str, Any]

    def time_left(self) -> float:
        return self.inp.time_limit - (time.perf_counter() - self.t0)


def solve(inp: PlanInput) -> PlanOutput:
    """Plan ``inp.people`` (see the module docstring). Never raises for over-subscribed input.

    Phases: check the input -> people as arrays -> LP relaxation rounded down (:func:`_lp_rounded`) ->
    MIP repair of the rest (:func:`_repair`) -> the exact class MIP while a gap is left
    (:func:`_exact_mip`) -> the output, with a reason for everyone unplaced (:func:`_output`)."""
    t0 = time.perf_counter()
    people = _checked_people(inp)
    depts = sorted({p.dept for p in people} | {lr.dept for lr in inp.locked})
    P = _people_arrays(inp, people, depts)
    cap = _capacity(inp, depts)
    big = unplaced_penalty(inp)
    stats: dict[str, Any] = {"people": len(people)}
    unplaced = _without_a_start(P)
    idx = np.nonzero(P.allowed.any(axis=1))[0]
    target = balance_target(inp, len(idx))
    run = _Run(inp, P, cap, big, target, _balance_rhs(inp, target), t0, stats)
    stats["balance_target"] = round(target, 4)
    if len(idx):
        start_of, objective, lower_bound, method = _optimise(run, idx)
        stats["fairness_exchanges"] = exchanges = _enforce_fairness(run, idx, start_of)
        if exchanges:  # each exchange lowered the objective: the bound still holds
            objective = _objective(inp, P, start_of, idx, big, target)
            method += "+fairness"
    else:  # nothing to place: only locked starts beyond the target (a constant) cost balance
        start_of = np.full(len(people), NO_START, dtype=np.int64)
        objective = balance_cost(inp, np.zeros(inp.weeks), target) if inp.weights.balance > 0 else 0.0
        lower_bound, method = objective, "empty"
    return _output(run, idx, start_of, objective, lower_bound, method, unplaced)


def _checked_people(inp: PlanInput) -> list[Person]:
    """``inp.people`` in key order; ValueError for input no plan can come from."""
    if inp.horizon_start.weekday() != 0:
        raise ValueError(f"horizon_start {inp.horizon_start} is not a Monday")
    people = sorted(inp.people, key=lambda p: p.key)
    if len({p.key for p in people}) != len(people):
        raise ValueError("person keys must be unique")
    locked_keys = {lr.key for lr in inp.locked}
    clash = [p.key for p in people if p.key in locked_keys]
    if clash:
        raise ValueError(f"people with a locked rotation must not be planned again: {clash[:5]}")
    return people


def _without_a_start(P: _People) -> list[Unplaced]:
    """People with no allowed start week at all (outside the optimisation)."""
    unplaced: list[Unplaced] = []
    for i in np.nonzero(~P.allowed.any(axis=1))[0]:
        p = P.people[i]
        if P.first[i] > P.last[i]:
            unplaced.append(Unplaced(p.key, "no_window", "no possible start week inside the planning horizon"))
        else:
            unplaced.append(
                Unplaced(p.key, "blocked", "absences or blackouts overlap every possible start week in the window")
            )
    return unplaced


def _optimise(run: _Run, idx: np.ndarray) -> tuple[np.ndarray, float, float | None, str]:
    """(start per person or NO_START, objective, lower bound or None, method) for the people ``idx``."""
    start_of = np.full(len(run.P.people), NO_START, dtype=np.int64)
    lower_bound, method = _lp_rounded(run, idx, start_of)
    method += _repair(run, idx, start_of)
    objective = _objective(run.inp, run.P, start_of, idx, run.big, run.target)
    if lower_bound is not None and objective - lower_bound > 1e-6 * max(1.0, abs(objective)):
        return _exact_mip(run, idx, start_of, objective, lower_bound, method)
    return start_of, objective, lower_bound, method


def _lp_rounded(run: _Run, idx: np.ndarray, start_of: np.ndarray) -> tuple[float | None, str]:
    """Solve the LP relaxation and give everyone the integral part of their class's starts (in ``start_of``).
    Returns (lower bound, method); when HiGHS fails, the greedy plan and no bound."""
    inp, P = run.inp, run.P
    t_lp = time.perf_counter()
    m, x, lower_bound = _solve_lp(inp, P, run.cap, idx, run.big, run.t0, run.stats, run.start_rhs)
    run.stats["lp_seconds"] = round(time.perf_counter() - t_lp, 3)
    if x is not None:
        _take(m, np.floor(x + INT_TOL).astype(np.int64), start_of)
        return lower_bound, "lp"
    # LP failed (time limit, numerics): greedy plan, no proven bound
    pos = {p.key: i for i, p in enumerate(P.people)}
    for k, s in greedy(inp).assignments.items():
        start_of[pos[k]] = s
    return lower_bound, "greedy-fallback"


def _repair(run: _Run, idx: np.ndarray, start_of: np.ndarray) -> str:
    """Place the people the rounding left out with a MIP on the capacity that is left (in ``start_of``).
    Returns what to add to the method's name."""
    inp, P, cap = run.inp, run.P, run.cap
    rest = idx[start_of[idx] == NO_START]
    run.stats["repair_people"] = int(len(rest))
    if not len(rest):
        return ""
    t_mip = time.perf_counter()
    used = _used(inp, P, cap, start_of)
    mr = _model(inp, P, cap, rest, P.last[rest])
    rhs = _balance_rhs(inp, run.target, _week_starts(inp, start_of))
    y, _ok = _solve_mip(
        mr, cap.b_ub - used, run.big, run.time_left(), balance=inp.weights.balance, start_rhs=rhs, weeks=inp.weeks
    )
    run.stats["repair_seconds"] = round(time.perf_counter() - t_mip, 3)
    if y is None:
        return ""
    _take(mr, y, start_of)
    return "+repair"


def _exact_mip(
    run: _Run, idx: np.ndarray, start_of: np.ndarray, objective: float, lower_bound: float, method: str
) -> tuple[np.ndarray, float, float | None, str]:
    """When the repaired plan leaves a gap and the class model is small, solve the whole class model as a
    MIP as well: the better plan wins, and a proven optimum raises the bound."""
    inp, P, cap = run.inp, run.P, run.cap
    full = _model(inp, P, cap, idx, P.last[idx])
    if len(full.col_cost) > inp.exact_mip_max_columns:
        return start_of, objective, lower_bound, method
    t_ex = time.perf_counter()
    budget = min(inp.exact_mip_seconds, run.time_left())
    y, ok = _solve_mip(
        full, cap.b_ub, run.big, budget, balance=inp.weights.balance, start_rhs=run.start_rhs, weeks=inp.weeks
    )
    run.stats["exact_mip_seconds"] = round(time.perf_counter() - t_ex, 3)
    if y is None:
        return start_of, objective, lower_bound, method
    alt = np.full(len(P.people), NO_START, dtype=np.int64)
    _take(full, y, alt)
    obj2 = _objective(inp, P, alt, idx, run.big, run.target)
    if obj2 < objective - 1e-9:
        start_of, objective, method = alt, obj2, "exact-mip"
    if ok:  # proven optimal within 1e-9: its value is a bound too
        lower_bound = max(lower_bound, obj2 * (1 - 1e-9))
    return start_of, objective, lower_bound, method


def _output(
    run: _Run,
    idx: np.ndarray,
    start_of: np.ndarray,
    objective: float,
    lower_bound: float | None,
    method: str,
    unplaced: list[Unplaced],
) -> PlanOutput:
    """The assignments, each placement's cost, the unplaced with their reasons, the gap and the stats."""
    inp, P, stats = run.inp, run.P, run.stats
    people = P.people
    assignments = {people[i].key: int(start_of[i]) for i in idx if start_of[i] != NO_START}
    placed = np.array([i for i in idx if start_of[i] != NO_START], dtype=np.int64)
    cost = (
        start_costs(inp, start_of[placed], P.due[placed], P.nh[placed], P.cur[placed])
        + P.pref_cost(placed, start_of[placed])
        if len(placed)
        else np.zeros(0)
    )
    costs = {people[i].key: float(c) for i, c in zip(placed, cost, strict=True)}
    left = [people[i] for i in idx if start_of[i] == NO_START]
    if left:
        unplaced.extend(explain_unplaced(inp, left, assignments))
    unplaced.sort(key=lambda u: u.key)
    gap: float | None = None
    if lower_bound is not None:
        lower_bound = min(lower_bound, objective)
        gap = (objective - lower_bound) / abs(objective) if objective > 0 else 0.0
    bal = inp.weights.balance
    stats["method"] = method
    stats["placement_cost"] = round(float(cost.sum()), 6)
    stats["balance_cost"] = round(balance_cost(inp, _week_starts(inp, start_of), run.target), 6) if bal > 0 else 0.0
    stats["unplaced_penalty"] = run.big
    return PlanOutput(assignments, unplaced, objective, lower_bound, gap, time.perf_counter() - run.t0, stats, costs)


# --------------------------------------------------------------------------------------------------
# Fairness


@dataclass
class _Loads:
    """People on rotation per week (seats) and per (department, week), locked rotations included."""

    inp: PlanInput
    P: _People
    seat: np.ndarray
    dept: np.ndarray  # (departments, weeks)
    caps: np.ndarray  # per department

    @classmethod
    def of(cls, inp: PlanInput, P: _People, start_of: np.ndarray) -> _Loads:
        seat, dept = locked_load(inp, P.depts)
        loads = cls(inp, P, seat, dept, np.array([_dept_cap(inp, d) for d in P.depts], dtype=np.int64))
        for i in np.nonzero(start_of != NO_START)[0]:
            loads.add(int(i), int(start_of[i]), 1)
        return loads

    def add(self, i: int, start: int, n: int) -> None:
        L = self.inp.length_weeks
        self.seat[start : start + L] += n
        self.dept[self.P.dept[i], start : start + L] += n

    def _window_sum(self, flags: np.ndarray) -> np.ndarray:
        """Per start week 0 .. weeks - 1: how many of the rotation's weeks are flagged."""
        cum = np.concatenate([[0], np.cumsum(flags.astype(np.int64))])
        s = np.arange(self.inp.weeks)
        return cum[np.minimum(s + self.inp.length_weeks, len(flags))] - cum[s]

    def best_start(self, i: int) -> int | None:
        """The cheapest allowed start of person ``i`` that fits the seats and their department cap, or None."""
        inp, P, d = self.inp, self.P, self.P.dept[i]
        full = (self.seat >= inp.seats_per_week) | (self.dept[d] >= self.caps[d])
        ok = np.nonzero(P.allowed[i] & (self._window_sum(full) == 0))[0]
        if not len(ok):
            return None
        cost = start_costs(inp, ok, P.due[i], P.nh[i], P.cur[i]) + P.pref[P.pid[i], ok]
        return int(ok[int(np.argmin(cost))])

    def freed_by(self, i: int, cand: np.ndarray, start_of: np.ndarray) -> np.ndarray:
        """Which of the placed people ``cand`` would, taken out, let person ``i`` start somewhere allowed:
        every full week of some allowed start must lie inside their rotation (and the department's full
        weeks only help when they are of the same department). Worked out over start weeks, not candidates:
        for each allowed start of ``i``, its first and last full week give the starts whose rotation covers
        them (two masks over the weeks, one for anyone, one for the same department only), then one lookup
        per candidate (100k employees, seats for 60 %: 29k people left out, the pass 10.5 -> 1.8 s)."""
        inp, P, d, L, W = self.inp, self.P, self.P.dept[i], self.inp.length_weeks, self.inp.weeks
        seat_full, dept_full = self.seat == inp.seats_per_week, self.dept[d] == self.caps[d]
        over = (self.seat > inp.seats_per_week) | (self.dept[d] > self.caps[d])
        s = np.nonzero(P.allowed[i] & (self._window_sum(over) == 0))[0]  # the starts with hope
        n = len(self.seat)
        at = np.arange(n)
        full = seat_full | dept_full
        next_full = np.minimum.accumulate(np.where(full, at, n)[::-1])[::-1]  # first full week >= w
        last_full = np.maximum.accumulate(np.where(full, at, -1))  # last full week <= w
        end = np.minimum(s + L, n) - 1  # the start's last week
        first, last = next_full[s], last_full[end]
        lo, hi = np.minimum(first, W - 1), np.maximum(last - L + 1, 0)  # starts hi .. lo cover them all
        ok = (first <= end) & (hi <= lo)
        dept_weeks = self._window_sum(dept_full)[s] > 0
        masks = []
        for sel in (ok & ~dept_weeks, ok & dept_weeks):  # anyone's rotation helps; only the same department's
            diff = np.zeros(W + 1, dtype=np.int64)
            np.add.at(diff, hi[sel], 1)
            np.add.at(diff, lo[sel] + 1, -1)
            masks.append(np.cumsum(diff)[:W] > 0)
        t = start_of[cand]
        return masks[0][t] | (masks[1][t] & (P.dept[cand] == d))


def _enforce_fairness(run: _Run, idx: np.ndarray, start_of: np.ndarray) -> int:
    """The fairness rule, whatever the solver's rounding left: nobody stays unplaced while a free start fits
    them or while someone due later is placed whose rotation, taken out, would let them start (most overdue
    first; the later person is then unplaced and may in turn take the place of someone due even later).

    Each placement or exchange lowers the objective (:func:`fairness_penalty`), so an optimal plan is left as
    it is and the loop ends. Returns the number of placements and exchanges made (in ``start_of``)."""
    P = run.P
    loads = _Loads.of(run.inp, P, start_of)
    changes, changed = 0, True
    while changed:
        changed = False
        left = idx[start_of[idx] == NO_START]
        ranked = ranked_due = None  # the placed, latest due first (then by index); rebuilt after a change
        # (department, due week, allowed starts) that found nothing since the last change: a colleague alike
        # finds nothing either (100k employees, seats for 60 %: 29,131 left out, the pass 2.6 -> 0.2 s)
        hopeless: set[tuple[int, int, bytes]] = set()
        for a in left[np.lexsort((left, P.due[left]))]:
            alike = (int(P.dept[a]), int(P.due[a]), P.allowed[a].tobytes())
            if alike in hopeless:
                continue
            s = loads.best_start(int(a))
            if s is None:
                if ranked is None or ranked_due is None:
                    placed = np.nonzero(start_of != NO_START)[0]
                    ranked = placed[np.lexsort((placed, -P.due[placed]))]
                    ranked_due = -P.due[ranked]  # ascending
                cand = ranked[: np.searchsorted(ranked_due, -P.due[a], side="left")]  # due later than a's
                for b in cand[loads.freed_by(int(a), cand, start_of)]:
                    loads.add(int(b), int(start_of[b]), -1)
                    s = loads.best_start(int(a))
                    if s is not None:
                        start_of[b] = NO_START
                        break
                    loads.add(int(b), int(start_of[b]), 1)
            if s is None:
                hopeless.add(alike)
            else:
                start_of[a] = s
                loads.add(int(a), s, 1)
                changes, changed = changes + 1, True
                ranked = None
                hopeless.clear()
    return changes


def _take(m: _Model, y: np.ndarray, start_of: np.ndarray) -> None:
    """Give the members of each class (in key order) the class's starts, earliest first."""
    order = np.lexsort((m.col_start, m.col_class))
    nclass = len(m.counts)
    members: list[list[int]] = [[] for _ in range(nclass)]
    for pos, cl in enumerate(m.class_of):
        members[cl].append(m.idx[pos])
    taken = np.zeros(nclass, dtype=np.int64)
    for j in order[y[order] > 0]:
        cl, cnt = m.col_class[j], int(y[j])
        for i in members[cl][taken[cl] : taken[cl] + cnt]:
            start_of[i] = m.col_start[j]
        taken[cl] += cnt


def _used(inp: PlanInput, P: _People, cap: _Capacity, start_of: np.ndarray) -> np.ndarray:
    placed = np.nonzero(start_of != NO_START)[0]
    if not len(placed):
        return np.zeros_like(cap.b_ub)
    A = _matrix(inp, cap, P.dept[placed], start_of[placed])
    return np.asarray(A.sum(axis=1)).ravel()


def _week_starts(inp: PlanInput, start_of: np.ndarray) -> np.ndarray:
    """New starts per week 0 .. weeks - 1."""
    s = start_of[start_of != NO_START]
    return np.bincount(s, minlength=inp.weeks)[: inp.weeks].astype(np.float64)


def _objective(inp: PlanInput, P: _People, start_of: np.ndarray, idx: np.ndarray, big: float, target: float) -> float:
    s = start_of[idx]
    ok = s != NO_START
    p = idx[ok]
    cost = (start_costs(inp, s[ok], P.due[p], P.nh[p], P.cur[p]) + P.pref_cost(p, s[ok])).sum() if len(p) else 0.0
    dropped = idx[~ok]
    bal = balance_cost(inp, _week_starts(inp, start_of), target) if inp.weights.balance > 0 else 0.0
    slack = big * len(dropped) + fairness_penalty(inp, P.due[dropped]).sum()
    return float(cost + slack + inp.weights.move * (P.cur[dropped] != NO_START).sum() + bal)


# --------------------------------------------------------------------------------------------------
# Explanations, loads and the greedy baseline


def week_loads(
    inp: PlanInput, assignments: dict[str, int], people: list[Person] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(seat load per week, {dept: load per week}) including locked rotations; weeks 0 .. weeks + L - 2."""
    people = inp.people if people is None else people
    dept_of = {p.key: p.dept for p in people}
    depts = sorted(set(dept_of.values()) | {lr.dept for lr in inp.locked})
    seat, dept = locked_load(inp, depts)
    pos = {d: i for i, d in enumerate(depts)}
    L, R = inp.length_weeks, _rows(inp)
    if assignments:  # starts counted per (department, week), then spread over each rotation's L weeks
        d = np.fromiter((pos[dept_of[k]] for k in assignments), dtype=np.int64, count=len(assignments))
        s = np.fromiter(assignments.values(), dtype=np.int64, count=len(assignments))
        lo = np.clip(s, 0, R)
        hi = np.clip(s + L, 0, R)
        diff = np.zeros((len(depts), R + 1), dtype=np.int64)
        np.add.at(diff, (d, lo), 1)
        np.add.at(diff, (d, hi), -1)
        load = np.cumsum(diff, axis=1)[:, :R]
        dept += load
        seat += load.sum(axis=0)
    return seat, {d: dept[pos[d]] for d in depts}


def explain_unplaced(inp: PlanInput, people: list[Person], assignments: dict[str, int]) -> list[Unplaced]:
    """Why each of ``people`` has no start: which capacity is full in every allowed start week."""
    seat, dept = week_loads(inp, assignments)
    L, W = inp.length_weeks, inp.weeks

    def full_starts(load: np.ndarray, cap: int) -> np.ndarray:
        """full[s]: some week of a rotation starting in s is at capacity."""
        at_cap = (load >= cap).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(at_cap)])
        s = np.arange(W)
        return (cum[np.minimum(s + L, len(load))] - cum[s]) > 0

    seat_full_at = full_starts(seat, inp.seats_per_week)
    dept_full_at = {d: full_starts(load, _dept_cap(inp, d)) for d, load in dept.items()}
    out = []
    for p in people:
        first, last = person_window(inp, p)
        blocked = p.blocked_starts | inp.blocked_starts
        allowed = [s for s in range(first, last + 1) if s not in blocked]
        cap = _dept_cap(inp, p.dept)
        seat_full = [bool(seat_full_at[s]) for s in allowed]
        dfull = dept_full_at.get(p.dept)
        dept_full = [dfull is not None and bool(dfull[s]) for s in allowed]
        window = f"weeks {inp.week_start(first)} to {inp.week_start(last)}"
        if all(seat_full) and not any(dept_full):
            out.append(Unplaced(p.key, "no_seat", f"no free seat in any allowed start week ({window})"))
        elif all(dept_full) and not any(seat_full):
            out.append(
                Unplaced(
                    p.key,
                    "department_cap",
                    f"department {p.dept} already has {cap} away in every allowed start week ({window})",
                )
            )
        else:
            out.append(
                Unplaced(
                    p.key,
                    "capacity",
                    f"seats or the department cap ({cap} away) are full in every allowed start week ({window})",
                )
            )
    return out


def _fits(seat, dload, s, L, seats, cap) -> bool:
    return bool((seat[s : s + L] < seats).all() and (dload is None or (dload[s : s + L] < cap).all()))


def greedy(inp: PlanInput) -> PlanOutput:
    """Baseline: earliest due first (new hires by hire week), each at the earliest start that fits."""
    t0 = time.perf_counter()
    people = sorted(inp.people, key=lambda p: (p.due_week, not p.is_new_hire, p.key))
    depts = sorted({p.dept for p in people} | {lr.dept for lr in inp.locked})
    seat, dept = locked_load(inp, depts)
    pos = {d: i for i, d in enumerate(depts)}
    L = inp.length_weeks
    assignments: dict[str, int] = {}
    costs: dict[str, float] = {}
    unplaced: list[Unplaced] = []
    costs_unplaced: list[float] = []
    for p in people:
        first, last = person_window(inp, p)
        blocked = p.blocked_starts | inp.blocked_starts
        cap = _dept_cap(inp, p.dept)
        dload = dept[pos[p.dept]]
        allowed = [s for s in range(first, last + 1) if s not in blocked]
        if not allowed:  # like the optimiser: listed, not part of the objective
            code = "no_window" if first > last else "blocked"
            unplaced.append(Unplaced(p.key, code, "no possible start week"))
            continue
        start = next((s for s in allowed if _fits(seat, dload, s, L, inp.seats_per_week, cap)), None)
        if start is None:
            unplaced.append(Unplaced(p.key, "capacity", "greedy found no start"))
            costs_unplaced.append(person_cost(inp, p, None))
            continue
        seat[start : start + L] += 1
        dload[start : start + L] += 1
        assignments[p.key] = start
        costs[p.key] = person_cost(inp, p, start)
    objective = float(sum(costs.values()) + sum(costs_unplaced))
    stats: dict[str, Any] = {"method": "greedy", "balance_cost": 0.0}
    if inp.weights.balance > 0:
        to_place = len(people) - sum(1 for u in unplaced if u.code in ("no_window", "blocked"))
        starts = np.bincount(
            np.fromiter(assignments.values(), dtype=np.int64, count=len(assignments)), minlength=inp.weeks
        )
        balance = balance_cost(inp, starts[: inp.weeks], balance_target(inp, to_place))
        stats["balance_cost"] = balance
        objective += balance
    return PlanOutput(assignments, sorted(unplaced), objective, None, None, time.perf_counter() - t0, stats, costs)


def department_cap(fraction: float, headcount: int) -> int:
    """At most ``fraction`` of a department away at once, never below one person:
    ``max(1, floor(fraction x active headcount))``, so a department of 1-3 people still rotates, one at a time."""
    return max(1, math.floor(fraction * headcount + 1e-9))
