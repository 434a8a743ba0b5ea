"""A lower bound with EVERY weekly row: relax the rotators' assignment rows instead of the weekly rows.

The kept-week bound (:mod:`.cohorts`) prices the weekly rows of every ``L``-th week only. Its optimal
flow also gives each rotator a potential ``u`` (what it is worth to seat it) and each mentor a load
multiplier ``lam_m``. Relaxing the assignment rows (each rotator paired at most once) with ``u`` and the
load rows with ``lam_m`` (and keeping every weekly row), the problem splits per mentor::

    L(u, lam) = sum_r min(u_r, P)  +  sum_m  min { sum_r (c_rm + lam_m - u_r) x_r :
                                                    x_r in {0, 1} eligible, at most cap_mw of the
                                                    chosen rotations in each week w }
                                   +  load term (:func:`.bound.load_term`)

which is a lower bound of the whole problem for ANY ``u`` and ``lam_m >= 0`` (weak duality: every
feasible pairing is feasible in each mentor's subproblem and pays the same). A mentor's subproblem is
choosing rotations (intervals of weeks) of negative reduced cost under a weekly seat profile, which is a
min-cost flow on the mentor's week line: ``cap_mw`` seat units cross week ``w`` (supply at week ``w``
= the change of the seat count there), either idle (arc ``w -> w + 1``, capacity ``cap_mw``, cost 0) or
carrying a rotation (arc ``start -> end``, capacity 1, its reduced cost); a cut between weeks ``w`` and
``w + 1`` is crossed by exactly ``cap_mw`` units, so at most ``cap_mw`` chosen rotations cover week
``w``. All mentors' lines form one flow (OR-Tools). Only pairs of negative reduced cost can be chosen;
one scan of every pair in blocks (:func:`_negative_pairs`, the rules and costs of :class:`.model.Instance`)
finds them all. Costs are
scaled to integers rounding DOWN, so the flow's minimum is at most the exact one and the bound stays
valid.

At the kept-week optimum this is at least the kept-week bound (the same ``u`` and ``lam``, with more
rows in each mentor's subproblem) and gains what the kept-week relaxation saved by breaking the
weekly rows of the weeks it drops. Then one step back: the optimal flow's node potentials give each
mentor and week a price ``mu >= 0`` (the rise of the potential across the week); the weekly Lagrangian at
(``lam_m``, ``mu``) (each rotator its cheapest priced eligible mentor, :func:`.bound.dual_value`) is never
lower than the value above (the flow's dual, with each rotator's term at its best), and is returned when
higher. Measured and not kept: more such alternations (at 10k: +16, then +13, each a scan and a flow; the
first step gains +49 base, +7,590 tight), subgradient steps on ``u`` (every step lowered it: ``u`` sits at a kink),
and keeping part of the kept-week prices as well (lower for every share tried).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from frontline.mentors.solver.bound import dual_value, load_term
from frontline.mentors.solver.flow import _distances_to_sink
from frontline.mentors.solver.model import Edges, Instance


def _line_flow(inst: Instance, edges: Edges, reduced: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
    """Min over every mentor's week line (see the module docstring) of the chosen pairs' reduced costs
    (costs scaled and rounded DOWN: the returned value is <= the exact minimum), and weekly prices
    ``mu`` (m, H) >= 0 from the optimal flow's node potentials (the rise of the potential across each
    week: the weekly rows' part of the flow's dual)."""
    from ortools.graph.python import min_cost_flow  # lazy: never imported together with highspy

    H = inst.H
    mu = np.zeros((inst.m, H))
    neg = reduced < 0
    if not neg.any():
        return 0.0, mu
    ments, mpos = np.unique(edges.ment[neg], return_inverse=True)
    k = len(ments)
    cap = np.maximum(inst.rescap[ments], 0).astype(np.int64)  # (k, H)
    node = lambda j, wk: j * (H + 1) + wk  # noqa: E731
    supply = np.zeros((k, H + 1), dtype=np.int64)
    supply[:, :H] = cap
    supply[:, 1:] -= cap
    chain_j = np.repeat(np.arange(k), H)
    chain_w = np.tile(np.arange(H), k)
    rot = edges.rot[neg]
    tails = np.concatenate([node(chain_j, chain_w), node(mpos, inst.s[rot])])
    heads = np.concatenate([node(chain_j, chain_w + 1), node(mpos, inst.e[rot])])
    caps = np.concatenate([cap.reshape(-1), np.ones(len(rot), dtype=np.int64)])
    costs = np.concatenate([np.zeros(k * H, dtype=np.int64), np.floor(reduced[neg] * scale).astype(np.int64)])
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32), caps, costs)
    flow.set_nodes_supplies(np.arange(k * (H + 1), dtype=np.int32), supply.reshape(-1))
    status = flow.solve()
    if status != flow.OPTIMAL:  # pragma: no cover - idle seats always give a feasible flow
        raise RuntimeError(f"min-cost flow failed with status {status}")
    flows = np.asarray(flow.flows(np.arange(len(tails), dtype=np.int32)))
    # potentials: shortest distances d from a virtual source (0 to every node) in the residual graph,
    # found as distances to a virtual sink in the reversed graph; the week price is max(0, d_w - d_w+1)
    fwd, bwd = flows < caps, flows > 0
    nodes = k * (H + 1)
    src = np.concatenate([heads[fwd], tails[bwd], np.arange(nodes)])
    dst = np.concatenate([tails[fwd], heads[bwd], np.full(nodes, nodes)])
    cst = np.concatenate([costs[fwd], -costs[bwd], np.zeros(nodes, dtype=np.int64)]).astype(np.float64)
    d = _distances_to_sink(src, dst, cst, nodes)[:nodes].reshape(k, H + 1)
    mu[ments] = np.maximum(0.0, d[:, :H] - d[:, 1:]) / scale
    return float((flows * costs).sum()) / scale, mu


def _cheapest_priced(inst: Instance, rots: np.ndarray, lam_m: np.ndarray, mu: np.ndarray, block: int) -> np.ndarray:
    """Each rotator's cheapest ``c + lam_m + sum of mu over its weeks`` over every eligible mentor (inf
    when none), block by block."""
    lw = np.zeros((inst.m, inst.H + 1))
    np.cumsum(mu, axis=1, out=lw[:, 1:])
    best = np.full(inst.n, np.inf)
    for b0 in range(0, len(rots), block):
        ri = rots[b0 : b0 + block]
        rules = inst.rules(ri)
        priced = inst.cost_block(ri, rules.tz_distance) + lam_m[None, :] + (lw[:, inst.e[ri]] - lw[:, inst.s[ri]]).T
        best[ri] = np.where(rules.eligible, priced, np.inf).min(axis=1, initial=np.inf)
    return best


def _negative_pairs(inst: Instance, rots: np.ndarray, lam_m: np.ndarray, u: np.ndarray, block: int) -> Edges:
    """Every eligible pair of negative reduced cost ``c + lam_m - u`` (the rules and costs of
    :meth:`.model.Instance.rules` and :meth:`.model.Instance.cost_block`, block by block), returned with
    the reduced cost in place of the cost; of the pairs of one mentor with the same weeks only the
    cheapest, one more than the mentor's fewest seats in those weeks (no more of them fit at once, and
    any of them can stand in for another: the minimum is unchanged; the one more keeps the flow's
    potentials valid for those left out, which it dominates), so that rotators nobody can seat (whose
    potential is the penalty, negative with every eligible mentor) do not flood the flow."""
    parts: list[Edges] = []
    for b0 in range(0, len(rots), block):
        ri = rots[b0 : b0 + block]
        rules = inst.rules(ri)
        reduced = inst.cost_block(ri, rules.tz_distance) + lam_m[None, :] - u[ri, None]
        rr, mm = np.nonzero(rules.eligible & (reduced < 0))
        parts.append(_fewest_seats(inst, Edges(ri[rr], mm, reduced[rr, mm])))
    if not parts:
        return Edges.empty()
    return _fewest_seats(inst, Edges(*(np.concatenate(x) for x in zip(*parts, strict=True))))


def _fewest_seats(inst: Instance, edges: Edges) -> Edges:
    """Of the ``edges`` (cost = reduced cost) of one mentor with the same weeks, the cheapest ``k + 1``,
    ``k`` the mentor's fewest seats in those weeks."""
    if not len(edges.rot):
        return edges
    s, e = inst.s[edges.rot], inst.e[edges.rot]
    group = (edges.ment * (inst.H + 1) + s) * (inst.H + 1) + e
    order = np.lexsort((edges.cost, group))
    g = group[order]
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(len(g)) - np.repeat(first, np.diff(np.r_[first, len(g)]))
    heads = order[first]  # one edge per group
    hm, hs, he = edges.ment[heads], s[heads], e[heads]
    fewest = np.full(len(heads), np.iinfo(np.int64).max)
    for k in range(int((he - hs).max())):
        fewest = np.minimum(fewest, inst.rescap[hm, np.minimum(hs + k, he - 1)])
    return edges.take(order[rank <= np.repeat(np.maximum(fewest, 0), np.diff(np.r_[first, len(g)]))])


