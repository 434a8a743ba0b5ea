"""Mentor matching for the whole horizon at once (pure: no database).

Input: rotators (who rotates in which weeks) and mentors (support staff with weekly and annual capacity).
Output: one mentor per rotator, or a reason plus the smallest relaxation that would help.

Hard rules (never broken):

* never a mentor from the rotator's own department;
* at least one shared language;
* time zones at most ``max_timezone_gap_hours`` apart (offsets at the rotation's start);
* never a mentor the rotator had before (``previous_mentors``);
* the mentor is not unavailable (absence) in any week of the rotation;
* in every week of the rotation the mentor has at most ``capacity`` rotators (seats already taken by
  kept pairings are given as ``busy_weeks``);
* at most ``annual_cap`` new rotators per mentor over the horizon.

Soft terms (costs, all >= 0, weights from ``policy.mentoring``), per pairing:

* ``weight_shared_skill`` per skill of the rotator the mentor does NOT share (equivalent to a bonus
  per shared skill, but keeps every cost non-negative so that a relative gap is meaningful);
* ``weight_timezone_hour`` per hour of time-zone difference;
* ``weight_feedback`` * (5 - the mentor's average pairing feedback; 3 when unknown);
* ``weight_first_time_mentor_new_hire`` when a new hire goes to a mentor who has never mentored anyone
  (our reading of "first-time mentors get a new hire only after they have mentored someone": a cost,
  so a first-time mentor still takes a new hire when no one else can);
* even load: the k-th rotator of a mentor (counting ``load_so_far``) costs ``weight_load_balance * (k-1)``
  (convex, so the optimiser spreads rotators across mentors);
* a rotator left unmatched costs ``unmatched_penalty`` (far above any pairing cost, so the number of
  matched rotators is maximised first).

Methods (:func:`solve` picks one by size). Mid-size instances (:mod:`.column_generation`): one
vectorised pass over all rotator x mentor pairs checks the hard rules and keeps each rotator's ``pool_size`` cheapest eligible mentors (plus the cost threshold below which no
eligible mentor lies outside the pool). The LP relaxation of the exact model (assignment rows, a load
row per mentor with convex load-cost increments that also carry the annual cap, and weekly-concurrency
rows only where they can bind; ``lazy_rows`` adds those only when the LP violates them) starts from the
``initial_candidates`` cheapest mentors per rotator and is solved by HiGHS dual simplex
(``scipy.optimize.linprog``) with column generation: pool columns with a negative reduced cost enter;
when the pool is (nearly) priced out, every eligible pair is priced again. The duals give a Lagrangian
lower bound valid for the *whole* problem (every eligible pair, inside or outside the pools). The
rounds stop when the LP value is within a quarter of ``gap_target`` of the bound (or at ``max_rounds``
/ half the ``time_limit``). Rotators the LP assigns integrally are fixed; the rest are solved exactly by
a HiGHS MIP (``scipy.optimize.milp``) on the remaining capacity. Small instances (rotators x mentors up
to ``exact_pairs``) skip all this: one exact MIP over every eligible pair. The reported gap is
``(objective - bound) / objective``.

Large instances (rotators x mentors above ``lp_pairs``, up to ``flow_pairs``; :mod:`.cohorts`): rotators
with the same weeks (a cohort) compete for the same weekly seats, so pairing one cohort with everyone
else fixed is a transportation problem, solved exactly by a min-cost flow (OR-Tools, imported lazily:
never import ``highspy`` in the same process) on each rotator's cheapest eligible mentors (ties spread
pseudo-randomly), the cohorts in order of their start (``cohort_passes`` passes at most, each cohort
against all the others, while a pass gains and time is left; up to ``flow_bound_rotators``, once more
after the bounds, each pair charged half the every-week bound's weekly prices over its weeks, so that
early cohorts leave the seats later ones need). Then :mod:`.improve` frees two overlapping
cohorts at a time (a *block*: their weekly rows nest, so the block is still one exact min-cost flow, and
rotators of one cohort can take seats the other leaves), ``block_passes`` passes over the blocks, each
kept only when the objective drops; while someone is then unmatched, blocks of their cohort with every
cohort overlapping it and the ejection chains, while a pass matches someone more. Every pair is scanned by groups of rotators with the same weeks and
time zone against the mentors those leave (:mod:`.scan`; 100k employees: 508 M pairs in about 4 s). The
bound keeps the weekly rows of every L-th week (L the shortest rotation; each rotator is charged at the
first kept week it covers), which makes the relaxation a network flow; its potentials are Lagrange
multipliers for the whole problem, every eligible pair is priced against them in blocks (pairs of
negative reduced cost join the flow) and the Lagrangian value over every eligible pair is a bound; a
second one keeps every weekly row and relaxes the assignment rows with the flow's rotator potentials
instead (:mod:`.weekly_bound`: one min-cost flow over every mentor's week line), and the larger is
reported. Above ``flow_bound_rotators`` (40,000; 100k employees) each kept-week flow takes ~10 s, so they
run beside the pairing (:class:`.cohorts.BoundBeside`: the first in a second process while the block
flows run, each scan split between the two processes), and the load bound (:func:`.cohorts.load_bound`:
one multiplier for every mentor's load rows, exact from the scan, then supergradient steps over the
candidates) is kept too. The full-year flow without weekly rows and a weekly repair (:mod:`.flow`, the method before
the cohorts) is kept as ``method="flow"``. Above ``flow_pairs``: the week-by-week greedy, with the bound
where every multiplier is zero.

The package, by what each module does: :mod:`.problem` (the input and output records), :mod:`.model`
(the instance as arrays: hard rules, costs, week grid), :mod:`.lp` (the LP / MIP over candidate edges),
:mod:`.bound` (Lagrangian bounds), :mod:`.weekly_bound` (the bound with every weekly row), :mod:`.scan`
(every pair by groups, for large instances), :mod:`.column_generation`, :mod:`.cohorts` and :mod:`.flow`
(the methods), :mod:`.improve` (the block flows after the cohort passes),
:mod:`.greedy` (baseline and safety net), :mod:`.explain` (why someone is unmatched),
:mod:`.solution` (assignment -> :class:`Solution`) and :mod:`.check` (an independent checker of any
assignment: hard-rule violations and objective, written from the definitions above, not from the
solver's arrays).
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from functools import partial

import numpy as np

from frontline.mentors.solver.check import objective, violations, weekly_cap_violations
from frontline.mentors.solver.cohorts import CohortSettings, solve_by_cohorts
from frontline.mentors.solver.column_generation import solve_by_lp
from frontline.mentors.solver.explain import explain_unmatched
from frontline.mentors.solver.flow import FlowSettings, solve_by_flow
from frontline.mentors.solver.greedy import greedy_weekly, rescue_unmatched, solve_greedy
from frontline.mentors.solver.improve import ImproveSettings, improve_by_blocks
from frontline.mentors.solver.improve import make_room as _make_room
from frontline.mentors.solver.model import Instance
from frontline.mentors.solver.problem import Mentor, Rotator, Solution, Unmatched, Weights
from frontline.mentors.solver.solution import finish

METHODS = ("auto", "mip", "lp", "cohorts", "flow", "greedy")


def solve(
    rotators: Sequence[Rotator],
    mentors: Sequence[Mentor],
    weights: Weights = Weights(),
    *,
    initial_candidates: int = 8,
    pool_size: int = 40,
    columns_per_round: int = 3,
    gap_target: float = 0.001,
    max_rounds: int = 30,
    time_limit: float = 60.0,
    exact_pairs: int = 20_000,
    lp_pairs: int = 1_000_000,
    flow_pairs: int = 2_000_000_000,
    cohort_candidates: int = 40,
    cohort_passes: int = 1,
    cohort_bound_rounds: int = 2,
    block_passes: int | None = None,
    block_reach: int = 1,
    block_candidates: int = 20,
    lazy_rows: bool = False,
    method: str = "auto",
    flow_scale: int = 100,
    flow_rounds: int = 8,
    flow_pool: int = 10,
    flow_random_arcs: int = 6,
    flow_band: float = 2.0,
) -> Solution:
    """Optimal mentor matching over the whole horizon (see the module docstring).

    ``method``: ``"auto"`` (rotators x mentors up to ``exact_pairs``: the exact MIP; up to
    ``lp_pairs``: LP column generation; up to ``flow_pairs``: cohort flows (``cohort_passes``), then the
    block flows of :mod:`.improve` (``block_passes``, ``block_reach``, ``block_candidates``; 0 passes: none;
    default 2 up to 40,000 rotators, 1 above)
    with the kept-week bound, :mod:`.cohorts`; above: the week-by-week greedy with the simplest bound), ``"mip"``, ``"lp"``,
    ``"cohorts"``, ``"flow"`` (the full-year flow with a weekly repair, the method before the cohorts)
    or ``"greedy"``. The LP and flow methods return the cheaper of their solution and the greedy's, with
    the unmatched rescued where an ejection chain allows (:func:`.greedy.rescue_unmatched`).

    Long because every method's settings pass through this one signature (the service and the benchmark
    call only this function)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (auto, mip, lp, cohorts, flow or greedy)")
    t0 = time.perf_counter()
    c0 = time.process_time()
    inst = Instance(rotators, mentors, weights)
    stats: dict = {"rotators": inst.n, "mentors": inst.m}
    if inst.n == 0:
        return Solution({}, {}, [], 0.0, 0.0, 0.0, time.perf_counter() - t0, "empty", stats)
    pairs = inst.n * inst.m
    if method == "greedy" or (method == "auto" and pairs > flow_pairs):
        return _greedy_with_bound(inst, t0, c0, stats)
    if method == "cohorts" or (method == "auto" and pairs > max(exact_pairs, lp_pairs)):
        cohort_cfg = CohortSettings(
            candidates=cohort_candidates,
            passes=cohort_passes,
            bound_rounds=cohort_bound_rounds,
            gap_target=gap_target,
            time_limit=time_limit,
        )
        improve = None
        if block_passes is None:  # two passes where the bounds' flows run (10k employees), one above (100k)
            block_passes = 2 if inst.n <= cohort_cfg.flow_bound_rotators else 1
        if block_passes > 0:
            blocks = ImproveSettings(candidates=block_candidates, passes=block_passes, reach=block_reach)
            improve = partial(improve_by_blocks, cfg=blocks)
        return solve_by_cohorts(inst, t0, c0, stats, cohort_cfg, improve)
    if method == "flow":
        cfg = FlowSettings(
            scale=flow_scale,
            rounds=flow_rounds,
            pool=flow_pool,
            random_arcs=flow_random_arcs,
            band=flow_band,
            gap_target=gap_target,
            time_limit=time_limit,
        )
        return _never_worse_than_greedy(inst, solve_by_flow(inst, t0, c0, stats, cfg), t0)
    solution = solve_by_lp(
        inst,
        t0,
        c0,
        stats,
        exact=method == "mip" or (method == "auto" and pairs <= exact_pairs),
        initial_candidates=initial_candidates,
        pool_size=pool_size,
        columns_per_round=columns_per_round,
        gap_target=gap_target,
        max_rounds=max_rounds,
        time_limit=time_limit,
        lazy_rows=lazy_rows,
    )
    return solution if solution.method == "mip-exact" else _never_worse_than_greedy(inst, solution, t0)


