"""Large instances: cohort flows for the pairing, a kept-week flow for the bound.

Rotators who start and end in the same weeks (a *cohort*; the demo companies have 52 of them, however
many people) compete for exactly the same weekly seats: for one cohort, the weekly rows collapse into one
seat count per mentor (the fewest seats left in any of its weeks), so pairing a cohort with everyone
else fixed is a transportation problem, solved exactly by a min-cost flow (OR-Tools, with the annual caps
and the convex load cost as one unit arc per seat). Phases (:func:`solve_by_cohorts`):

1. :func:`candidates`: one scan of every pair by groups of rotators with the same weeks and time zone
   (:func:`.scan.scan`: nothing but the selection is kept, so 100k employees fit, in about 4 s) keeps each
   rotator's ``candidates`` cheapest eligible mentors, ties spread pseudo-randomly (not by mentor order:
   rotators alike would all keep the same few mentors, and the flows could not spread the load).
2. :func:`cohort_passes`: the cohorts in order of their start, each paired by its flow on the seats the
   others leave; then again, each cohort freed and re-paired against all the others (block coordinate
   descent; the best pass is kept), until a pass gains less than half the ``gap_target`` or another
   pass as long as the last would end after the time share. (:func:`solve` runs one pass, then the block
   flows of :mod:`.improve`, which also re-pair two overlapping cohorts at a time: measured at 10k
   employees, more gain for the time.)
   Someone whose candidates are all full takes the cheapest eligible mentor with a seat (every mentor).
   Weekly seats and annual caps hold by construction (checked). Up to ``flow_bound_rotators`` that first
   pass only seeds the bounds (3 and 4); the pairing is then made again by a *priced* pass (:func:`priced`:
   each pair also charged ``price_share`` of the every-week bound's weekly prices over its weeks, so
   that early cohorts leave the seats later ones need), then the block flows.
3. :func:`kept_week_bound`: the lower bound. Keep the weekly rows of every ``L``-th week only (``L`` the
   shortest rotation, offset where most rotators are away), each rotator charged at the first kept week
   it covers: that relaxation is a network flow (rotator -> (mentor, kept week) node, whose arc carries
   that week's seats -> mentor -> sink over the load arcs), far stronger than dropping every weekly row
   (the demo's seats are tight in the first weeks of the year). Its potentials are Lagrange multipliers
   (mentor load rows ``lam_m``, kept weekly rows ``v``) for the WHOLE problem: every eligible pair is
   priced against them in blocks (:meth:`.model.Instance.pools` with duals), pairs of negative reduced
   cost join the flow, and the Lagrangian value over every eligible pair is a lower bound, whatever the
   candidates (:func:`.bound.dual_value`). Rounds stop when nothing joins or at the time share.
   Above ``flow_bound_rotators`` (100k employees) one such flow takes 10-15 s and three rounds are needed:
   they run beside the pairing (:class:`BoundBeside`: the first flow in a second process during the block
   flows, the scans split between the two processes, the flow's unmatched arc cheaper than the penalty
   unless the pairing leaves many unmatched, seats being short), and :func:`load_bound` (~1 s, no flow) is
   kept too. When another whole round would end after the deadline, the later rounds split the flow per
   kept week with the last whole flow's load multipliers fixed (:func:`split_flow_multipliers`, ~2 s in
   two processes instead of 10-15 s; the scan is then most of a round).
4. :func:`.weekly_bound.every_week_bound`: a second bound from the same flow, with EVERY weekly row: the
   flow's rotator potentials relax the assignment rows instead, which splits the problem per mentor
   into a min-cost flow on the mentor's week line (one flow for all of them). The larger bound is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from frontline.mentors.solver.background import Background
from frontline.mentors.solver.bound import dual_value, lagrangian, load_term, polyak_step
from frontline.mentors.solver.flow import _distances_to_sink
from frontline.mentors.solver.greedy import fill_the_rest, rescue_unmatched, rules_by_block
from frontline.mentors.solver.model import Edges, Instance, Pool
from frontline.mentors.solver.problem import Solution
from frontline.mentors.solver.scan import scan
from frontline.mentors.solver.solution import finish
from frontline.mentors.solver.weekly_bound import every_week_bound


@dataclass(frozen=True)
class CohortSettings:
    candidates: int = 40  # cheapest eligible mentors kept per rotator
    passes: int = 6  # at most this many passes over the cohorts
    bound_rounds: int = 2  # at most this many kept-week flows (each prices every eligible pair)
    columns: int = 3  # pairs per rotator that join the bound's flow per round
    flow_candidates: int = 10  # cheapest candidates per rotator in the bound's first flow
    scale: int = 100  # costs times this, rounded, for the flows
    time_limit: float = 60.0
    gap_target: float = 0.001
    block: int = 1024  # rotators per block of the scans
    flow_bound_rotators: int = 40_000  # above: the kept-week flows beside the pairing (:class:`BoundBeside`)
    load_bound_steps: int = 15  # at most this many multiplier steps of the load bound
    improve_share: float = 0.85  # the block flows (``improve``) end by this share of the time limit
    # above ``flow_bound_rotators``: no kept-week flows before the blocks (the first runs beside them; 100k
    # employees: the blocks stop gaining after ~15 s, and the bound's rounds take what is left)
    improve_share_big: float = 0.7
    price_share: float = 0.5  # the priced pass charges this share of the every-week bound's weekly prices
    # above ``flow_bound_rotators``: the kept-week bound beside the pairing (:class:`BoundBeside`)
    big_bound_rounds: int = 12  # kept-week rounds at most (the deadline or an empty scan stops them first)
    # when another round with the whole kept-week flow would end after the deadline, rounds with the flow
    # split per kept week (:func:`split_flow_multipliers`, the last whole flow's load multipliers fixed; 100k
    # base: ~1.8 s in two processes instead of 10-15 s a flow; after two whole rounds, the first split
    # round gains ~3/4 of what a third whole round does and three of them, in about its time, all of it),
    # their flows estimated at this share of the last whole flow's time until one is measured
    big_split_share: float = 0.15
    big_columns: int = 12  # pairs per rotator that join the flow per round
    big_flow_candidates: int = 5  # the first flow's cheapest candidates per rotator (10: the flow 10 s, not 6)
    # the flow's unmatched arc (not the penalty: the flow only makes multipliers, and with the penalty's
    # 1,000 the first flow's are poor: 658,767 instead of 1,105,032 at 100k employees, same later rounds)
    big_unmatched_cost: float = 30.0
    # ... but the penalty after the first flow when the pairing leaves more unmatched than this share of its
    # objective: the multipliers can then charge each of them the penalty, not 30 (the tight demo at 100k:
    # 7,395 unmatched, the bound 842,924 -> 7,390,728 of 8,059,786); below it, the flows at 30 are faster
    big_short_share: float = 0.0025
    big_bound_share: float = 0.85  # no round that would end after this share of the time limit
    background: bool = True  # a second process (fork) for the first flow and half of each priced scan


def candidates(inst: Instance, size: int, block: int = 1024) -> tuple[Edges, np.ndarray, float]:
    """Each rotator's ``size`` cheapest eligible pairs, by rotator then cost, each rotator's number of
    eligible mentors, and the bound with every multiplier at zero (each rotator's cheapest eligible
    mentor, or the unmatched penalty)."""
    pool, found = candidate_scan(inst, size, block)
    return pool, found.n_eligible, float(np.minimum(inst.w.unmatched_penalty, found.best).sum())


def candidate_scan(inst: Instance, size: int, block: int = 1024, fork: bool = False) -> tuple[Edges, Pool]:
    """:func:`candidates`' pool and the whole scan (:func:`.scan.scan`: each rotator's cheapest cost and
    a threshold below every cost left out). Ties go pseudo-randomly, not by mentor order: rotators
    alike then keep different mentors among equally cheap ones, which the flows need to spread the load.
    ``fork``: half the rotators scanned in a second process (:func:`scan_in_two`; the same outcome)."""
    found = scan_in_two(partial(scan, block=block, spread=1e-3), inst, np.arange(inst.n), size, fork, block)
    return found.edges.take(np.lexsort((found.edges.cost, found.edges.rot))), found


def _flow(
    tails: np.ndarray, heads: np.ndarray, caps: np.ndarray, costs: np.ndarray, supply: int, nodes: int
) -> np.ndarray:
    """Min-cost flow (OR-Tools): ``supply`` units from the first ``supply`` nodes (one each) to the last
    node; returns the flow on every arc."""
    from ortools.graph.python import min_cost_flow  # lazy: never imported together with highspy

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), caps, costs)
    supplies = np.zeros(nodes, dtype=np.int64)
    supplies[:supply] = 1
    supplies[-1] = -supply
    flow.set_nodes_supplies(np.arange(nodes, dtype=np.int32), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:  # pragma: no cover - every rotator can always go unmatched
        raise RuntimeError(f"min-cost flow failed with status {status}")
    return np.asarray(flow.flows(np.arange(len(tails), dtype=np.int32)))


def _flow_potentials(
    tails: np.ndarray, heads: np.ndarray, caps: np.ndarray, costs: np.ndarray, supply: int, T: int
) -> tuple[np.ndarray, np.ndarray]:
    """The optimal flow of :func:`_flow` (``supply`` units to node ``T``, the last) and its potentials: each
    node's shortest distance to ``T`` in the flow's residual graph (0 where there is no path)."""
    flows = _flow(tails, heads, caps, costs, supply, T + 1)
    fwd, bwd = flows < caps, flows > 0
    dist = _distances_to_sink(
        np.concatenate([tails[fwd], heads[bwd]]),
        np.concatenate([heads[fwd], tails[bwd]]),
        np.concatenate([costs[fwd], -costs[bwd]]).astype(np.float64),
        T,
    )
    return flows, np.where(np.isfinite(dist), dist, 0.0)


def exact_scale(inst: Instance, costs: np.ndarray, load: np.ndarray, fallback: int) -> int:
    """The smallest of 1, 2, 4, 5, 10, 20, 25, 50 below ``fallback`` that makes every arc cost of a flow
    integral (the pair ``costs``, the unmatched penalty and the load increments of mentors at ``load``),
    else ``fallback``. The flow is then exact, and a smaller scale makes OR-Tools' cost-scaling flow take
    fewer phases (measured at 10k employees, every cost a multiple of 0.5: block flows ~20 % faster)."""
    w = inst.w
    values = np.concatenate([costs, w.load_balance * load, [w.load_balance, w.unmatched_penalty]])
    for k in (1, 2, 4, 5, 10, 20, 25, 50):
        if k >= fallback:
            break
        x = values * k
        if np.all(np.abs(x - np.rint(x)) < 1e-6):
            return k
    return fallback


def _load_arcs(inst: Instance, ments: np.ndarray, seats: np.ndarray, load: np.ndarray, scale: int) -> tuple:
    """One unit arc per seat of each mentor in ``ments``, costing the load-balance increment."""
    lm = np.repeat(np.arange(len(ments)), seats)
    lk = np.arange(len(lm)) - np.repeat(np.cumsum(seats) - seats, seats)
    cost = np.rint(scale * inst.w.load_balance * (load[ments][lm] + lk)).astype(np.int64)
    return lm, cost


class Cohorts:
    """The rotators grouped by (start, end) week, with their candidate pairs."""

    def __init__(self, inst: Instance, pool: Edges, rots: np.ndarray):
        self.inst = inst
        self.pool = pool
        self.first = np.searchsorted(pool.rot, np.arange(inst.n + 1))  # pool edges of rotator i: first[i]:first[i+1]
        key = inst.s[rots] * (inst.H + 1) + inst.e[rots]
        order = np.argsort(key, kind="stable")
        cut = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
        self.groups = [rots[order[a:b]] for a, b in zip(cut[:-1], cut[1:], strict=True)]

    def edges_of(self, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position in ``group``, mentor, cost) of the group's candidate pairs."""
        lo, hi = self.first[group], self.first[group + 1]
        lens = hi - lo
        ix = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        return np.repeat(np.arange(len(group)), lens), self.pool.ment[ix], self.pool.cost[ix]