def every_week_bound(
    inst: Instance,
    rots: np.ndarray,
    lam_m: np.ndarray,
    u: np.ndarray,
    stats: dict[str, Any],
    *,
    scale: float = 10_000.0,
    block: int = 512,
    prices: list[np.ndarray] | None = None,
) -> float:
    """The bound of the module docstring at the rotator potentials ``u`` and load multipliers ``lam_m``
    (clipped at 0) of the kept-week flow, then the weekly Lagrangian at the week lines' prices (never
    lower); ``rots`` the rotators with an eligible mentor. Returns the larger; the weekly prices ``mu``
    (m, H) are appended to ``prices`` when given (the cohort method pairs against them)."""
    P = inst.w.unmatched_penalty
    lam_m = np.maximum(lam_m, 0.0)
    u = np.minimum(u, P)
    edges = _negative_pairs(inst, rots, lam_m, u, block)
    value, mu = _line_flow(inst, edges, edges.cost, scale)
    if prices is not None:
        prices.append(mu)
    zterm = load_term(inst, inst.annual, lam_m)
    lines = float(u[rots].sum()) + value + zterm + P * (inst.n - len(rots))
    best = _cheapest_priced(inst, rots, lam_m, mu, block)
    weekly = dual_value(inst, best, rots, zterm, -float((mu * np.maximum(inst.rescap, 0)).sum()))
    stats["every_week_pairs"] = len(edges.rot)
    stats["every_week_log"] = [round(lines, 3), round(weekly, 3)]
    return max(lines, weekly)