def _greedy_with_bound(inst: Instance, t0: float, c0: float, stats: dict) -> Solution:
    """Above ``flow_pairs`` rotator x mentor pairs (2 G; 100k employees have 508 M pairs, 243 M eligible,
    and take the cohorts): the week-by-week greedy, its unmatched rescued,
    and the bound with every multiplier at zero (each rotator's cheapest eligible mentor, or the
    penalty), from one scan in blocks that keeps nothing but that minimum."""
    scan = inst.pools(np.arange(inst.n), 1)
    P = inst.w.unmatched_penalty
    bound = float(np.minimum(P, scan.best).sum())
    stats["t_scan"] = round(time.perf_counter() - t0, 3)
    assign = greedy_weekly(inst)
    stats["rescued"] = rescue_unmatched(inst, assign)
    stats["t_total"] = round(time.perf_counter() - t0, 3)
    stats["cpu_total"] = round(time.process_time() - c0, 3)
    return finish(inst, assign, bound, "greedy+rescue", t0, stats)


def _never_worse_than_greedy(inst: Instance, solution: Solution, t0: float) -> Solution:
    """A heuristic method's solution or the week-by-week greedy's (the baseline), whichever is cheaper
    after rescuing their unmatched by ejection chains (:func:`.greedy.rescue_unmatched`): on instances
    whose weekly seats are tight the flow's repair or a time-limited MIP can end above the greedy. Same
    bound."""
    t1 = time.perf_counter()
    own = np.full(inst.n, -1, dtype=np.int64)
    for rk, mk in solution.assignments.items():
        own[inst.index_r[rk]] = inst.index_m[mk]
    greedy = greedy_weekly(inst)
    stats = solution.stats
    stats["greedy_objective"] = round(inst.total_cost(greedy)[0], 3)
    rescued = [rescue_unmatched(inst, own), rescue_unmatched(inst, greedy)]
    totals = [inst.total_cost(own)[0], inst.total_cost(greedy)[0]]
    pick = 0 if totals[0] <= totals[1] + 1e-9 else 1
    assign = (own, greedy)[pick]
    stats["rescued"] = rescued[pick]
    stats["t_greedy"] = round(time.perf_counter() - t1, 3)
    if pick == 0 and rescued[0] == 0:
        return solution
    if len(inst.overfull(assign, inst.rescap)):  # pragma: no cover - must never ship
        raise RuntimeError("rescuing the unmatched overfilled a mentor")
    method = solution.method + (">greedy" if pick else "") + ("+rescue" if rescued[pick] else "")
    return finish(inst, assign, solution.bound, method, t0, stats)


