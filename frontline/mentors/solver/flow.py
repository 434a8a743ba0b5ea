"""Large instances: a full-year min-cost flow on candidate pairs, priced against every eligible pair,
then a weekly repair.

Phases (:func:`solve_by_flow`):

1. :func:`eligible_pairs`: every eligible pair, rotator by rotator (one vectorised scan).
2. :func:`initial_candidates`: each rotator's ``pool`` cheapest eligible pairs within ``band`` of its
   cheapest (ties broken pseudo-randomly, not by mentor index) plus ``random_arcs`` pseudo-random
   eligible pairs (the popular mentors fill up: without them the first flow would be poor or leave
   people unmatched).
3. :func:`flow_rounds`: a transportation min-cost flow (OR-Tools ``SimpleMinCostFlow``, imported lazily:
   never import ``highspy`` in the same process) with the annual caps and the convex load cost (one unit
   arc per annual seat) but WITHOUT the weekly concurrency rows, so its optimum is a relaxation. Every
   round the flow's potentials (shortest distances to the sink in the residual graph) price EVERY
   eligible pair; for each rotator with a negative reduced cost, its pairs within ``band`` of its lowest
   reduced cost join (at most ``pool``). The Lagrangian value of those potentials over every eligible
   pair, in the original float costs, is the lower bound (valid for the whole problem: it relaxes the
   weekly rows and prices the rest exactly; the integer scaling of the costs only affects which
   potentials are tried). Rounds stop when the flow value is within half the ``gap_target`` of the
   bound, nothing joins, after ``rounds`` or half the ``time_limit``.
4. :func:`repair_weeks`: every rotator in an overfilled (mentor, week) cell is freed and re-assigned by
   an exact HiGHS MIP on the capacity left (weekly rows included); anyone still left takes the cheapest
   mentor with a free seat. The result has no weekly violation by construction (checked). When more
   than ``repair_rotators`` are freed (weekly seats far tighter than the flow assumes, as in the demo
   companies at 10k employees) the MIP would not finish in time: they are re-assigned greedily instead
   (and :func:`frontline.mentors.solver.solve` keeps the week-by-week greedy's solution when cheaper).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from frontline.mentors.solver.bound import load_term
from frontline.mentors.solver.greedy import fill_the_rest, greedy_fill
from frontline.mentors.solver.lp import AssignmentModel
from frontline.mentors.solver.model import Edges, Instance
from frontline.mentors.solver.problem import Solution
from frontline.mentors.solver.solution import finish


@dataclass(frozen=True)
class FlowSettings:
    scale: int  # costs are multiplied by this and rounded to integers for the flow
    rounds: int
    pool: int
    random_arcs: int
    band: float
    gap_target: float
    time_limit: float
    repair_pairs: int = 100_000  # the repair sees every eligible pair of the freed rotators up to this many
    repair_rotators: int = 1_500  # beyond this many freed rotators the repair is greedy (the MIP would not finish)


@dataclass
class EligiblePairs:
    """Every eligible pair, rotator by rotator; only the rotators with at least one (``rots``)."""

    per_rotator: np.ndarray  # eligible mentors of every rotator (all n)
    rots: np.ndarray  # the rotators with any
    ment: np.ndarray  # mentor of every pair (int32)
    cost: np.ndarray  # cost of every pair
    count: np.ndarray  # pairs of each rotator in ``rots``
    starts: np.ndarray  # first pair of each rotator in ``rots``
    pos: np.ndarray  # position in ``rots`` of every pair's rotator


def eligible_pairs(inst: Instance) -> EligiblePairs:
    per_rotator, ment, cost = inst.eligible_all()
    rots = np.nonzero(per_rotator > 0)[0]
    count = per_rotator[rots]
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    pos = np.zeros(len(ment), dtype=np.int32)
    pos[starts[1:]] = 1
    np.cumsum(pos, out=pos)
    return EligiblePairs(per_rotator, rots, ment, cost, count, starts, pos)


def _select(pairs: EligiblePairs, rc: np.ndarray, only_negative: bool, cfg: FlowSettings) -> Edges:
    """For each rotator (with a negative reduced cost, if ``only_negative``) its pairs within ``band``
    of its lowest reduced cost ``rc``, at most ``pool``, lowest first. Without sorting: reduced costs
    fall in 64 bins of the band; a rotator keeps its bins below the one where ``pool`` is reached, and
    a pseudo-random share of that bin (ties never go by mentor order)."""
    band, pool, R = cfg.band, cfg.pool, len(pairs.rots)
    rmin = np.minimum.reduceat(rc, pairs.starts)
    lim = rmin + band
    if only_negative:
        lim[rmin >= -1.0 / cfg.scale] = -np.inf
    idx = np.flatnonzero(rc < lim[pairs.pos])
    p = pairs.pos[idx]
    nb = 64
    b = np.clip(((rc[idx] - rmin[p]) * (nb / band)).astype(np.int64), 0, nb - 1)
    cell = np.bincount(p * nb + b, minlength=R * nb).reshape(R, nb)
    cum = np.cumsum(cell, axis=1)
    cut = np.where(cum[:, -1] >= pool, np.argmax(cum >= pool, axis=1), nb)
    need = pool - np.where(cut > 0, cum[np.arange(R), np.maximum(cut - 1, 0)], 0)
    h = (idx * 7919 + (idx >> 7) * 104729) % 100003
    cb = cut[p]
    keep = (b < cb) | ((b == cb) & (h % np.maximum(cell[p, b], 1) < need[p]))
    idx, p = idx[keep], p[keep]
    return Edges(pairs.rots[p], pairs.ment[idx].astype(np.int64), pairs.cost[idx])


def initial_candidates(inst: Instance, pairs: EligiblePairs, cfg: FlowSettings) -> Edges:
    """Each rotator's cheapest pairs (:func:`_select`) plus ``random_arcs`` pseudo-random eligible ones."""
    rowmin = np.minimum.reduceat(pairs.cost, pairs.starts)
    edges = _select(pairs, pairs.cost - rowmin[pairs.pos], False, cfg)
    if cfg.random_arcs <= 0:
        return edges
    rots, cnt, starts = pairs.rots, pairs.count, pairs.starts
    idx = np.concatenate([starts + (rots * 7919 + j * 104729 + (rots * j) % 997) % cnt for j in range(cfg.random_arcs)])
    rows = np.tile(rots, cfg.random_arcs)
    joined = edges.join(Edges(rows, pairs.ment[idx].astype(np.int64), pairs.cost[idx]))
    first = np.unique(joined.keys(inst.m), return_index=True)[1]
    return joined.take(first)


