"""Greedy assignment: the baseline (:func:`solve_greedy`) and the safety net of the other methods
(:func:`greedy_fill`: anyone still unmatched takes the cheapest eligible mentor with a free seat)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from frontline.mentors.solver.model import Instance
from frontline.mentors.solver.problem import Mentor, Rotator, Solution, Weights
from frontline.mentors.solver.solution import finish


def greedy_fill(
    inst: Instance, assign: np.ndarray, rots: Iterable[int], rescap: np.ndarray, annual: np.ndarray
) -> None:
    """Give each rotator (in order) its cheapest eligible mentor with a free seat, counting the
    load-balance cost of the mentor's current load (mutates ``assign``, ``rescap`` and ``annual``)."""
    load = inst.load0.copy() + np.bincount(assign[assign >= 0], minlength=inst.m)
    for i in map(int, rots):
        ri = np.array([i])
        rules = inst.rules(ri)
        seat = inst.free_seats(i, rescap, annual)
        ok = (rules.dept & rules.language & rules.tz & rules.available & rules.not_previous)[0] & seat
        if not ok.any():
            continue
        cost = inst.cost_block(ri, rules.tz_distance)[0] + inst.w.load_balance * load
        cost[~ok] = np.inf
        j = int(np.argmin(cost))
        assign[i] = j
        rescap[j, inst.s[i] : inst.e[i]] -= 1
        annual[j] -= 1
        load[j] += 1


def fill_the_rest(inst: Instance, assign: np.ndarray, rots: np.ndarray) -> np.ndarray:
    """Safety net: anyone in ``rots`` still unmatched takes the cheapest eligible mentor with a seat left
    after ``assign``, if there is one (mutates ``assign``). Returns the rotators it tried."""
    left = rots[assign[rots] < 0]
    if len(left):
        used_rescap, used_annual, _ = inst.residual(assign, inst.rescap, inst.annual)
        greedy_fill(inst, assign, left, used_rescap, used_annual)
    return left


def greedy_weekly(inst: Instance) -> np.ndarray:
    """The baseline's assignment (see :func:`solve_greedy`) on an instance already built."""
    assign = np.full(inst.n, -1, dtype=np.int64)
    order = np.lexsort((np.arange(inst.n), inst.s))
    greedy_fill(inst, assign, order, inst.rescap.copy(), inst.annual.copy())
    return assign


def solve_greedy(rotators: Sequence[Rotator], mentors: Sequence[Mentor], weights: Weights = Weights()) -> Solution:
    """Baseline: week by week (by start week), each rotator takes the cheapest eligible mentor with a
    free seat, counting the load-balance cost of the mentor's current load."""
    t0 = time.perf_counter()
    inst = Instance(rotators, mentors, weights)
    return finish(inst, greedy_weekly(inst), None, "greedy-weekly", t0, {"rotators": inst.n, "mentors": inst.m})