def pair_cohort(
    inst: Instance,
    cohorts: Cohorts,
    group: np.ndarray,
    assign: np.ndarray,
    rescap: np.ndarray,
    annual: np.ndarray,
    load: np.ndarray,
    scale: int,
) -> None:
    """Pair one cohort (unpaired in ``assign``) optimally on the seats left (mutates ``assign``,
    ``rescap``, ``annual``, ``load``); those its candidates cannot seat take the cheapest eligible mentor
    with a seat, if any."""
    s, e = int(inst.s[group[0]]), int(inst.e[group[0]])
    seats = np.minimum(rescap[:, s:e].min(axis=1), annual).clip(0)
    loc, mm, cc = cohorts.edges_of(group)
    open_ = seats[mm] > 0
    loc, mm, cc = loc[open_], mm[open_], cc[open_]
    R = len(group)
    if len(mm):
        ments, mpos = np.unique(mm, return_inverse=True)
        scale = exact_scale(inst, cc, load[ments], scale)
        lm, lcost = _load_arcs(inst, ments, np.minimum(seats[ments], R), load, scale)
        T = R + len(ments)
        tails = np.concatenate([loc, np.arange(R), R + lm])
        heads = np.concatenate([R + mpos, np.full(R + len(lm), T)])
        P = int(round(inst.w.unmatched_penalty * scale))
        costs = np.concatenate([np.rint(cc * scale).astype(np.int64), np.full(R, P, dtype=np.int64), lcost])
        used = _flow(tails, heads, np.ones(len(tails), dtype=np.int64), costs, R, T + 1)[: len(loc)] > 0
        picked, mj = group[loc[used]], mm[used]
        assign[picked] = mj
        np.subtract.at(rescap, (mj[:, None], np.arange(s, e)[None, :]), 1)
        np.subtract.at(annual, mj, 1)
        np.add.at(load, mj, 1)
    left = group[assign[group] < 0]
    if len(left):
        fill_same_weeks(inst, assign, left, rescap, annual)
        filled = assign[left]
        np.add.at(load, filled[filled >= 0], 1)


