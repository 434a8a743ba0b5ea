"""The matching instance as arrays: the hard rules and the pairing costs, vectorised over blocks of
rotators x all mentors, plus the week grid (residual seats per mentor and week) every method works on.

Every method of the solver (:mod:`.lp`, :mod:`.flow`, :mod:`.greedy`) and the explanations
(:mod:`.explain`) read the rules and costs from :class:`Instance`; the independent checker
(:mod:`.check`) does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from frontline.mentors.solver.problem import Mentor, Rotator, Weights

EPS = 1e-6


class Edges(NamedTuple):
    """Candidate pairs as parallel arrays: rotator index, mentor index and pairing cost."""

    rot: np.ndarray
    ment: np.ndarray
    cost: np.ndarray

    @staticmethod
    def empty() -> Edges:
        none = np.zeros(0, dtype=np.int64)
        return Edges(none, none, none)

    def keys(self, m: int) -> np.ndarray:
        """One integer per pair (``rotator * m + mentor``), for membership tests."""
        return self.rot * m + self.ment

    def take(self, sel: np.ndarray) -> Edges:
        return Edges(self.rot[sel], self.ment[sel], self.cost[sel])

    def join(self, other: Edges) -> Edges:
        return Edges(
            np.concatenate([self.rot, other.rot]),
            np.concatenate([self.ment, other.ment]),
            np.concatenate([self.cost, other.cost]),
        )


class Rules(NamedTuple):
    """Each hard rule as a boolean matrix (rotators of the block, all mentors), and the time-zone distance."""

    dept: np.ndarray
    language: np.ndarray
    tz_distance: np.ndarray
    tz: np.ndarray
    available: np.ndarray
    seat: np.ndarray
    not_previous: np.ndarray

    @property
    def eligible(self) -> np.ndarray:
        return self.dept & self.language & self.tz & self.available & self.seat & self.not_previous


class Pool(NamedTuple):
    """The outcome of a scan (:meth:`Instance.pools`)."""

    edges: Edges  # the selected pairs
    best: np.ndarray  # per rotator: its smallest priced cost over every eligible mentor
    n_eligible: np.ndarray  # per rotator: its number of eligible mentors
    threshold: np.ndarray  # per rotator: the smallest key left out of the selection


def _vocab(items: Iterable[Iterable[str]]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for group in items:
        for item in group:
            vocab.setdefault(item, len(vocab))
    return vocab


def _masks(groups: Sequence[Iterable[str]], vocab: Mapping[str, int]) -> np.ndarray:
    """One row of bits per group (bit ``vocab[item]`` for each of its items in ``vocab``), each distinct set
    of items built once (10k rotators share a few hundred sets of languages and of skills)."""
    words = max(1, math.ceil(len(vocab) / 64))
    distinct: dict[frozenset[str], int] = {}
    index = np.fromiter(
        (distinct.setdefault(frozenset(group), len(distinct)) for group in groups), dtype=np.int64, count=len(groups)
    )
    bits = [sum({1 << vocab[item] for item in items if item in vocab}) for items in distinct]
    word = (1 << 64) - 1
    table = np.array([[b >> (64 * k) & word for k in range(words)] for b in bits], dtype=np.uint64)
    return table.reshape(len(distinct), words)[index]


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


class Instance:
    """Arrays for vectorised eligibility and cost over all (rotator, mentor) pairs."""

    def __init__(self, rotators: Sequence[Rotator], mentors: Sequence[Mentor], w: Weights):
        self.rotators, self.mentors, self.w = rotators, mentors, w
        n, m = len(rotators), len(mentors)
        self.n, self.m = n, m
        for r in rotators:
            if not (0 <= r.start_week < r.end_week):
                raise ValueError(f"rotator {r.key!r}: weeks [{r.start_week}, {r.end_week}) are not a valid range")
        self.H = max([r.end_week for r in rotators] + [1])
        depts = _vocab([[r.dept for r in rotators], [x.dept for x in mentors]])
        self.dept_r = np.array([depts[r.dept] for r in rotators], dtype=np.int32)
        self.dept_m = np.array([depts[x.dept] for x in mentors], dtype=np.int32)
        langs = _vocab([x.languages for x in mentors])
        self.lang_r = _masks([r.languages for r in rotators], langs)
        self.lang_m = _masks([x.languages for x in mentors], langs)
        skills = _vocab([x.skills for x in mentors])
        self.skill_r = _masks([r.skills for r in rotators], skills)
        self.skill_m = _masks([x.skills for x in mentors], skills)
        self.nskill_r = np.array([len(r.skills) for r in rotators], dtype=np.float64)
        self.tz_r = np.array([r.tz_hours for r in rotators], dtype=np.float64)
        self.tz_m = np.array([x.tz_hours for x in mentors], dtype=np.float64)
        self.s = np.array([r.start_week for r in rotators], dtype=np.int64)
        self.e = np.array([r.end_week for r in rotators], dtype=np.int64)
        self.newhire = np.array([r.is_new_hire for r in rotators], dtype=bool)
        self.ever = np.array([x.ever_mentored for x in mentors], dtype=bool)
        self.cap = np.array([max(0, x.capacity) for x in mentors], dtype=np.int64)
        self.annual = np.array([max(0, x.annual_cap) for x in mentors], dtype=np.int64)
        self.load0 = np.array([max(0, x.load_so_far) for x in mentors], dtype=np.float64)
        fb = np.array([3.0 if x.feedback is None else float(x.feedback) for x in mentors], dtype=np.float64)
        self.mentor_const = w.feedback * (5.0 - np.clip(fb, 1.0, 5.0))
        self._week_grid(mentors)
        self.index_m = {x.key: j for j, x in enumerate(mentors)}
        if len(self.index_m) != m:
            raise ValueError("mentor keys must be unique")
        self.index_r = {r.key: i for i, r in enumerate(rotators)}
        if len(self.index_r) != n:
            raise ValueError("rotator keys must be unique")
        self.prev: dict[int, np.ndarray] = {}
        for i, r in enumerate(rotators):
            js = [self.index_m[k] for k in r.previous_mentors if k in self.index_m]
            if js:
                self.prev[i] = np.array(js, dtype=np.int64)

    def _week_grid(self, mentors: Sequence[Mentor]) -> None:
        """Residual weekly seats ``rescap`` (m, H) and prefix counts of unavailable (``U``) and full
        (``F``) weeks (m, H+1): a rotation [s, e) avoids them when ``X[:, e] - X[:, s] == 0``."""
        m, H = self.m, self.H
        self.rescap = np.repeat(self.cap[:, None], H, axis=1)
        unavail = np.zeros((m, H), dtype=np.int32)
        for j, x in enumerate(mentors):
            for wk, taken in x.busy_weeks.items():
                if 0 <= wk < H:
                    self.rescap[j, wk] -= taken
            for wk in x.unavailable_weeks:
                if 0 <= wk < H:
                    unavail[j, wk] = 1
        self.U = np.zeros((m, H + 1), dtype=np.int32)
        np.cumsum(unavail, axis=1, out=self.U[:, 1:])
        self.F = np.zeros((m, H + 1), dtype=np.int32)
        np.cumsum(self.rescap <= 0, axis=1, out=self.F[:, 1:])

    # ---- the hard rules, vectorised over a block of rotators x all mentors ----

    def _shares_language(self, ri: np.ndarray) -> np.ndarray:
        lang = (self.lang_r[ri, 0, None] & self.lang_m[None, :, 0]) != 0
        for k in range(1, self.lang_r.shape[1]):
            lang |= (self.lang_r[ri, k, None] & self.lang_m[None, :, k]) != 0
        return lang

    def _tz_distance(self, ri: np.ndarray) -> np.ndarray:
        return np.abs(self.tz_r[ri, None] - self.tz_m[None, :])

    def _exclude_previous(self, ok: np.ndarray, ri: np.ndarray) -> None:
        for row, i in enumerate(ri):
            js = self.prev.get(int(i))
            if js is not None:
                ok[row, js] = False

    def rules(self, ri: np.ndarray) -> Rules:
        """Each rule as a boolean matrix (len(ri), m), and the time-zone distance."""
        dtz = self._tz_distance(ri)
        s, e = self.s[ri], self.e[ri]
        not_previous = np.ones((len(ri), self.m), dtype=bool)
        self._exclude_previous(not_previous, ri)
        return Rules(
            dept=self.dept_r[ri, None] != self.dept_m[None, :],
            language=self._shares_language(ri),
            tz_distance=dtz,
            tz=dtz <= self.w.max_timezone_gap_hours + 1e-9,
            available=(self.U[:, e] - self.U[:, s]).T == 0,
            seat=((self.F[:, e] - self.F[:, s]).T == 0) & (self.annual[None, :] > 0),
            not_previous=not_previous,
        )

    def free_seats(self, i: int, rescap: np.ndarray, annual: np.ndarray) -> np.ndarray:
        """Per mentor: a seat left for rotator ``i`` in every week of its rotation and under the annual cap."""
        return (rescap[:, self.s[i] : self.e[i]].min(axis=1) > 0) & (annual > 0)

    # ---- the costs ----

    def pair_cost(self, ri: np.ndarray, mi: np.ndarray, dtz: np.ndarray) -> np.ndarray:
        """Cost of the pairs (``ri``, ``mi``: broadcastable index arrays; ``dtz`` their time-zone distance),
        without the load-balance term (see the package docstring)."""
        shared = np.zeros(np.broadcast_shapes(ri.shape, mi.shape))
        for k in range(self.skill_r.shape[1]):
            shared += np.bitwise_count(self.skill_r[ri, k] & self.skill_m[mi, k])
        cost = self.w.timezone_hour * dtz
        cost += self.w.shared_skill * (self.nskill_r[ri] - shared)
        cost += self.mentor_const[mi]
        cost += self.w.first_time_mentor_new_hire * (self.newhire[ri] & ~self.ever[mi])
        return cost

    def cost_block(self, ri: np.ndarray, dtz: np.ndarray) -> np.ndarray:
        """Cost matrix (len(ri), m) of the rotators ``ri`` with every mentor: :meth:`pair_cost`'s values bit
        for bit (the same terms added in the same order), with fewer passes over the matrix: the shared
        skills counted as integers, and the new-hire term added to the new hires' rows only (on the other
        rows it adds 0.0 to a cost >= 0)."""
        w = self.w
        shared = np.bitwise_count(self.skill_r[ri, 0, None] & self.skill_m[None, :, 0])
        if self.skill_r.shape[1] > 1:
            shared = shared.astype(np.int64)
            for k in range(1, self.skill_r.shape[1]):
                shared += np.bitwise_count(self.skill_r[ri, k, None] & self.skill_m[None, :, k])
        cost = w.timezone_hour * dtz
        cost += w.shared_skill * (self.nskill_r[ri, None] - shared)
        cost += self.mentor_const[None, :]
        new_hires = np.nonzero(self.newhire[ri])[0]
        if len(new_hires):
            cost[new_hires] += w.first_time_mentor_new_hire * ~self.ever[None, :]
        return cost

    def pair_costs(self, ri: np.ndarray, mi: np.ndarray) -> np.ndarray:
        """Cost of given pairs (vectors of equal length)."""
        return self.pair_cost(ri, mi, np.abs(self.tz_r[ri] - self.tz_m[mi]))

    def load_cost(self, j: int, count: int) -> float:
        """Load-balance cost of giving ``count`` new rotators to mentor ``j``."""
        b = self.load0[j]
        return float(self.w.load_balance * (count * b + count * (count - 1) / 2))

    def total_cost(self, assign: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective of ``assign`` (mentor index per rotator, -1 unmatched) and each matched pair's cost."""
        matched = np.nonzero(assign >= 0)[0]
        costs = self.pair_costs(matched, assign[matched]) if len(matched) else np.zeros(0)
        per_m = np.bincount(assign[matched], minlength=self.m)
        load = sum(self.load_cost(j, int(c)) for j, c in enumerate(per_m) if c)
        total = float(costs.sum() + load + self.w.unmatched_penalty * (self.n - len(matched)))
        return total, costs

    # ---- scans over every pair ----

    def pools(
        self,
        ri_all: np.ndarray,
        size: int,
        block: int = 512,
        lam_m: np.ndarray | None = None,
        lw: np.ndarray | None = None,
        u: np.ndarray | None = None,
    ) -> Pool:
        """Scan every (rotator in ``ri_all``, mentor) pair against the hard rules.

        Without duals: each rotator's ``size`` cheapest eligible mentors. With duals (``lam_m`` per
        mentor, ``lw`` prefix sums of weekly duals (m, H+1), ``u`` rotator duals): the ``size`` pairs of
        most negative reduced cost ``cost + lam_m + sum(weekly duals) - u``, only those below zero.
        Returns the selected edges (with their base cost), each rotator's smallest priced cost
        (``cost + lam_m + weekly duals``; the plain cost without duals), its number of eligible mentors
        and the smallest key left out of its selection."""
        er, em, ec = [], [], []
        best = np.full(self.n, np.inf)
        thr = np.full(self.n, np.inf)
        count = np.zeros(self.n, dtype=np.int64)
        for b0 in range(0, len(ri_all), block):
            ri = ri_all[b0 : b0 + block]
            rules = self.rules(ri)
            ok = rules.eligible
            base = self.cost_block(ri, rules.tz_distance)
            if lam_m is None or lw is None or u is None:
                key = np.where(ok, base, np.inf)
                priced = key
            else:
                priced = base + lam_m[None, :] + (lw[:, self.e[ri]] - lw[:, self.s[ri]]).T
                priced = np.where(ok, priced, np.inf)
                key = priced - u[ri, None]
                key = np.where(key < -EPS, key, np.inf)
            count[ri] = ok.sum(axis=1)
            best[ri] = priced.min(axis=1) if self.m else np.inf
            k = min(size, self.m)
            if k < self.m:
                part = np.argpartition(key, k, axis=1)
                top = part[:, :k]
                thr[ri] = np.take_along_axis(key, part[:, k : k + 1], axis=1)[:, 0]
            else:
                top = np.tile(np.arange(self.m), (len(ri), 1))
            tk = np.take_along_axis(key, top, axis=1)
            keep = np.isfinite(tk)
            rows = np.repeat(ri, top.shape[1]).reshape(top.shape)
            er.append(rows[keep])
            em.append(top[keep])
            ec.append(np.take_along_axis(base, top, axis=1)[keep])
        edges = Edges(_concat(er, np.int64), _concat(em, np.int64), _concat(ec, np.float64))
        return Pool(edges, best, count, thr)

    def eligible_all(self, block: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every eligible (rotator, mentor) pair, rotator by rotator: (count per rotator, mentor idx
        (int32), cost), the pairs of rotator i being ``[sum(count[:i]), sum(count[:i + 1]))``. The same
        rules as :meth:`rules` (all of them), written for speed: costs only for eligible pairs."""
        count = np.zeros(self.n, dtype=np.int64)
        cols, costs = [], []
        gap = self.w.max_timezone_gap_hours + 1e-9
        # absences and full weeks only matter for the few mentors that have any
        special = np.nonzero((self.U[:, -1] > 0) | (self.F[:, -1] > 0))[0]
        U, F = self.U[special], self.F[special]
        has_seat = self.annual > 0
        for b0 in range(0, self.n, block):
            ri = np.arange(b0, min(self.n, b0 + block))
            ok = self.dept_r[ri, None] != self.dept_m[None, :]
            ok &= has_seat[None, :]
            ok &= self._shares_language(ri)
            dtz = self._tz_distance(ri)
            ok &= dtz <= gap
            if len(special):
                s, e = self.s[ri], self.e[ri]
                ok[:, special] &= ((U[:, e] - U[:, s]) == 0).T & ((F[:, e] - F[:, s]) == 0).T
            self._exclude_previous(ok, ri)
            count[ri] = ok.sum(axis=1)
            okr, okc = np.nonzero(ok)
            cols.append(okc.astype(np.int32))
            costs.append(self.pair_cost(okr + b0, okc, dtz[okr, okc]))
        if not cols:
            return count, np.zeros(0, dtype=np.int32), np.zeros(0)
        return count, np.concatenate(cols), np.concatenate(costs)

    # ---- the week grid ----

    def week_cells(self, em: np.ndarray, es: np.ndarray, ee: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(edge index, cell = mentor * H + week) for every week of every edge (mentor, start, end)."""
        lens = ee - es
        edge_of = np.repeat(np.arange(len(em)), lens)
        weeks = np.repeat(es, lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
        return edge_of, np.repeat(em, lens) * self.H + weeks

    def residual(
        self, assign: np.ndarray, rescap: np.ndarray, annual: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weekly seats and annual caps left after ``assign``, and the new rotators per mentor."""
        matched = np.nonzero(assign >= 0)[0]
        mj = assign[matched]
        _, cell = self.week_cells(mj, self.s[matched], self.e[matched])
        rescap = rescap - np.bincount(cell, minlength=self.m * self.H).reshape(self.m, self.H).astype(rescap.dtype)
        per_m = np.bincount(mj, minlength=self.m)
        return rescap, annual - per_m.astype(annual.dtype), per_m.astype(np.float64)

    def overfull(self, assign: np.ndarray, rescap: np.ndarray) -> np.ndarray:
        """Cells (mentor * H + week) where ``assign`` puts more rotators than the residual seats."""
        matched = np.nonzero(assign >= 0)[0]
        if not len(matched):
            return np.zeros(0, dtype=np.int64)
        _, cell = self.week_cells(assign[matched], self.s[matched], self.e[matched])
        use = np.bincount(cell, minlength=self.m * self.H)
        return np.nonzero(use > np.maximum(rescap.reshape(-1), 0))[0]