def make_room(
    rotators: Sequence[Rotator],
    mentors: Sequence[Mentor],
    weights: Weights,
    current: Mapping[Hashable, Hashable],
    move: Mapping[Hashable, float],
) -> tuple[dict[Hashable, Hashable], dict[Hashable, float], list[Unmatched], dict]:
    """Seat rotators without a mentor by moving others where that is the only way
    (:func:`.improve.make_room`). ``current``: each paired rotator's mentor (a pairing within every rule and
    seat; the mentors' seats and loads must not count them already); ``move``: what moving a rotator costs
    (the people already told, who also keep a mentor: above any difference of pairing costs, below the
    unmatched penalty; 0 for those not told yet, who may also lose theirs when that seats more). Returns
    each rotator's mentor after (the unmatched left out), each pairing's cost, the rotators without a
    mentor after, each with why (as :func:`solve` explains them), and the stats."""
    inst = Instance(rotators, mentors, weights)
    index = {m.key: j for j, m in enumerate(mentors)}
    assign = np.array([index[current[r.key]] if r.key in current else -1 for r in rotators], dtype=np.int64)
    stats: dict = {}
    moves = np.array([float(move.get(r.key, 0.0)) for r in rotators])
    assign = _make_room(inst, assign, moves, ImproveSettings(), stats)
    matched = np.nonzero(assign >= 0)[0]
    costs = inst.pair_costs(matched, assign[matched]) if len(matched) else np.zeros(0)
    keys = [rotators[int(i)].key for i in matched]
    return (
        {k: mentors[int(assign[i])].key for k, i in zip(keys, matched, strict=True)},
        {k: float(c) for k, c in zip(keys, costs, strict=True)},
        explain_unmatched(inst, assign, np.nonzero(assign < 0)[0]),
        stats,
    )


__all__ = [
    "Mentor",
    "Rotator",
    "Solution",
    "Unmatched",
    "Weights",
    "make_room",
    "objective",
    "solve",
    "solve_greedy",
    "violations",
    "weekly_cap_violations",
]