def fill_same_weeks(
    inst: Instance, assign: np.ndarray, rots: np.ndarray, rescap: np.ndarray, annual: np.ndarray, block: int = 256
) -> None:
    """:func:`.greedy.greedy_fill` for rotators with the same weeks (a cohort's), the same choices: each (in
    order) takes its cheapest eligible mentor with a free seat, counting the mentor's current load. The
    rules and costs are computed for a block of them at once (the seats of those weeks are one vector for
    all of them), not rotator by rotator (mutates ``assign``, ``rescap`` and ``annual``)."""
    s, e = int(inst.s[rots[0]]), int(inst.e[rots[0]])
    if (inst.s[rots] != s).any() or (inst.e[rots] != e).any():
        raise ValueError("fill_same_weeks needs rotators with the same weeks")
    load = inst.load0.copy() + np.bincount(assign[assign >= 0], minlength=inst.m)
    free = (rescap[:, s:e].min(axis=1) > 0) & (annual > 0)
    for i, eligible, cost in rules_by_block(inst, rots, block):
        mask = eligible & free
        if not mask.any():
            continue
        key = cost + inst.w.load_balance * load
        key[~mask] = np.inf
        j = int(np.argmin(key))
        assign[i] = j
        rescap[j, s:e] -= 1
        annual[j] -= 1
        load[j] += 1
        free[j] = rescap[j, s:e].min() > 0 and annual[j] > 0


