"""Greedy assignment: the baseline (:func:`solve_greedy`) and the safety net of the other methods
(:func:`greedy_fill`: anyone still unmatched takes the cheapest eligible mentor with a free seat)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

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


class _Movers:
    """Where a rotator already paired could move: its eligible mentors and their costs (fixed, computed
    once per rotator), then the cheapest with a seat in the current ``rescap``/``annual`` (which mentors
    have a seat in given weeks is kept until :meth:`seats_changed`)."""

    def __init__(self, inst: Instance, rescap: np.ndarray, annual: np.ndarray):
        self.inst, self.rescap, self.annual = inst, rescap, annual
        self._fixed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._open: dict[tuple[int, int], np.ndarray] = {}

    def seats_changed(self) -> None:
        self._open.clear()

    def _open_in(self, s: int, e: int) -> np.ndarray:
        """Per mentor: a seat in every week ``s``..``e`` and under the annual cap."""
        got = self._open.get((s, e))
        if got is None:
            got = self._open[(s, e)] = (self.rescap[:, s:e].min(axis=1) > 0) & (self.annual > 0)
        return got

    def open_mentor(self, k: int, avoid: int) -> int:
        """The cheapest eligible mentor other than ``avoid`` with a seat for rotator ``k`` in every week of
        its rotation and under the annual cap (-1 if none); ``k``'s own seat with ``avoid`` is never counted
        (``avoid`` is left out)."""
        inst = self.inst
        fixed = self._fixed.get(k)
        if fixed is None:
            rk = np.array([k])
            rules = inst.rules(rk)
            ok = (rules.dept & rules.language & rules.tz & rules.available & rules.not_previous)[0]
            fixed = self._fixed[k] = (ok, inst.cost_block(rk, rules.tz_distance)[0])
        ok, cost = fixed
        free = ok & self._open_in(int(inst.s[k]), int(inst.e[k]))
        free[avoid] = False
        if not free.any():
            return -1
        return int(np.argmin(np.where(free, cost, np.inf)))


def _take(inst: Instance, rescap: np.ndarray, annual: np.ndarray, k: int, j: int, sign: int) -> None:
    """Rotator ``k`` joins (``sign`` -1) or leaves (+1) mentor ``j``: seats and annual cap."""
    rescap[j, inst.s[k] : inst.e[k]] += sign
    annual[j] += sign


def rescue_unmatched(inst: Instance, assign: np.ndarray, limit: int = 2_000, seconds: float = 10.0) -> int:
    """Ejection chains of length one for the unmatched (mutates ``assign``): an unmatched rotator ``i``
    takes mentor ``j`` (eligible, under the annual cap) when one rotator ``k`` of ``j`` covers every week
    in which ``j`` is full and ``k`` can move to another mentor with a seat. Worth it whenever it applies:
    the unmatched penalty is far above any change of pairing costs. Tries at most ``limit`` rotators,
    for at most ``seconds``. Returns how many it matched."""
    deadline = time.perf_counter() + seconds
    rescap, annual, _ = inst.residual(assign, inst.rescap, inst.annual)
    movers = _Movers(inst, rescap, annual)
    by_mentor: dict[int, list[int]] = {}
    for k in np.nonzero(assign >= 0)[0].tolist():
        by_mentor.setdefault(int(assign[k]), []).append(k)
    # (start, end, mentor) with no chain since the last rescue: whether one exists depends on the weeks
    # and the seats only, so rotators of the same weeks skip it (the tight 10k demo: 736 unmatched)
    dead: set[tuple[int, int, int]] = set()
    rescued = 0
    for i, eligible, cost in rules_by_block(inst, np.nonzero(assign < 0)[0][:limit]):
        if time.perf_counter() > deadline:
            break
        ok = eligible & (annual > 0)
        if not ok.any():
            continue
        s, e = int(inst.s[i]), int(inst.e[i])
        for j in np.nonzero(ok)[0][np.argsort(cost[ok], kind="stable")].tolist():
            if (s, e, j) in dead:
                continue
            chain = _chain(inst, rescap, by_mentor, movers, s, e, j)
            if chain is None:
                dead.add((s, e, j))
                continue
            mover, target = chain
            if mover >= 0:
                _take(inst, rescap, annual, mover, j, +1)
                _take(inst, rescap, annual, mover, target, -1)
                assign[mover] = target
                by_mentor[j].remove(mover)
                by_mentor.setdefault(target, []).append(mover)
            _take(inst, rescap, annual, i, j, -1)
            assign[i] = j
            by_mentor.setdefault(j, []).append(i)
            rescued += 1
            dead.clear()  # the seats changed
            movers.seats_changed()
            break
    return rescued


def rules_by_block(inst: Instance, rots: np.ndarray, block: int = 256) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Each rotator of ``rots`` in order with its eligible mentors (every rule but the seats) and its costs,
    computed for ``block`` rotators at once."""
    for b0 in range(0, len(rots), block):
        ri = rots[b0 : b0 + block]
        rules = inst.rules(ri)
        ok = rules.dept & rules.language & rules.tz & rules.available & rules.not_previous
        cost = inst.cost_block(ri, rules.tz_distance)
        for row, i in enumerate(ri.tolist()):
            yield i, ok[row], cost[row]


def _chain(
    inst: Instance, rescap: np.ndarray, by_mentor: dict[int, list[int]], movers: _Movers, s: int, e: int, j: int
) -> tuple[int, int] | None:
    """How a rotator of weeks ``s``..``e`` can take mentor ``j``: (-1, -1) a seat is free after all; (``k``,
    ``t``) the first rotator ``k`` of ``j`` covering every week in which ``j`` is full moves to mentor
    ``t``; None when neither."""
    full = np.nonzero(rescap[j, s:e] <= 0)[0] + s
    if not len(full):
        return -1, -1
    if (rescap[j, full] < 0).any():
        return None
    mover = next((k for k in by_mentor.get(j, []) if inst.s[k] <= full[0] and inst.e[k] > full[-1]), -1)
    if mover < 0:
        return None
    target = movers.open_mentor(mover, j)
    return (mover, target) if target >= 0 else None
