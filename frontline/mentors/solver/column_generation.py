"""Small and mid-size instances: the exact MIP, or LP column generation and integer rounding.

Phases (:func:`solve_by_lp`): :func:`scan` every pair once (each rotator's ``pool_size`` cheapest
eligible mentors and the cost threshold below which none lies outside the pool); small instances go
to :func:`solve_exact` (one MIP over every eligible pair); the others to :func:`column_generation`
(LP rounds over a growing edge set, priced against the pools and, when those are priced out, against
every eligible pair; the duals give the Lagrangian bound), then :func:`round_to_integers` (fix what
the LP assigns integrally, solve the rest exactly), the greedy safety net, and, when the rounds were
cut short, a few supergradient steps on the bound (:func:`frontline.mentors.solver.bound.improve_bound`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from frontline.mentors.solver.bound import dual_value, improve_bound, priced_best
from frontline.mentors.solver.greedy import fill_the_rest, greedy_fill
from frontline.mentors.solver.lp import AssignmentModel, LpSolution
from frontline.mentors.solver.model import EPS, Edges, Instance
from frontline.mentors.solver.problem import Solution
from frontline.mentors.solver.solution import finish


class Scan(NamedTuple):
    pool: Edges  # each rotator's cheapest eligible pairs, by rotator then cost
    threshold: np.ndarray  # per rotator: no eligible pair outside its pool costs less
    n_eligible: np.ndarray  # per rotator: eligible mentors
    bound0: float  # the Lagrangian bound with all multipliers at zero
    start: Edges  # the first LP's edges: the ``initial_candidates`` cheapest of each pool


def scan(inst: Instance, pool_size: int, initial_candidates: int) -> Scan:
    """One scan of every pair: the pools (priced cheaply in every round), their thresholds, and the
    bound where everyone gets their cheapest eligible mentor."""
    found = inst.pools(np.arange(inst.n), pool_size)
    P = inst.w.unmatched_penalty
    best, count = found.best, found.n_eligible
    bound0 = float(np.minimum(P, best[count > 0]).sum() + P * int((count == 0).sum()))
    pool = found.edges.take(np.lexsort((found.edges.cost, found.edges.rot)))
    rank = np.arange(len(pool.rot)) - np.searchsorted(pool.rot, pool.rot)
    return Scan(pool, found.threshold.copy(), count, bound0, pool.take(rank < initial_candidates))


def solve_exact(
    inst: Instance,
    rots: np.ndarray,
    bound0: float,
    time_limit: float,
    t0: float,
    stats: dict[str, Any],
) -> Solution | None:
    """One exact MIP over every eligible pair (proven optimum, or HiGHS's dual bound); None when
    HiGHS found no solution in time."""
    edges = inst.pools(rots, inst.m).edges
    full = AssignmentModel(inst, rots, edges, inst.rescap.copy(), inst.annual.copy(), np.zeros(inst.m))
    xs = full.solve_mip(time_limit)
    if xs is None:
        return None
    assign = np.full(inst.n, -1, dtype=np.int64)
    picked_r, picked_m = full.picked(xs)
    assign[picked_r] = picked_m
    stats["model_edges"] = full.E
    stats["t_total"] = round(time.perf_counter() - t0, 3)
    total = inst.total_cost(assign)[0]
    dual = full.mip_dual_bound if full.mip_dual_bound is not None else -np.inf
    bound = total if full.mip_optimal else max(bound0, float(dual))
    return finish(inst, assign, bound, "mip-exact" if full.mip_optimal else "mip", t0, stats)


@dataclass
class LpRound:
    """One LP over the current edges, with its duals spread over every mentor, week and rotator."""

    model: AssignmentModel
    value: float
    x: np.ndarray
    lam: np.ndarray  # inequality duals >= 0 (mentor load rows, then weekly rows)
    lam_m: np.ndarray  # per mentor
    lw: np.ndarray  # prefix sums of the weekly duals (m, H+1)
    u: np.ndarray  # per rotator
    cpu_seconds: float

    @classmethod
    def from_lp(
        cls, inst: Instance, rots: np.ndarray, model: AssignmentModel, lp: LpSolution, cpu_seconds: float
    ) -> LpRound:
        lam_m = np.zeros(inst.m)
        lam_m[model.ments] = lp.lam[: model.Mn]
        lw = np.zeros((inst.m, inst.H + 1))
        np.add.at(lw, (model.wrow_m, model.wrow_w + 1), lp.lam[model.Mn :])
        lw = np.cumsum(lw, axis=1)
        u = np.zeros(inst.n)
        u[rots] = lp.u
        return cls(model, lp.value, lp.x, lp.lam, lam_m, lw, u, cpu_seconds)

    def bound(self, inst: Instance, best: np.ndarray, rots: np.ndarray) -> float:
        """The Lagrangian bound of these duals, valid for the whole problem, given each rotator's cheapest
        priced cost ``best`` over every eligible pair (or a lower estimate of it): plus the load term (per
        mentor, the load increments cheaper than its dual) and the capacity term of the weekly rows."""
        zterm = 0.0
        for j in np.nonzero(self.lam_m > EPS)[0]:
            q = inst.w.load_balance * (inst.load0[j] + np.arange(inst.annual[j]))
            zterm += np.minimum(0.0, q - self.lam_m[j]).sum()
        Mn = self.model.Mn
        capterm = -(self.lam[Mn:] * self.model.b_ub[Mn:]).sum()
        return dual_value(inst, best, rots, zterm, capterm)


def _solve_round(inst: Instance, rots: np.ndarray, edges: Edges, allowed: np.ndarray | None) -> LpRound:
    t_it = time.process_time()
    model = AssignmentModel(inst, rots, edges, inst.rescap, inst.annual, np.zeros(inst.m), allowed)
    lp = model.solve_lp()
    return LpRound.from_lp(inst, rots, model, lp, time.process_time() - t_it)


def _add_violated_rows(inst: Instance, rnd: LpRound, allowed: np.ndarray) -> int:
    """Lazy rows: the weekly rows the LP solution violates join the model; every row of a mentor with
    a violated week (they tend to come in runs). Returns how many were violated."""
    model = rnd.model
    flat_res = np.maximum(inst.rescap.reshape(-1), 0)
    edge_of, cell = inst.week_cells(model.em, inst.s[model.er], inst.e[model.er])
    use = np.bincount(cell, weights=rnd.x[edge_of], minlength=inst.m * inst.H)
    bad = (use > flat_res + EPS) & ~allowed
    rows_added = int(bad.sum())
    if rows_added:
        hot = np.unique(np.nonzero(bad)[0] // inst.H)
        allowed.reshape(inst.m, inst.H)[hot, :] = True
    return rows_added


def _price_pool(inst: Instance, sc: Scan, edges: Edges, rnd: LpRound, per_rotator: int) -> tuple[Edges, np.ndarray]:
    """Pool pairs outside the model with a negative reduced cost (at most ``per_rotator`` per rotator,
    most negative first), and each rotator's cheapest priced cost (for the bound)."""
    pool = sc.pool
    in_model = np.isin(pool.keys(inst.m), edges.keys(inst.m))
    pbar, best = priced_best(inst, pool, sc.threshold, rnd.lam_m, rnd.lw)
    rc = pbar - rnd.u[pool.rot]
    cand = np.nonzero((rc < -EPS) & ~in_model)[0]
    if not len(cand):
        return Edges.empty(), best
    o = cand[np.lexsort((rc[cand], pool.rot[cand]))]
    rank = np.arange(len(o)) - np.searchsorted(pool.rot[o], pool.rot[o])
    return pool.take(o[rank < per_rotator]), best


def _price_every_pair(
    inst: Instance, rots: np.ndarray, rnd: LpRound, per_rotator: int, edges: Edges, new: Edges
) -> tuple[Edges, np.ndarray]:
    """Price every eligible pair (exact pricing and bound): ``new`` plus the pairs of negative reduced
    cost not yet in the model, and each rotator's exact cheapest priced cost."""
    full = inst.pools(rots, per_rotator, lam_m=rnd.lam_m, lw=rnd.lw, u=rnd.u)
    fresh = ~np.isin(full.edges.keys(inst.m), np.concatenate([edges.keys(inst.m), new.keys(inst.m)]))
    return new.join(full.edges.take(fresh)), full.best


def _far_from(value: float, bound: float, gap_target: float) -> bool:
    """The LP value is not yet within a quarter of the gap target of the bound."""
    return (value - bound) > gap_target * max(value, 1e-9) / 4


def column_generation(
    inst: Instance,
    sc: Scan,
    rots: np.ndarray,
    allowed: np.ndarray | None,
    *,
    columns_per_round: int,
    gap_target: float,
    max_rounds: int,
    time_limit: float,
    t0: float,
    stats: dict[str, Any],
) -> tuple[LpRound, float]:
    """LP rounds until the pricing finds nothing, the LP is within a quarter of ``gap_target`` of the
    bound, or after ``max_rounds`` / half the ``time_limit``. Returns the last round and the bound.

    The LP covers ``rots`` (the rotators with an eligible mentor); the bound covers everyone, the others
    at the unmatched penalty. So the LP's value is compared with the bound only with that constant added:
    without it, one rotator nobody can mentor put the LP below the bound, and the rounds stopped long
    before they were priced out (the 1k demo: a printed gap of 0.48 % where the LP over every pair shows
    0.02 %, and 6.7 % for its tight variant's optimal pairing)."""
    bound, edges, iterations = sc.bound0, sc.start, 0
    nobody = inst.w.unmatched_penalty * (inst.n - len(rots))  # in every pairing, the LP's and the bound's
    while True:
        iterations += 1
        t_it = time.process_time()
        rnd = _solve_round(inst, rots, edges, allowed)
        value = rnd.value + nobody
        rows_added = 0 if allowed is None else _add_violated_rows(inst, rnd, allowed)
        new, best = _price_pool(inst, sc, edges, rnd, columns_per_round)
        bound = max(bound, rnd.bound(inst, best, rots))
        nearly_priced_out = rows_added == 0 and len(new.rot) <= 0.005 * len(rots)
        full_scan = nearly_priced_out and _far_from(value, bound, gap_target)
        if full_scan:  # the pool is (nearly) priced out: scan every eligible pair (exact pricing and bound)
            new, best = _price_every_pair(inst, rots, rnd, columns_per_round, edges, new)
            bound = max(bound, rnd.bound(inst, best, rots))
        log = (rnd.model.E, rnd.model.W, rows_added, len(new.rot), full_scan, round(rnd.cpu_seconds, 2))
        stats.setdefault("lp_log", []).append((*log, round(time.process_time() - t_it, 2)))
        if len(new.rot) == 0 and rows_added == 0:
            break
        if rows_added == 0 and not _far_from(value, bound, gap_target):
            break  # (the bound is valid as it stands: pool prices plus the outside-pool thresholds)
        if iterations >= max_rounds or time.perf_counter() - t0 > time_limit / 2:
            if not full_scan:  # stopped early: still report the exact bound for these duals
                best = inst.pools(rots, 1, lam_m=rnd.lam_m, lw=rnd.lw, u=rnd.u).best
                bound = max(bound, rnd.bound(inst, best, rots))
            break
        edges = edges.join(new)
    stats["lp_iterations"] = iterations
    stats["lp_value"] = round(float(value), 4)
    stats["model_edges"] = rnd.model.E
    stats["lp_bound_gap"] = round(float((value - bound) / max(value, 1e-9)), 6)
    stats["weekly_rows"] = rnd.model.W
    stats["t_lp"] = round(time.perf_counter() - t0, 3)
    return rnd, bound


def round_to_integers(
    inst: Instance,
    rnd: LpRound,
    rots: np.ndarray,
    allowed: np.ndarray | None,
    time_limit: float,
    t0: float,
    stats: dict[str, Any],
) -> tuple[np.ndarray, str]:
    """Fix the rotators the LP assigns (or leaves unmatched) integrally; solve the rest exactly by a
    MIP on the capacity left (greedily if it finds nothing in time). Returns the assignment and method."""
    model, x = rnd.model, rnd.x
    fixed = x[: model.E] > 1 - EPS
    if allowed is not None:  # lazy rows: never fix an assignment that overfills a week
        edge_of, cell = inst.week_cells(model.em, inst.s[model.er], inst.e[model.er])
        sel = fixed[edge_of]
        use = np.bincount(cell[sel], minlength=inst.m * inst.H)
        over = use > np.maximum(inst.rescap.reshape(-1), 0)
        if over.any():
            fixed[np.unique(edge_of[sel][over[cell[sel]]])] = False
    assign = np.full(inst.n, -1, dtype=np.int64)
    assign[model.er[fixed]] = model.em[fixed]
    settled = np.zeros(inst.n, dtype=bool)
    settled[model.er[fixed]] = True
    settled[rots[x[model.E : model.E + model.R] > 1 - EPS]] = True  # LP leaves them unmatched integrally
    rest = rots[~settled[rots]]
    stats["fractional_rotators"] = len(rest)
    if not len(rest):
        return assign, "lp-integral"
    used_rescap, used_annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    edges = Edges(model.er, model.em, model.ec).take(np.isin(model.er, rest))
    sub = AssignmentModel(inst, rest, edges, used_rescap, used_annual, extra)
    xs = sub.solve_mip(time_limit - (time.perf_counter() - t0))
    if xs is None:  # pragma: no cover - MIP found nothing in time: greedy on the rest
        greedy_fill(inst, assign, rest, used_rescap, used_annual)
        return assign, "lp+greedy"
    picked_r, picked_m = sub.picked(xs)
    assign[picked_r] = picked_m
    return assign, "lp+mip"


def solve_by_lp(
    inst: Instance,
    t0: float,
    c0: float,
    stats: dict[str, Any],
    *,
    exact: bool,
    initial_candidates: int,
    pool_size: int,
    columns_per_round: int,
    gap_target: float,
    max_rounds: int,
    time_limit: float,
    lazy_rows: bool,
) -> Solution:
    """The exact MIP (``exact``) or LP column generation, phase by phase (see the module docstring)."""
    sc = scan(inst, pool_size, initial_candidates)
    stats["eligible_pairs"] = int(sc.n_eligible.sum())
    stats["t_scan"] = round(time.perf_counter() - t0, 3)
    rots = np.nonzero(sc.n_eligible > 0)[0]
    if len(rots) == 0:  # nobody has an eligible mentor
        stats["t_total"] = round(time.perf_counter() - t0, 3)
        nobody = np.full(inst.n, -1, dtype=np.int64)
        return finish(inst, nobody, inst.w.unmatched_penalty * inst.n, "no-eligible-pairs", t0, stats)
    if exact:
        solution = solve_exact(inst, rots, sc.bound0, time_limit, t0, stats)
        if solution is not None:
            return solution
    allowed = np.zeros(inst.m * inst.H, dtype=bool) if lazy_rows else None
    rnd, bound = column_generation(
        inst,
        sc,
        rots,
        allowed,
        columns_per_round=columns_per_round,
        gap_target=gap_target,
        max_rounds=max_rounds,
        time_limit=time_limit,
        t0=t0,
        stats=stats,
    )
    assign, method = round_to_integers(inst, rnd, rots, allowed, time_limit, t0, stats)
    # safety net (matters only when the rounds were cut short)
    left = fill_the_rest(inst, assign, rots)
    if len(left):
        stats["filled_greedily"] = int((assign[left] >= 0).sum())
    total = inst.total_cost(assign)[0]
    if total - bound > gap_target * total:  # rounds cut short: work on the bound a little more
        model = rnd.model
        lam_w = np.zeros((inst.m, inst.H))
        lam_w[model.wrow_m, model.wrow_w] = rnd.lam[model.Mn :]
        improved = improve_bound(inst, sc.pool, sc.threshold, rots, rnd.lam_m, lam_w, total)
        stats["bound_improved_from"] = round(float(bound), 3)
        bound = max(bound, improved)
    stats["t_total"] = round(time.perf_counter() - t0, 3)
    stats["cpu_total"] = round(time.process_time() - c0, 3)
    return finish(inst, assign, bound, method, t0, stats)