def cohort_passes(
    inst: Instance, cohorts: Cohorts, start: np.ndarray, cfg: CohortSettings, deadline: float, stats: dict[str, Any]
) -> np.ndarray:
    """From ``start`` (an assignment within every weekly seat and annual cap; nobody paired in the first
    pass), re-pair each cohort against all the others, in order of their start, pass after pass (see the
    module docstring). Returns the best pass's assignment (mentor index per rotator, -1 unmatched)."""
    assign = start.copy()
    rescap, annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    load = inst.load0 + extra
    values: list[float] = []
    best = assign
    for _pass in range(cfg.passes):
        started = time.perf_counter()
        for group in cohorts.groups:
            # free the cohort: its seats go back
            had = group[assign[group] >= 0]
            mj = assign[had]
            s, e = int(inst.s[group[0]]), int(inst.e[group[0]])
            np.add.at(rescap, (mj[:, None], np.arange(s, e)[None, :]), 1)
            np.add.at(annual, mj, 1)
            np.subtract.at(load, mj, 1)
            assign[group] = -1
            pair_cohort(inst, cohorts, group, assign, rescap, annual, load, cfg.scale)
        values.append(round(inst.total_cost(assign)[0], 3))
        if values[-1] <= min(values[:-1], default=np.inf):
            best = assign.copy()
        else:  # a re-pairing can lose when a cohort's candidates are full (the fill then takes what is left)
            break
        if len(values) > 1 and values[-2] - values[-1] <= cfg.gap_target / 2 * values[-1]:
            break  # the pass gained less than half the gap target
        now = time.perf_counter()
        if now + (now - started) > deadline:
            break  # another pass as long as this one would end after the time share
    stats["cohort_passes"] = values
    stats["cohorts"] = len(cohorts.groups)
    return best


def _kept_weeks(inst: Instance, rots: np.ndarray) -> np.ndarray:
    """Per rotator, the kept week it is charged at (-1: none): every ``L``-th week (``L`` the shortest
    rotation), at the offset where the kept weeks hold the most rotators on rotation."""
    L = max(1, int((inst.e[rots] - inst.s[rots]).min()))
    away = np.zeros(inst.H + 1)
    np.add.at(away, inst.s[rots], 1)
    np.add.at(away, inst.e[rots], -1)
    away = np.cumsum(away)[: inst.H]
    weeks = np.arange(inst.H)
    offset = int(np.argmax([(away[weeks % L == k] ** 2).sum() for k in range(L)]))
    kept = inst.s + (offset - inst.s) % L
    return np.where(kept < inst.e, kept, -1)