def _distances_to_sink(src: np.ndarray, dst: np.ndarray, cst: np.ndarray, T: int) -> np.ndarray:
    """Shortest distances to node ``T`` over arcs (src -> dst, cost): Bellman-Ford in vectorised rounds
    (stops when nothing changes; integer-valued costs of an optimal flow have no negative cycle)."""
    dist = np.full(T + 1, np.inf)
    dist[T] = 0.0
    order = np.argsort(src, kind="stable")
    src, dst, cst = src[order], dst[order], cst[order]
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]]) if len(src) else np.zeros(0, dtype=np.int64)
    heads_of = src[starts]
    for _ in range(T + 1):
        cand = np.minimum.reduceat(cst + dist[dst], starts) if len(src) else np.zeros(0)
        better = cand < dist[heads_of]
        if not better.any():
            break
        dist[heads_of[better]] = cand[better]
    return dist


def flow_assign(
    inst: Instance, rots: np.ndarray, edges: Edges, annual: np.ndarray, scale: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-cost flow (OR-Tools) over the candidate edges with the annual caps, WITHOUT the weekly
    concurrency rows: rotator -> mentor (cost), rotator -> sink (the unmatched penalty), mentor -> sink
    one unit arc per remaining annual seat (the convex load cost). Costs are scaled to integers.
    Returns (assign over all rotators, mentor potentials lam_m >= 0 and rotator potentials u, in
    original units): the optimal dual of this flow, found as shortest distances to the sink in the
    residual graph."""
    from ortools.graph.python import min_cost_flow  # lazy: never imported together with highspy

    er, em, ec = edges
    R, m = len(rots), inst.m
    T = R + m
    pos = np.full(inst.n, -1, dtype=np.int64)
    pos[rots] = np.arange(R)
    ce = np.rint(ec * scale).astype(np.int64)
    cp = int(round(inst.w.unmatched_penalty * scale))
    lm = np.repeat(np.arange(m), annual)
    lk = np.arange(len(lm)) - np.repeat(np.cumsum(annual) - annual, annual)
    cq = np.rint(scale * inst.w.load_balance * (inst.load0[lm] + lk)).astype(np.int64)
    tails = np.concatenate([pos[er], np.arange(R), R + lm]).astype(np.int32)
    heads = np.concatenate([R + em, np.full(R, T), np.full(len(lm), T)]).astype(np.int32)
    costs = np.concatenate([ce, np.full(R, cp, dtype=np.int64), cq])
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, np.ones(len(tails), dtype=np.int64), costs)
    supplies = np.zeros(T + 1, dtype=np.int64)
    supplies[:R] = 1
    supplies[T] = -R
    flow.set_nodes_supplies(np.arange(T + 1, dtype=np.int32), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:  # pragma: no cover - every rotator can always go unmatched
        raise RuntimeError(f"min-cost flow failed with status {status}")
    used = flow.flows(np.arange(len(tails), dtype=np.int32))[: len(er)] > 0
    assign = np.full(inst.n, -1, dtype=np.int64)
    assign[er[used]] = em[used]
    # residual graph, as arcs (from, to, cost) towards the sink: unused edges forward, used ones back
    load = np.bincount(em[used], minlength=m)
    nxt = np.nonzero(load < annual)[0]
    nxt_cost = np.rint(scale * inst.w.load_balance * (inst.load0[nxt] + load[nxt])).astype(np.int64)
    free_sink = np.ones(R, dtype=bool)
    free_sink[np.nonzero(assign[rots] < 0)[0]] = False  # unmatched rotators: their sink arc is used
    n_free = int(free_sink.sum())
    src = np.concatenate([pos[er[~used]], R + em[used], np.nonzero(free_sink)[0], R + nxt])
    dst = np.concatenate([R + em[~used], pos[er[used]], np.full(n_free, T), np.full(len(nxt), T)])
    cst = np.concatenate([ce[~used], -ce[used], np.full(n_free, cp), nxt_cost]).astype(np.float64)
    dist = _distances_to_sink(src, dst, cst, T)
    lam_m = np.maximum(0.0, np.where(np.isfinite(dist[R:T]), dist[R:T], 0.0)) / scale
    u = np.zeros(inst.n)
    u[rots] = np.where(np.isfinite(dist[:R]), dist[:R], cp) / scale
    return assign, lam_m, u


def potential_bound(inst: Instance, pairs: EligiblePairs, lam_m: np.ndarray) -> tuple[float, np.ndarray]:
    """The Lagrangian bound for mentor potentials ``lam_m`` >= 0 (any, not only the flow's): each rotator's
    cheapest priced eligible pair (capped at the penalty), plus the load term. Also returns the priced
    cost of every eligible pair."""
    P = inst.w.unmatched_penalty
    priced = pairs.cost + lam_m[pairs.ment]
    best = np.minimum.reduceat(priced, pairs.starts)
    value = float(np.minimum(P, best).sum()) + P * (inst.n - len(pairs.rots)) + load_term(inst, inst.annual, lam_m)
    return value, priced


def flow_rounds(
    inst: Instance, pairs: EligiblePairs, edges: Edges, cfg: FlowSettings, t0: float, stats: dict[str, Any]
) -> tuple[np.ndarray, float, Edges]:
    """Flow, price every eligible pair with its potentials, add the promising pairs, again (see the
    module docstring). Returns the last flow's assignment, the best bound and the final edges."""
    bound = -np.inf
    t_flow = t_price = 0.0
    it = 0
    while True:
        it += 1
        t1 = time.perf_counter()
        assign, lam_m, u = flow_assign(inst, pairs.rots, edges, inst.annual, cfg.scale)
        t_flow += time.perf_counter() - t1
        t1 = time.perf_counter()
        value_of_potentials, priced = potential_bound(inst, pairs, lam_m)
        bound = max(bound, value_of_potentials)
        value = inst.total_cost(assign)[0]
        done = value - bound <= cfg.gap_target * max(value, 1e-9) / 2
        new = Edges.empty()
        if not done and it < cfg.rounds and time.perf_counter() - t0 < cfg.time_limit / 2:
            priced -= u[pairs.rots][pairs.pos]  # reduced costs
            new = _select(pairs, priced, True, cfg)
            new = new.take(~np.isin(new.keys(inst.m), edges.keys(inst.m)))
        del priced
        t_price += time.perf_counter() - t1
        stats.setdefault("flow_log", []).append((len(edges.rot), round(value, 3), round(bound, 3), len(new.rot)))
        if not len(new.rot):
            break
        edges = edges.join(new)
    stats.update(
        flow_arcs=len(edges.rot), flow_value=round(value, 4), t_flow=round(t_flow, 3), t_price=round(t_price, 3)
    )
    return assign, bound, edges


def repair_weeks(
    inst: Instance,
    pairs: EligiblePairs,
    assign: np.ndarray,
    edges: Edges,
    cfg: FlowSettings,
    t0: float,
    stats: dict[str, Any],
) -> str:
    """Free every rotator in an overfilled (mentor, week) cell and re-assign them by an exact MIP on the
    capacity left; anyone it leaves out takes the cheapest eligible mentor with a free seat (mutates
    ``assign``). Returns the method name."""
    over_cells = inst.overfull(assign, inst.rescap)
    stats["overfull_cells"] = int(len(over_cells))
    if not len(over_cells):
        return "flow"
    hot = np.zeros(inst.m * inst.H, dtype=bool)
    hot[over_cells] = True
    matched = np.nonzero(assign >= 0)[0]
    edge_of, cell = inst.week_cells(assign[matched], inst.s[matched], inst.e[matched])
    free = np.unique(matched[edge_of[hot[cell]]])
    stats["repaired_rotators"] = int(len(free))
    assign[free] = -1
    used_rescap, used_annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    if len(free) > cfg.repair_rotators:  # weekly seats far too tight for the flow: the exact repair cannot finish
        greedy_fill(inst, assign, free, used_rescap, used_annual)
        fill_the_rest(inst, assign, free)
        return "flow+greedy"
    candidates = edges.take(np.isin(edges.rot, free))
    if pairs.per_rotator[free].sum() <= cfg.repair_pairs:  # few enough: every eligible pair of them
        fpos = np.searchsorted(pairs.rots, free)
        ix = np.concatenate([np.arange(pairs.starts[q], pairs.starts[q] + pairs.count[q]) for q in fpos])
        candidates = Edges(pairs.rots[pairs.pos[ix]], pairs.ment[ix].astype(np.int64), pairs.cost[ix])
    sub = AssignmentModel(inst, free, candidates, used_rescap, used_annual, extra)
    xs = sub.solve_mip(max(1.0, cfg.time_limit - (time.perf_counter() - t0)))
    method = "flow+repair"
    if xs is not None:
        picked_r, picked_m = sub.picked(xs)
        assign[picked_r] = picked_m
    else:  # pragma: no cover - the repair MIP found nothing in time
        method = "flow+greedy"
        greedy_fill(inst, assign, free, used_rescap, used_annual)
    fill_the_rest(inst, assign, free)
    return method


def solve_by_flow(inst: Instance, t0: float, c0: float, stats: dict[str, Any], cfg: FlowSettings) -> Solution:
    """Min-cost flow over the year with the annual caps (a relaxation: no weekly concurrency rows) on
    candidate pairs, priced against EVERY eligible pair; then a small exact MIP repairs the weeks the
    flow overfills (see the module docstring)."""
    if cfg.pool < 1 or cfg.band <= 0 or cfg.scale < 1:
        raise ValueError("flow_pool and flow_scale must be >= 1 and flow_band > 0")
    pairs = eligible_pairs(inst)
    stats["eligible_pairs"] = int(pairs.per_rotator.sum())
    stats["t_scan"] = round(time.perf_counter() - t0, 3)
    if len(pairs.rots) == 0:  # nobody has an eligible mentor
        nobody = np.full(inst.n, -1, dtype=np.int64)
        return finish(inst, nobody, inst.w.unmatched_penalty * inst.n, "no-eligible-pairs", t0, stats)
    edges = initial_candidates(inst, pairs, cfg)
    stats["t_candidates"] = round(time.perf_counter() - t0, 3)
    assign, bound, edges = flow_rounds(inst, pairs, edges, cfg, t0, stats)
    t1 = time.perf_counter()
    method = repair_weeks(inst, pairs, assign, edges, cfg, t0, stats)
    if len(inst.overfull(assign, inst.rescap)):  # pragma: no cover - a repair that fails must never ship
        raise RuntimeError("weekly repair left a mentor over capacity")
    stats["t_repair"] = round(time.perf_counter() - t1, 3)
    stats["t_total"] = round(time.perf_counter() - t0, 3)
    stats["cpu_total"] = round(time.process_time() - c0, 3)
    return finish(inst, assign, bound, method, t0, stats)