def kept_week_flow(
    inst: Instance, rots: np.ndarray, edges: Edges, kept: np.ndarray, scale: int, unmatched: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The kept-week relaxation as a min-cost flow over ``edges``; returns its multipliers (``lam_m``
    per mentor, ``v`` (m, H), rotator duals ``u``, all in cost units) from the potentials of the optimal
    flow (shortest distances to the sink in the residual graph) and the flow's value. ``unmatched``: the
    unmatched arc's cost (default the penalty; the multipliers make a valid bound whatever it is)."""
    H, m, R = inst.H, inst.m, len(rots)
    er, em, ec = edges
    pos = np.full(inst.n, -1, dtype=np.int64)
    pos[rots] = np.arange(R)
    kw = kept[er]
    cellkey = np.where(kw >= 0, em * H + kw, -1)
    cells = np.unique(cellkey[cellkey >= 0])
    C = len(cells)
    Mo = R + C  # nodes: rotators, (mentor, kept week) cells, mentors, sink
    T = Mo + m
    lm, lcost = _load_arcs(inst, np.arange(m), inst.annual, inst.load0, scale)
    heads_e = np.where(kw >= 0, R + np.searchsorted(cells, cellkey), Mo + em)
    tails = np.concatenate([pos[er], R + np.arange(C), np.arange(R), Mo + lm])
    heads = np.concatenate([heads_e, Mo + cells // H, np.full(R + len(lm), T)])
    cell_seats = np.maximum(inst.rescap.reshape(-1)[cells], 0)
    caps = np.concatenate([np.ones(len(er)), cell_seats, np.ones(R + len(lm))]).astype(np.int64)
    P = int(round((inst.w.unmatched_penalty if unmatched is None else unmatched) * scale))
    costs = np.concatenate(
        [np.rint(ec * scale).astype(np.int64), np.zeros(C, dtype=np.int64), np.full(R, P, dtype=np.int64), lcost]
    )
    flows, dist = _flow_potentials(tails, heads, caps, costs, R, T)
    lam_m = np.maximum(0.0, dist[Mo:T]) / scale
    v = np.zeros(m * H)
    v[cells] = np.maximum(0.0, dist[R:Mo] - dist[Mo + cells // H]) / scale
    u = np.zeros(inst.n)
    u[rots] = dist[:R] / scale
    return lam_m, v.reshape(m, H), u, float((flows * costs).sum()) / scale


Multipliers = tuple[np.ndarray, np.ndarray, np.ndarray, float, float]


def flow_multipliers(
    inst: Instance, rots: np.ndarray, edges: Edges, kept: np.ndarray, cfg: CohortSettings, unmatched: float | None
) -> Multipliers:
    """One kept-week flow (:func:`kept_week_flow` at the exact scale): its multipliers ``lam_m``, ``v``,
    ``u``, its value and the seconds it took."""
    t1 = time.perf_counter()
    scale = exact_scale(inst, edges.cost, inst.load0, cfg.scale)  # the same flow, fewer scaling phases
    lam_m, v, u, value = kept_week_flow(inst, rots, edges, kept, scale, unmatched)
    return lam_m, v, u, value, time.perf_counter() - t1


def split_flow_multipliers(
    inst: Instance,
    edges: Edges,
    kept: np.ndarray,
    lam_m: np.ndarray,
    cfg: CohortSettings,
    unmatched: float | None,
    fork: bool = False,
) -> Multipliers:
    """The kept-week relaxation over ``edges`` with the mentors' load rows priced by ``lam_m`` (fixed, from
    a whole flow of :func:`kept_week_flow`) instead of kept: it falls apart into one transportation flow
    per kept week (each rotator charged at its kept week: rotator -> (mentor, week) cell -> sink, arc
    cost the pair's cost plus ``lam_m``, the cell's arc that week's seats; the unmatched arc ``unmatched``,
    default the penalty). Returns ``lam_m``, the cells' multipliers ``v`` and the rotator potentials ``u``
    from each flow's potentials (as :func:`kept_week_flow`; any ``lam_m``, ``v`` >= 0 price a valid
    Lagrangian bound), the value 0 (the caller keeps the whole flow's) and the seconds it took. OR-Tools'
    time grows faster than a flow's size: at 100k employees the 13 flows take ~2.4-3.2 s where one whole
    flow takes 10-15 s. ``fork``: about half of the weeks' flows (by pairs) in a second process
    (:class:`.background.Background`); each week's flow is its own, so the result is the same."""
    t1 = time.perf_counter()
    P = inst.w.unmatched_penalty if unmatched is None else unmatched
    cost = edges.cost + lam_m[edges.ment]
    scale = exact_scale(inst, cost, inst.load0, cfg.scale)
    kw = kept[edges.rot]  # every rotator with an eligible mentor has one (:func:`_kept_weeks`)
    v = np.zeros(inst.m * inst.H)
    u = np.zeros(inst.n)
    sizes = np.bincount(kw, minlength=inst.H)
    mine: list[int] = []
    theirs: list[int] = []
    for week in np.argsort(-sizes, kind="stable"):  # the largest first, each to the lighter half
        if sizes[week]:
            (mine if sum(sizes[mine]) <= sum(sizes[theirs]) else theirs).append(int(week))
    args = (inst, edges.rot, edges.ment, cost, kw, P, scale)
    other = Background(_week_flows, *args, theirs, fork=fork and bool(theirs))
    for cells, cv, who, wu in (_week_flows(*args, mine), other.result()):
        v[cells], u[who] = cv, wu
    return lam_m, v.reshape(inst.m, inst.H), u, 0.0, time.perf_counter() - t1


def _week_flows(
    inst: Instance,
    er: np.ndarray,
    em: np.ndarray,
    cost: np.ndarray,
    kw: np.ndarray,
    P: float,
    scale: int,
    weeks: list[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The flows of :func:`split_flow_multipliers` for the kept ``weeks``: (cells, their ``v``, rotators,
    their ``u``)."""
    H = inst.H
    seats = np.maximum(inst.rescap, 0).reshape(-1)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for week in weeks:
        sel = np.flatnonzero(kw == week)
        who = np.unique(er[sel])
        R = len(who)
        cellkey = em[sel] * H + week
        cells = np.unique(cellkey)
        C = len(cells)
        T = R + C
        tails = np.concatenate([np.searchsorted(who, er[sel]), R + np.arange(C), np.arange(R)])
        heads = np.concatenate([R + np.searchsorted(cells, cellkey), np.full(C + R, T)])
        caps = np.concatenate([np.ones(len(sel)), seats[cells], np.ones(R)]).astype(np.int64)
        costs = np.concatenate(
            [
                np.rint(cost[sel] * scale).astype(np.int64),
                np.zeros(C, dtype=np.int64),
                np.full(R, int(round(P * scale)), dtype=np.int64),
            ]
        )
        _, dist = _flow_potentials(tails, heads, caps, costs, R, T)
        out.append((cells, np.maximum(0.0, dist[R:T]) / scale, who, dist[:R] / scale))
    if not out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0), empty, np.zeros(0)
    return tuple(np.concatenate(x) for x in zip(*out, strict=True))  # type: ignore[return-value]


def priced_scan(
    inst: Instance, rots: np.ndarray, columns: int, multipliers: Multipliers, block: int, fork: bool
) -> Pool:
    """:func:`.scan.scan` of every eligible pair of ``rots`` priced by the flow's multipliers; ``fork``:
    half of it in a second process (:func:`scan_in_two`)."""
    lam_m, v, u = multipliers[:3]
    lw = np.zeros((inst.m, inst.H + 1))
    np.cumsum(v, axis=1, out=lw[:, 1:])
    return scan_in_two(partial(scan, block=block, lam_m=lam_m, lw=lw, u=u), inst, rots, columns, fork, block)


def scan_in_two(run: Callable[..., Pool], inst: Instance, rots: np.ndarray, size: int, fork: bool, block: int) -> Pool:
    """``run(inst, rots, size)`` (a :func:`.scan.scan`), the second half of ``rots`` in a second process
    (:class:`.background.Background`) meanwhile when ``fork`` and there are two scan blocks at least.
    Each rotator's figures and pairs are its own, so the halves merge into what one scan gives."""
    if not fork or len(rots) < 2 * block:
        return run(inst, rots, size)
    half = len(rots) // 2
    other = Background(run, inst, rots[half:], size)
    mine, theirs = run(inst, rots[:half], size), other.result()
    return Pool(
        mine.edges.join(theirs.edges),
        np.minimum(mine.best, theirs.best),
        mine.n_eligible + theirs.n_eligible,
        np.minimum(mine.threshold, theirs.threshold),
    )


def kept_week_bound(
    inst: Instance,
    rots: np.ndarray,
    edges: Edges,
    cfg: CohortSettings,
    deadline: float,
    stats: dict[str, Any],
    *,
    big: bool = False,
    first: Multipliers | None = None,
    later: Edges | None = None,
    short: bool = False,
) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """The Lagrangian lower bound of the kept-week relaxation, every eligible pair priced (see the module
    docstring), and the multipliers (``lam_m``, rotator potentials ``u``) of the flow that gave the bound.
    No round starts that would end after ``deadline`` (as long as the last one). ``big``: when another
    round of the whole flow would, but one with the flow split per kept week would not (estimated at
    ``big_split_share`` of the whole flow's time, then as long as the last), the later rounds are split
    (:func:`split_flow_multipliers`; ``bound_split_rounds`` in ``stats``). ``big`` also means the settings
    above ``flow_bound_rotators`` (``big_*``; scans half in a second process when ``cfg.background``);
    ``first``: the first flow's multipliers, already computed (:class:`BoundBeside`); ``later``: pairs that
    join the flow after the first round (the final pairing's, when the first flow had an earlier one's);
    ``short`` (with ``big``): the flows after the first with the unmatched penalty on their unmatched arc, not
    ``big_unmatched_cost`` (seats are short)."""
    kept = _kept_weeks(inst, rots)
    cap = np.maximum(inst.rescap, 0)
    # the flow covers ``rots``; the bound also counts the others, at the penalty: so does the flow's value here
    nobody = inst.w.unmatched_penalty * (inst.n - len(rots))
    rounds, columns = (cfg.big_bound_rounds, cfg.big_columns) if big else (cfg.bound_rounds, cfg.columns)
    unmatched = cfg.big_unmatched_cost if big and not short else None
    bound = -np.inf
    duals = (np.zeros(inst.m), np.zeros(inst.n))
    log = []
    whole = (np.zeros(inst.m), 0.0)  # the last whole flow's load multipliers and value
    split = False  # the rounds' flows split per kept week (once a whole round no longer fits)
    splits = 0
    for k in range(rounds):
        if k == 0 and first is not None:
            flow = first
        elif split:
            flow = split_flow_multipliers(inst, edges, kept, whole[0], cfg, unmatched, cfg.background)
            splits += 1
        else:
            flow = flow_multipliers(inst, rots, edges, kept, cfg, unmatched)
        t2 = time.perf_counter()
        priced = priced_scan(inst, rots, columns, flow, cfg.block, big and cfg.background)
        lam_m, v, u, _, flow_s = flow
        if not split:
            whole = (lam_m, flow[3])
        value = whole[1] + nobody  # the relaxation's value over these pairs (>= every bound from them)
        here = dual_value(inst, priced.best, rots, load_term(inst, inst.annual, lam_m), -float((v * cap).sum()))
        if here > bound:
            bound, duals = here, (lam_m, u)
        new = priced.edges.take(~np.isin(priced.edges.keys(inst.m), edges.keys(inst.m)))
        now = time.perf_counter()
        log.append(
            (len(edges.rot), round(value, 3), round(here, 3), len(new.rot), round(flow_s, 2), round(now - t2, 2))
        )
        if not len(new.rot) or value - bound <= cfg.gap_target * max(value, 1e-9) / 4:
            break
        if now + flow_s + (now - t2) > deadline:  # another round as long as this one would end after it
            if not big or split or now + cfg.big_split_share * flow_s + (now - t2) > deadline:
                break
            split = True  # ... but one with the flow split per kept week would not
        if k == 0 and later is not None:
            known = np.concatenate([edges.keys(inst.m), new.keys(inst.m)])
            new = new.join(later.take(~np.isin(later.keys(inst.m), known)))
        edges = edges.join(new)
    stats["bound_log"] = log
    stats["bound_split_rounds"] = splits
    return float(bound), duals


def seed_edges(inst: Instance, cohorts: Cohorts, assign: np.ndarray, k: int) -> Edges:
    """The first kept-week flow's pairs: each rotator's ``k`` cheapest candidates and its pair in
    ``assign`` (a pairing within every weekly seat makes the first flow's multipliers far better)."""
    pool = cohorts.pool
    start = pool.take(np.arange(len(pool.rot)) - cohorts.first[pool.rot] < k)
    return start.join(paired_edges(inst, assign, exclude=start))


def paired_edges(inst: Instance, assign: np.ndarray, exclude: Edges) -> Edges:
    """The pairs of ``assign`` that are not in ``exclude``."""
    matched = np.nonzero(assign >= 0)[0]
    mine = Edges(matched, assign[matched], inst.pair_costs(matched, assign[matched]))
    return mine.take(~np.isin(mine.keys(inst.m), exclude.keys(inst.m)))


class BoundBeside:
    """Above ``flow_bound_rotators`` (100k employees) one kept-week flow takes ~10 s and the bound needs
    three (each followed by a priced scan of all 243 M eligible pairs), ~45 s of CPU, while the pairing
    itself takes ~16 s. So the first flow (seeded with the first cohort pass, which is ready after ~9 s)
    runs in a second process beside the block flows (:class:`.background.Background`); when the pairing
    is done the final pairing's pairs join, and each priced scan is split between the two processes.
    Measured at 100k employees (2 cores, base): 2.0 % after two rounds, 0.88 % after three; when the
    third does not fit, 0.96 % after two rounds split per kept week (2026-12-06, sixth session)."""

    def __init__(self, inst: Instance, rots: np.ndarray, cohorts: Cohorts, assign: np.ndarray, cfg: CohortSettings):
        self.inst, self.rots, self.cfg = inst, rots, cfg
        self.edges = seed_edges(inst, cohorts, assign, cfg.big_flow_candidates)
        kept = _kept_weeks(inst, rots)
        self.first = Background(
            flow_multipliers, inst, rots, self.edges, kept, cfg, cfg.big_unmatched_cost, fork=cfg.background
        )

    def bound(self, assign: np.ndarray, upper: float, deadline: float, stats: dict[str, Any]) -> float:
        """The kept-week bound, the final pairing ``assign`` (objective ``upper``)'s pairs joining after the
        first round."""
        first = self.first.result()
        stats["cpu_background_flow"] = round(self.first.cpu_seconds, 3)
        if self.first.failure:  # the flow was run again here
            stats["background_failure"] = self.first.failure.strip().splitlines()[-1]
        later = paired_edges(self.inst, assign, exclude=self.edges)
        inst, cfg = self.inst, self.cfg
        short = inst.w.unmatched_penalty * (assign[self.rots] < 0).sum() > cfg.big_short_share * upper
        stats["bound_short"] = bool(short)
        bound, _ = kept_week_bound(
            inst, self.rots, self.edges, cfg, deadline, stats, big=True, first=first, later=later, short=short
        )
        return bound


def load_bound(
    inst: Instance, pool: Edges, found: Pool, rots: np.ndarray, upper: float, steps: int, deadline: float, stats: dict
) -> float:
    """A Lagrangian lower bound without any flow or further scan, for instances too large for the
    kept-week flows: relax the mentor load rows (``lam_m``) and the weekly rows (``lam_w``). With the same
    multiplier for every mentor each rotator's cheapest priced mentor is its cheapest mentor plus that
    multiplier (exact, from the scan), so the best common multiplier is found on a grid; then projected
    supergradient steps (Polyak, towards ``upper``) over the candidate pool, where a mentor outside a
    rotator's pool costs at least the scan's threshold plus the smallest mentor multiplier (weekly
    multipliers are >= 0), which keeps every value a bound for the whole problem (:func:`.bound.lagrangian`
    with the threshold raised by that smallest multiplier)."""
    P, w = inst.w.unmatched_penalty, inst.w.load_balance
    best = np.minimum(P, found.best[rots])
    top = w * float((inst.load0 + inst.annual).max()) + w
    grid = np.arange(0.0, max(top, w), max(w, 1e-3) / 4)
    values = [
        float(np.minimum(P, best + lam).sum())
        + P * (inst.n - len(rots))
        + load_term(inst, inst.annual, np.full(inst.m, lam))
        for lam in grid
    ]
    k = int(np.argmax(values))
    bound = values[k]
    lm, lwk = np.full(inst.m, grid[k]), np.zeros((inst.m, inst.H))
    log = [round(bound, 3)]
    for _ in range(steps):
        if time.perf_counter() > deadline:
            break
        val, g_m, g_w = lagrangian(inst, pool, found.threshold + lm.min(), rots, lm, lwk)
        bound = max(bound, val)
        stepped = polyak_step(lm, lwk, g_m, g_w, upper - val)
        if stepped is None:
            break
        lm, lwk = stepped
    log.append(round(bound, 3))
    stats["load_bound_log"] = log
    return float(bound)


Improve = Callable[[Instance, Cohorts, np.ndarray, float, dict[str, Any]], np.ndarray]


def priced(inst: Instance, cohorts: Cohorts, mu: np.ndarray, share: float) -> Cohorts:
    """``cohorts`` with each candidate pair charged ``share`` of the weekly prices ``mu`` (m, H) over the
    rotator's weeks, up to half the unmatched penalty (so that the priced flows still seat everyone they
    can), the same pairs in the same order (by rotator, then unpriced cost)."""
    lw = np.zeros((inst.m, inst.H + 1))
    np.cumsum(mu, axis=1, out=lw[:, 1:])
    pool = cohorts.pool
    price = lw[pool.ment, inst.e[pool.rot]] - lw[pool.ment, inst.s[pool.rot]]
    # never above half the penalty (unless the pair costs more): a seat stays better than none
    cost = np.minimum(pool.cost + share * price, np.maximum(pool.cost, inst.w.unmatched_penalty / 2))
    rots = np.concatenate(cohorts.groups) if cohorts.groups else np.zeros(0, dtype=np.int64)
    return Cohorts(inst, Edges(pool.rot, pool.ment, cost), np.sort(rots))


def flow_bounds(
    inst: Instance,
    rots: np.ndarray,
    cohorts: Cohorts,
    assign: np.ndarray,
    cfg: CohortSettings,
    deadlines: tuple[float, float],
    stats: dict[str, Any],
) -> tuple[float, np.ndarray | None]:
    """The kept-week bound (its first flow over each rotator's ``flow_candidates`` cheapest pairs and the
    pairs of ``assign``), then the every-week bound when time is left (before ``deadlines[1]``); returns
    the larger and the every-week bound's weekly prices (None without it)."""
    edges = seed_edges(inst, cohorts, assign, cfg.flow_candidates)
    bound, (lam_m, u) = kept_week_bound(inst, rots, edges, cfg, deadlines[0], stats)
    stats["kept_week_bound"] = round(bound, 3)
    if time.perf_counter() >= deadlines[1]:
        return bound, None
    t1 = time.process_time()
    prices: list[np.ndarray] = []
    stats["every_week_bound"] = round(every_week_bound(inst, rots, lam_m, u, stats, prices=prices), 3)
    stats["cpu_every_week"] = round(time.process_time() - t1, 3)
    return max(bound, stats["every_week_bound"]), prices[0]


def solve_by_cohorts(
    inst: Instance,
    t0: float,
    c0: float,
    stats: dict[str, Any],
    cfg: CohortSettings,
    improve: Improve | None = None,
) -> Solution:
    """Cohort flows for the pairing, the kept-week flow for the bound (see the module docstring).
    Up to ``flow_bound_rotators``: one cohort pass, the bounds from it (:func:`flow_bounds`), then the
    pairing again from scratch by a *priced* cohort pass, each pair charged ``price_share`` of the
    every-week bound's weekly prices over its weeks (early cohorts then leave the seats that later ones
    need; measured at 10k employees, after the block flows: 126,581 -> 126,428 base, 116,949 -> 116,852
    history, the same tight). ``improve`` (``(inst, cohorts, assign, deadline, stats) -> assign``, never
    worse, e.g. :func:`.improve.improve_by_blocks`) runs after the cohort passes and the rescue, until
    ``improve_share`` of the time limit at most (``improve_share_big`` above ``flow_bound_rotators``); then
    anyone unmatched takes a seat the blocks freed, if any (:func:`.greedy.fill_the_rest`)."""
    if cfg.candidates < 1 or cfg.passes < 1 or cfg.scale < 1:
        raise ValueError("cohort candidates, passes and scale must be >= 1")
    # 100k employees: the scan ~6 s in one process, ~3.5 s in two
    pool, found = candidate_scan(inst, cfg.candidates, cfg.block, cfg.background and inst.n > cfg.flow_bound_rotators)
    n_eligible = found.n_eligible
    bound0 = float(np.minimum(inst.w.unmatched_penalty, found.best).sum())
    stats["eligible_pairs"] = int(n_eligible.sum())
    stats["t_scan"] = round(time.perf_counter() - t0, 3)
    rots = np.nonzero(n_eligible > 0)[0]
    if len(rots) == 0:  # nobody has an eligible mentor
        nobody = np.full(inst.n, -1, dtype=np.int64)
        return finish(inst, nobody, inst.w.unmatched_penalty * inst.n, "no-eligible-pairs", t0, stats)
    cohorts = Cohorts(inst, pool, rots)
    empty = np.full(inst.n, -1, dtype=np.int64)
    T = cfg.time_limit
    big = len(rots) > cfg.flow_bound_rotators  # the bound's flows beside the pairing, not before it
    if big:
        assign = cohort_passes(inst, cohorts, empty, cfg, t0 + 0.5 * T, stats)
        beside = BoundBeside(inst, rots, cohorts, assign, cfg)
    else:
        assign = cohort_passes(inst, cohorts, empty, cfg, t0 + 0.3 * T, stats)
        bound, mu = flow_bounds(inst, rots, cohorts, assign, cfg, (t0 + 0.5 * T, t0 + 0.55 * T), stats)
        if mu is not None and cfg.price_share > 0:
            stats["unpriced_pass"] = stats.pop("cohort_passes")
            assign = cohort_passes(inst, priced(inst, cohorts, mu, cfg.price_share), empty, cfg, t0 + 0.6 * T, stats)
    stats["rescued"] = rescue_unmatched(inst, assign)
    if improve is not None:
        assign = improve(inst, cohorts, assign, t0 + (cfg.improve_share_big if big else cfg.improve_share) * T, stats)
        # the blocks can free a seat someone unmatched fits (a re-run would pair them: not stable)
        stats["filled_after_blocks"] = int((assign[fill_the_rest(inst, assign, rots)] >= 0).sum())
    if len(inst.overfull(assign, inst.rescap)):  # pragma: no cover - must never ship
        raise RuntimeError("cohort pairing overfilled a mentor")
    if big:
        upper = inst.total_cost(assign)[0]
        stats["t_paired"] = round(time.perf_counter() - t0, 3)
        # the load bound (~1 s) while the second process ends the first kept-week flow
        bound = load_bound(inst, pool, found, rots, upper, cfg.load_bound_steps, t0 + 0.8 * T, stats)
        stats["load_bound"] = round(bound, 3)
        bound = max(bound, beside.bound(assign, upper, t0 + cfg.big_bound_share * T, stats))
    bound = max(bound, bound0)
    stats["t_pairing"] = round(time.perf_counter() - t0, 3)
    stats["t_total"] = round(time.perf_counter() - t0, 3)
    stats["cpu_total"] = round(time.process_time() - c0, 3)
    return finish(inst, assign, bound, "cohorts", t0, stats)
