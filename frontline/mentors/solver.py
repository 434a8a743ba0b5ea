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

Method (:func:`solve`): one vectorised pass over all rotator x mentor pairs checks the hard rules and
keeps each rotator's ``pool_size`` cheapest eligible mentors (plus the cost threshold below which no
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

Large instances (rotators x mentors above ``lp_pairs``; :func:`_solve_flow`): one full-year
transportation min-cost flow (OR-Tools ``SimpleMinCostFlow``, imported lazily: never import
``highspy`` in the same process) with the annual caps and the convex load cost (one unit arc per
annual seat) but WITHOUT the weekly concurrency rows, so its optimum is a relaxation. It runs on
candidate pairs: each rotator's cheapest eligible mentors plus a few pseudo-random ones; every round
the flow's potentials (shortest distances to the sink in the residual graph) price EVERY eligible
pair, pairs of negative reduced cost join, and the Lagrangian value of those potentials over every
eligible pair, in the original float costs, is the lower bound (valid for the whole problem: it
relaxes the weekly rows and prices the rest exactly; the integer scaling of the costs only affects
which potentials are tried). Then the weeks the flow overfills are repaired: every rotator in an
overfilled (mentor, week) cell is freed and re-assigned by an exact HiGHS MIP on the capacity left
(weekly rows included), anyone still left takes the cheapest mentor with a free seat. The result has
no weekly violation by construction (checked).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

EPS = 1e-6


@dataclass(frozen=True)
class Rotator:
    key: Hashable
    dept: str
    languages: frozenset[str]
    skills: frozenset[str]
    tz_hours: float
    start_week: int
    end_week: int  # exclusive
    previous_mentors: frozenset = frozenset()
    is_new_hire: bool = False
    name: str = ""


@dataclass(frozen=True)
class Mentor:
    key: Hashable
    dept: str
    languages: frozenset[str]
    skills: frozenset[str]
    tz_hours: float
    capacity: int  # rotators at once in any week
    annual_cap: int  # new rotators this horizon may still add
    unavailable_weeks: frozenset[int] = frozenset()
    ever_mentored: bool = False
    feedback: float | None = None  # average pairing feedback 1..5
    load_so_far: int = 0  # rotators already given this year (load-balance cost starts here)
    busy_weeks: Mapping[int, int] = field(default_factory=dict)  # week -> seats taken by kept pairings
    name: str = ""


@dataclass(frozen=True)
class Weights:
    max_timezone_gap_hours: float = 6.0
    shared_skill: float = 3.0
    timezone_hour: float = 1.0
    load_balance: float = 0.5
    feedback: float = 2.0
    first_time_mentor_new_hire: float = 5.0
    unmatched_penalty: float = 1000.0

    @classmethod
    def from_policy(cls, mentoring) -> Weights:
        """From ``policy.mentoring`` (a :class:`frontline.core.policy.Mentoring`)."""
        return cls(
            max_timezone_gap_hours=float(mentoring.max_timezone_gap_hours),
            shared_skill=mentoring.weight_shared_skill,
            timezone_hour=mentoring.weight_timezone_hour,
            load_balance=mentoring.weight_load_balance,
            feedback=mentoring.weight_feedback,
            first_time_mentor_new_hire=mentoring.weight_first_time_mentor_new_hire,
            unmatched_penalty=getattr(mentoring, "unmatched_penalty", 1000.0),
        )


@dataclass
class Unmatched:
    key: Hashable
    reason: str
    relaxation: str | None = None


@dataclass
class Solution:
    assignments: dict[Hashable, Hashable]  # rotator key -> mentor key
    costs: dict[Hashable, float]  # rotator key -> pairing cost (without the load-balance term)
    unmatched: list[Unmatched]
    objective: float
    bound: float | None
    gap: float | None  # (objective - bound) / objective
    seconds: float
    method: str
    stats: dict = field(default_factory=dict)

    @property
    def matched(self) -> int:
        return len(self.assignments)


# --------------------------------------------------------------------------------------------------
# Vectorised problem data


def _vocab(items: Iterable[Iterable[str]]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for group in items:
        for item in group:
            vocab.setdefault(item, len(vocab))
    return vocab


def _masks(groups: Sequence[Iterable[str]], vocab: Mapping[str, int]) -> np.ndarray:
    words = max(1, math.ceil(len(vocab) / 64))
    out = np.zeros((len(groups), words), dtype=np.uint64)
    for i, group in enumerate(groups):
        for item in group:
            j = vocab.get(item)
            if j is not None:
                out[i, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    return out


class _Data:
    """Arrays for vectorised eligibility and cost over all (rotator, mentor) pairs."""

    def __init__(self, rotators: Sequence[Rotator], mentors: Sequence[Mentor], w: Weights):
        self.rotators, self.mentors, self.w = rotators, mentors, w
        n, m = len(rotators), len(mentors)
        self.n, self.m = n, m
        for r in rotators:
            if not (0 <= r.start_week < r.end_week):
                raise ValueError(f"rotator {r.key!r}: weeks [{r.start_week}, {r.end_week}) are not a valid range")
        self.H = H = max([r.end_week for r in rotators] + [1])
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
        # residual weekly capacity (m, H) and prefix counts of unavailable / full weeks (m, H+1)
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

    # ---- rules, vectorised over a block of rotators x all mentors ----
    def static_parts(self, ri: np.ndarray, max_gap: float | None = None):
        """Boolean matrices (len(ri), m) for each rule, and the tz distance."""
        max_gap = self.w.max_timezone_gap_hours if max_gap is None else max_gap
        dept_ok = self.dept_r[ri, None] != self.dept_m[None, :]
        lang_ok = np.zeros((len(ri), self.m), dtype=bool)
        for k in range(self.lang_r.shape[1]):
            lang_ok |= (self.lang_r[ri, k, None] & self.lang_m[None, :, k]) != 0
        dtz = np.abs(self.tz_r[ri, None] - self.tz_m[None, :])
        tz_ok = dtz <= max_gap + 1e-9
        s, e = self.s[ri], self.e[ri]
        avail_ok = (self.U[:, e] - self.U[:, s]).T == 0
        seat_ok = ((self.F[:, e] - self.F[:, s]).T == 0) & (self.annual[None, :] > 0)
        prev_ok = np.ones((len(ri), self.m), dtype=bool)
        for row, i in enumerate(ri):
            js = self.prev.get(int(i))
            if js is not None:
                prev_ok[row, js] = False
        return dept_ok, lang_ok, dtz, tz_ok, avail_ok, seat_ok, prev_ok

    def cost_block(self, ri: np.ndarray, dtz: np.ndarray) -> np.ndarray:
        shared = np.zeros((len(ri), self.m), dtype=np.float64)
        for k in range(self.skill_r.shape[1]):
            shared += np.bitwise_count(self.skill_r[ri, k, None] & self.skill_m[None, :, k])
        cost = self.w.timezone_hour * dtz
        cost += self.w.shared_skill * (self.nskill_r[ri, None] - shared)
        cost += self.mentor_const[None, :]
        cost += self.w.first_time_mentor_new_hire * (self.newhire[ri, None] & ~self.ever[None, :])
        return cost

    def pair_costs(self, ri: np.ndarray, mi: np.ndarray) -> np.ndarray:
        """Cost of given pairs (vectors of equal length)."""
        dtz = np.abs(self.tz_r[ri] - self.tz_m[mi])
        shared = np.zeros(len(ri))
        for k in range(self.skill_r.shape[1]):
            shared += np.bitwise_count(self.skill_r[ri, k] & self.skill_m[mi, k])
        return (
            self.w.timezone_hour * dtz
            + self.w.shared_skill * (self.nskill_r[ri] - shared)
            + self.mentor_const[mi]
            + self.w.first_time_mentor_new_hire * (self.newhire[ri] & ~self.ever[mi])
        )

    def pools(self, ri_all: np.ndarray, size: int, block: int = 512, lam_m=None, lw=None, u=None):
        """Scan every (rotator in ``ri_all``, mentor) pair against the hard rules.

        Without duals: each rotator's ``size`` cheapest eligible mentors. With duals (``lam_m`` per
        mentor, ``lw`` prefix sums of weekly duals (m, H+1), ``u`` rotator duals): the ``size`` pairs of
        most negative reduced cost ``cost + lam_m + sum(weekly duals) - u``, only those below zero.
        Returns edge arrays (rotator idx, mentor idx, base cost), each rotator's smallest priced cost
        (``cost + lam_m + weekly duals``; the plain cost without duals) and its number of eligible mentors."""
        er, em, ec = [], [], []
        best = np.full(self.n, np.inf)
        self.last_threshold = thr = np.full(self.n, np.inf)  # smallest key left out of the selection
        count = np.zeros(self.n, dtype=np.int64)
        for b0 in range(0, len(ri_all), block):
            ri = ri_all[b0 : b0 + block]
            dept_ok, lang_ok, dtz, tz_ok, avail_ok, seat_ok, prev_ok = self.static_parts(ri)
            ok = dept_ok & lang_ok & tz_ok & avail_ok & seat_ok & prev_ok
            base = self.cost_block(ri, dtz)
            if lam_m is None:
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
        cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dtype=dt)  # noqa: E731
        return cat(er, np.int64), cat(em, np.int64), cat(ec, np.float64), best, count

    def eligible_all(self, block: int = 512):
        """Every eligible (rotator, mentor) pair, rotator by rotator: (count per rotator, mentor idx
        (int32), cost), the pairs of rotator i being ``[sum(count[:i]), sum(count[:i + 1]))``. The same
        rules as :meth:`static_parts` (all of them), written for speed: costs only for eligible pairs."""
        count = np.zeros(self.n, dtype=np.int64)
        cols, costs = [], []
        gap = self.w.max_timezone_gap_hours + 1e-9
        # absences and full weeks only matter for the few mentors that have any
        special = np.nonzero((self.U[:, -1] > 0) | (self.F[:, -1] > 0))[0]
        U, F = self.U[special], self.F[special]
        has_seat = self.annual > 0
        words_l, words_s = self.lang_r.shape[1], self.skill_r.shape[1]
        for b0 in range(0, self.n, block):
            ri = np.arange(b0, min(self.n, b0 + block))
            ok = self.dept_r[ri, None] != self.dept_m[None, :]
            ok &= has_seat[None, :]
            lang = (self.lang_r[ri, 0, None] & self.lang_m[None, :, 0]) != 0
            for k in range(1, words_l):
                lang |= (self.lang_r[ri, k, None] & self.lang_m[None, :, k]) != 0
            ok &= lang
            dtz = np.abs(self.tz_r[ri, None] - self.tz_m[None, :])
            ok &= dtz <= gap
            if len(special):
                s, e = self.s[ri], self.e[ri]
                ok[:, special] &= ((U[:, e] - U[:, s]) == 0).T & ((F[:, e] - F[:, s]) == 0).T
            for row, i in enumerate(ri):
                js = self.prev.get(int(i))
                if js is not None:
                    ok[row, js] = False
            count[ri] = ok.sum(axis=1)
            okr, okc = np.nonzero(ok)
            gr = okr + b0
            shared = np.zeros(len(okr))
            for k in range(words_s):
                shared += np.bitwise_count(self.skill_r[gr, k] & self.skill_m[okc, k])
            c = self.w.timezone_hour * dtz[okr, okc]
            c += self.w.shared_skill * (self.nskill_r[gr] - shared)
            c += self.mentor_const[okc]
            c += self.w.first_time_mentor_new_hire * (self.newhire[gr] & ~self.ever[okc])
            cols.append(okc.astype(np.int32))
            costs.append(c)
        if not cols:
            return count, np.zeros(0, dtype=np.int32), np.zeros(0)
        return count, np.concatenate(cols), np.concatenate(costs)

    def load_costs(self, j: int, count: int, base_extra: int = 0) -> float:
        """Load-balance cost of giving ``count`` new rotators to mentor ``j``."""
        b = self.load0[j] + base_extra
        return self.w.load_balance * (count * b + count * (count - 1) / 2)


# --------------------------------------------------------------------------------------------------
# The LP / MIP model over a set of candidate edges


def _expand(d: _Data, em: np.ndarray, es: np.ndarray, ee: np.ndarray):
    """(edge index, cell = mentor * H + week) for every week of every edge."""
    lens = ee - es
    edge_of = np.repeat(np.arange(len(em)), lens)
    weeks = np.repeat(es, lens) + (np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens))
    return edge_of, np.repeat(em, lens) * d.H + weeks


def _weekly_rows(d: _Data, em: np.ndarray, es: np.ndarray, ee: np.ndarray, rescap: np.ndarray, allowed=None):
    """Weekly concurrency rows that can bind for the edges (mentor, start, end).

    Returns (row_m, row_w, entries_edge, entries_row): a row (m, w) exists when the edges of m active
    in week w outnumber the residual seats, and it is not dominated by the row of the week before
    (no edge starts in w and w has no fewer seats). ``allowed`` (bool per cell) restricts the rows to
    those cells (lazy rows: the others are checked on the LP solution and added when violated)."""
    H = d.H
    edge_of, cell = _expand(d, em, es, ee)
    counts = np.bincount(cell, minlength=d.m * H)
    starts = np.zeros(d.m * H, dtype=bool)
    starts[em * H + es] = True
    flat_res = rescap.reshape(-1)
    need = counts > np.maximum(flat_res, 0)
    wk = np.arange(d.m * H) % H
    prev_res = np.where(wk > 0, np.roll(flat_res, 1), np.iinfo(np.int64).min)
    dominated = (~starts) & (wk > 0) & (flat_res >= prev_res)
    need &= ~dominated
    if allowed is not None:
        need &= allowed
    row_id = np.full(d.m * H, -1, dtype=np.int64)
    cells = np.nonzero(need)[0]
    row_id[cells] = np.arange(len(cells))
    r_of_entry = row_id[cell]
    sel = r_of_entry >= 0
    return cells // H, cells % H, edge_of[sel], r_of_entry[sel]


class _Model:
    """min sum c_e x_e + P sum s_r + sum q_mk z_mk over a candidate edge set."""

    def __init__(self, d: _Data, rots: np.ndarray, er, em, ec, rescap, annual, load_extra, allowed=None):
        self.d = d
        self.rots = rots  # rotator indices in this model
        self.er, self.em, self.ec = er, em, ec
        E = len(er)
        pos = np.full(d.n, -1, dtype=np.int64)
        pos[rots] = np.arange(len(rots))
        self.rpos = pos[er]
        ments = np.unique(em)
        self.ments = ments
        mpos = np.full(d.m, -1, dtype=np.int64)
        mpos[ments] = np.arange(len(ments))
        self.mpos = mpos[em]
        ncand = np.bincount(em, minlength=d.m)[ments]
        zc = np.minimum(annual[ments], ncand)
        self.zc = zc
        self.z_m = np.repeat(np.arange(len(ments)), zc)
        k = np.arange(zc.sum()) - np.repeat(np.cumsum(zc) - zc, zc)
        self.z_cost = d.w.load_balance * (d.load0[ments][self.z_m] + load_extra[ments][self.z_m] + k)
        Z = len(self.z_m)
        R = len(rots)
        self.E, self.R, self.Z = E, R, Z
        self.c = np.concatenate([ec, np.full(R, d.w.unmatched_penalty), self.z_cost])
        # equality: assignment rows
        rows = np.concatenate([self.rpos, np.arange(R)])
        cols = np.concatenate([np.arange(E), E + np.arange(R)])
        self.A_eq = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(R, E + R + Z))
        # inequality: mentor load rows, then weekly rows
        Mn = len(ments)
        ri1 = np.concatenate([self.mpos, self.z_m])
        ci1 = np.concatenate([np.arange(E), E + R + np.arange(Z)])
        vi1 = np.concatenate([np.ones(E), -np.ones(Z)])
        es, ee = d.s[er], d.e[er]
        self.wrow_m, self.wrow_w, ent_e, ent_r = _weekly_rows(d, em, es, ee, rescap, allowed)
        W = len(self.wrow_m)
        rows = np.concatenate([ri1, Mn + ent_r])
        cols = np.concatenate([ci1, ent_e])
        vals = np.concatenate([vi1, np.ones(len(ent_e))])
        self.A_ub = sparse.csr_array((vals, (rows, cols)), shape=(Mn + W, E + R + Z))
        self.b_ub = np.concatenate([np.zeros(Mn), np.maximum(rescap[self.wrow_m, self.wrow_w], 0)]).astype(float)
        self.Mn, self.W = Mn, W

    def solve_lp(self):
        res = linprog(
            self.c,
            A_ub=self.A_ub if self.A_ub.shape[0] else None,
            b_ub=self.b_ub if self.A_ub.shape[0] else None,
            A_eq=self.A_eq,
            b_eq=np.ones(self.R),
            bounds=(0, 1),
            method="highs-ds",
            options={"presolve": False},
        )
        if res.status != 0:
            raise RuntimeError(f"LP relaxation failed: {res.message}")
        u = res.eqlin.marginals  # rotator duals
        lam = -res.ineqlin.marginals if self.A_ub.shape[0] else np.zeros(0)  # >= 0
        return res.fun, res.x, u, lam

    def solve_mip(self, time_limit: float):
        integrality = np.concatenate([np.ones(self.E + self.R), np.zeros(self.Z)])
        cons = [LinearConstraint(self.A_eq, 1, 1)]
        if self.A_ub.shape[0]:
            cons.append(LinearConstraint(self.A_ub, -np.inf, self.b_ub))
        res = milp(
            self.c,
            constraints=cons,
            integrality=integrality,
            bounds=Bounds(0, 1),
            options={"time_limit": max(0.5, time_limit), "mip_rel_gap": 1e-6},
        )
        self.mip_dual_bound = getattr(res, "mip_dual_bound", None)
        self.mip_optimal = res.status == 0
        if res.x is None:
            return None
        return res.x


# --------------------------------------------------------------------------------------------------
# Public API


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
    ``lp_pairs``: LP column generation; above: the min-cost flow with weekly repair), ``"mip"``,
    ``"lp"`` or ``"flow"``."""
    if method not in ("auto", "mip", "flow", "lp"):
        raise ValueError(f"unknown method {method!r} (auto, mip, flow or lp)")
    t0 = time.perf_counter()
    c0 = time.process_time()
    d = _Data(rotators, mentors, weights)
    stats: dict = {"rotators": d.n, "mentors": d.m}
    if d.n == 0:
        return Solution({}, {}, [], 0.0, 0.0, 0.0, time.perf_counter() - t0, "empty", stats)
    P = weights.unmatched_penalty
    all_r = np.arange(d.n)
    # one scan of every pair: each rotator's ``pool_size`` cheapest eligible mentors (priced cheaply in
    # every round) and the cost threshold below which no eligible mentor lies outside the pool
    if method == "flow" or (method == "auto" and d.n * d.m > max(exact_pairs, lp_pairs)):
        return _solve_flow(
            d,
            t0,
            c0,
            stats,
            scale=flow_scale,
            rounds=flow_rounds,
            pool=flow_pool,
            random_arcs=flow_random_arcs,
            band=flow_band,
            gap_target=gap_target,
            time_limit=time_limit,
        )
    pr, pm, pc, _best, count = d.pools(all_r, pool_size)
    pthr = d.last_threshold.copy()
    # the Lagrangian bound with all multipliers at zero: everyone gets their cheapest eligible mentor
    bound0 = float(np.minimum(P, _best[count > 0]).sum() + P * int((count == 0).sum()))
    order = np.lexsort((pc, pr))
    pr, pm, pc = pr[order], pm[order], pc[order]
    prank = np.arange(len(pr)) - np.searchsorted(pr, pr)
    start_sel = prank < initial_candidates
    er, em, ec = pr[start_sel], pm[start_sel], pc[start_sel]
    stats["eligible_pairs"] = int(count.sum())
    stats["t_scan"] = round(time.perf_counter() - t0, 3)
    rots = np.nonzero(count > 0)[0]
    if len(rots) == 0:  # nobody has an eligible mentor
        stats["t_total"] = round(time.perf_counter() - t0, 3)
        return _finish(d, np.full(d.n, -1, dtype=np.int64), P * d.n, "no-eligible-pairs", t0, stats)
    rescap = d.rescap.copy()
    annual = d.annual.copy()
    zero_extra = np.zeros(d.m)
    if method == "mip" or (method == "auto" and d.n * d.m <= exact_pairs):
        # small: one exact MIP over every eligible pair (proven optimum, or HiGHS's dual bound)
        fr, fm, fc, _, _ = d.pools(rots, d.m)
        full = _Model(d, rots, fr, fm, fc, rescap, annual, zero_extra)
        xs = full.solve_mip(time_limit)
        if xs is not None:
            assign = np.full(d.n, -1, dtype=np.int64)
            pick = xs[: full.E] > 0.5
            assign[full.er[pick]] = full.em[pick]
            stats["model_edges"] = full.E
            stats["t_total"] = round(time.perf_counter() - t0, 3)
            total = _objective(d, assign)[0]
            dual = full.mip_dual_bound if full.mip_dual_bound is not None else -np.inf
            bound = total if full.mip_optimal else max(bound0, float(dual))
            return _finish(d, assign, bound, "mip-exact" if full.mip_optimal else "mip", t0, stats)
    bound = bound0
    lp_value = None
    iterations = 0
    x = None
    model = None
    allowed = np.zeros(d.m * d.H, dtype=bool) if lazy_rows else None
    flat_res = np.maximum(rescap.reshape(-1), 0)
    while True:
        iterations += 1
        t_it = time.process_time()
        model = _Model(d, rots, er, em, ec, rescap, annual, zero_extra, allowed)
        lp_value, x, u_r, lam = model.solve_lp()
        t_lp = time.process_time() - t_it
        rows_added = 0
        if allowed is not None:  # weekly rows the LP solution violates join the model
            edge_of, cell = _expand(d, model.em, d.s[model.er], d.e[model.er])
            use = np.bincount(cell, weights=x[edge_of], minlength=d.m * d.H)
            bad = (use > flat_res + EPS) & ~allowed
            rows_added = int(bad.sum())
            if rows_added:  # every row of a mentor with a violated week (they tend to come in runs)
                hot = np.unique(np.nonzero(bad)[0] // d.H)
                allowed.reshape(d.m, d.H)[hot, :] = True
        # price every eligible pair; the duals give a Lagrangian bound valid for the whole problem
        lam_m = np.zeros(d.m)
        lam_m[model.ments] = lam[: model.Mn]
        lw = np.zeros((d.m, d.H + 1))
        np.add.at(lw, (model.wrow_m, model.wrow_w + 1), lam[model.Mn :])
        lw = np.cumsum(lw, axis=1)
        u_full = np.zeros(d.n)
        u_full[rots] = u_r
        in_model = np.isin(pr * d.m + pm, er * d.m + em)
        pbar = pc + lam_m[pm] + lw[pm, d.e[pr]] - lw[pm, d.s[pr]]
        best = np.full(d.n, np.inf)
        np.minimum.at(best, pr, pbar)
        best = np.minimum(best, pthr)  # outside the pool: priced cost >= cost >= threshold
        full_scan = False
        rc = pbar - u_full[pr]
        cand = np.nonzero((rc < -EPS) & ~in_model)[0]
        if len(cand):  # at most columns_per_round per rotator, most negative first
            o = cand[np.lexsort((rc[cand], pr[cand]))]
            rk = np.arange(len(o)) - np.searchsorted(pr[o], pr[o])
            o = o[rk < columns_per_round]
            nr, nm, nc = pr[o], pm[o], pc[o]
        else:
            nr = nm = nc = np.zeros(0, dtype=np.int64)
        zterm = 0.0
        for j in np.nonzero(lam_m > EPS)[0]:
            q = weights.load_balance * (d.load0[j] + np.arange(annual[j]))
            zterm += np.minimum(0.0, q - lam_m[j]).sum()
        capterm = -(lam[model.Mn :] * model.b_ub[model.Mn :]).sum()
        pool_bound = np.minimum(P, best[rots]).sum() + P * (d.n - len(rots)) + zterm + capterm
        bound = max(bound, pool_bound)
        nearly_priced_out = rows_added == 0 and len(nr) <= 0.005 * len(rots)
        if nearly_priced_out and (lp_value - bound) > gap_target * max(lp_value, 1e-9) / 4:
            # the pool is (nearly) priced out: scan every eligible pair (exact pricing and bound)
            full_scan = True
            fr, fm, fc, fbest, _ = d.pools(rots, columns_per_round, lam_m=lam_m, lw=lw, u=u_full)
            new = ~np.isin(fr * d.m + fm, np.concatenate([er * d.m + em, nr * d.m + nm]))
            nr, nm, nc = np.concatenate([nr, fr[new]]), np.concatenate([nm, fm[new]]), np.concatenate([nc, fc[new]])
            full_bound = np.minimum(P, fbest[rots]).sum() + P * (d.n - len(rots)) + zterm + capterm
            bound = max(bound, full_bound)
        stats.setdefault("lp_log", []).append(
            (model.E, model.W, rows_added, len(nr), full_scan, round(t_lp, 2), round(time.process_time() - t_it, 2))
        )
        if len(nr) == 0 and rows_added == 0:
            break
        if rows_added == 0 and (lp_value - bound) <= gap_target * max(lp_value, 1e-9) / 4:
            break  # (the bound is valid as it stands: pool prices plus the outside-pool thresholds)
        if iterations >= max_rounds or time.perf_counter() - t0 > time_limit / 2:
            if not full_scan:  # stopped early: still report the exact bound for these duals
                fbest = d.pools(rots, 1, lam_m=lam_m, lw=lw, u=u_full)[3]
                bound = max(bound, np.minimum(P, fbest[rots]).sum() + P * (d.n - len(rots)) + zterm + capterm)
            break
        er, em, ec = np.concatenate([er, nr]), np.concatenate([em, nm]), np.concatenate([ec, nc])
    stats["lp_iterations"] = iterations
    stats["lp_value"] = round(float(lp_value), 4)
    stats["model_edges"] = model.E
    stats["lp_bound_gap"] = round(float((lp_value - bound) / max(lp_value, 1e-9)), 6)
    stats["weekly_rows"] = model.W
    stats["t_lp"] = round(time.perf_counter() - t0, 3)

    # ---- integer solution: fix integral LP values, solve the rest exactly ----
    xe = x[: model.E]
    fixed = xe > 1 - EPS
    if allowed is not None:  # lazy rows: never fix an assignment that overfills a week
        edge_of, cell = _expand(d, model.em, d.s[model.er], d.e[model.er])
        sel = fixed[edge_of]
        use = np.bincount(cell[sel], minlength=d.m * d.H)
        over = use > flat_res
        if over.any():
            fixed[np.unique(edge_of[sel][over[cell[sel]]])] = False
    assign = np.full(d.n, -1, dtype=np.int64)
    assign[model.er[fixed]] = model.em[fixed]
    sr = x[model.E : model.E + model.R]
    settled = np.zeros(d.n, dtype=bool)
    settled[model.er[fixed]] = True
    settled[rots[sr > 1 - EPS]] = True  # LP leaves them unmatched integrally
    rest = rots[~settled[rots]]
    stats["fractional_rotators"] = len(rest)
    method = "lp-integral" if len(rest) == 0 else "lp+mip"
    if len(rest):
        used_rescap, used_annual, extra = _residual(d, assign, rescap, annual)
        sel = np.isin(model.er, rest)
        sub = _Model(d, rest, model.er[sel], model.em[sel], model.ec[sel], used_rescap, used_annual, extra)
        xs = sub.solve_mip(time_limit - (time.perf_counter() - t0))
        if xs is not None:
            pick = xs[: sub.E] > 0.5
            assign[sub.er[pick]] = sub.em[pick]
        else:  # pragma: no cover - MIP found nothing in time: greedy on the rest
            method = "lp+greedy"
            _greedy_fill(d, assign, rest, used_rescap, used_annual)
    # safety net (matters only when the rounds were cut short): anyone still unmatched takes the
    # cheapest eligible mentor with a free seat left, if there is one
    left = rots[assign[rots] < 0]
    if len(left):
        used_rescap, used_annual, _ = _residual(d, assign, rescap, annual)
        _greedy_fill(d, assign, left, used_rescap, used_annual)
        stats["filled_greedily"] = int((assign[left] >= 0).sum())
    total = _objective(d, assign)[0]
    if total - bound > gap_target * total:  # rounds cut short: work on the bound a little more
        lam_w = np.zeros((d.m, d.H))
        lam_w[model.wrow_m, model.wrow_w] = lam[model.Mn :]
        improved = _improve_bound(d, (pr, pm, pc, pthr), rots, annual, rescap, P, lam_m, lam_w, total)
        stats["bound_improved_from"] = round(float(bound), 3)
        bound = max(bound, improved)
    stats["t_total"] = round(time.perf_counter() - t0, 3)
    stats["cpu_total"] = round(time.process_time() - c0, 3)
    return _finish(d, assign, bound, method, t0, stats)


def _load_term(d: _Data, annual: np.ndarray, lam_m: np.ndarray) -> float:
    """Lagrangian load term: sum over mentors of min over z of (load cost of z rotators - lam * z),
    0 <= z <= annual cap (the load cost is convex, so z counts the increments cheaper than lam)."""
    w = d.w.load_balance
    if w > 0:
        c = np.clip(np.ceil(lam_m / w - d.load0 - 1e-12), 0, annual).astype(np.float64)
    else:
        c = np.where(lam_m > 0, annual, 0).astype(np.float64)
    return float((c * (w * d.load0 - lam_m) + w * c * (c - 1) / 2).sum())


def _flow_assign(d: _Data, rots, er, em, ec, annual, scale: int):
    """Min-cost flow (OR-Tools) over the candidate edges with the annual caps, WITHOUT the weekly
    concurrency rows: rotator -> mentor (cost), rotator -> sink (the unmatched penalty), mentor -> sink
    one unit arc per remaining annual seat (the convex load cost). Costs are scaled to integers.
    Returns (assign over all rotators, mentor potentials lam_m >= 0 and rotator potentials u, in
    original units): the optimal dual of this flow, found as shortest distances to the sink in the
    residual graph (Bellman-Ford over integer costs, so there is no negative cycle)."""
    from ortools.graph.python import min_cost_flow  # lazy: never imported together with highspy

    R, m = len(rots), d.m
    T = R + m
    pos = np.full(d.n, -1, dtype=np.int64)
    pos[rots] = np.arange(R)
    P = d.w.unmatched_penalty
    ce = np.rint(ec * scale).astype(np.int64)
    cp = int(round(P * scale))
    lm = np.repeat(np.arange(m), annual)
    lk = np.arange(len(lm)) - np.repeat(np.cumsum(annual) - annual, annual)
    lw, l0 = d.w.load_balance, d.load0
    cq = np.rint(scale * lw * (l0[lm] + lk)).astype(np.int64)
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
    f = flow.flows(np.arange(len(tails), dtype=np.int32))
    E = len(er)
    used = f[:E] > 0
    assign = np.full(d.n, -1, dtype=np.int64)
    assign[er[used]] = em[used]
    # residual graph, as arcs (from, to, cost) towards the sink: unused edges forward, used ones back
    load = np.bincount(em[used], minlength=m)
    nxt = np.nonzero(load < annual)[0]
    nxt_cost = np.rint(scale * lw * (l0[nxt] + load[nxt])).astype(np.int64)
    un = np.nonzero(assign[rots] < 0)[0]  # unmatched rotators: their sink arc is used (no forward arc)
    free_sink = np.ones(R, dtype=bool)
    free_sink[un] = False
    src = np.concatenate([pos[er[~used]], R + em[used], np.nonzero(free_sink)[0], R + nxt])
    dst = np.concatenate([R + em[~used], pos[er[used]], np.full(int(free_sink.sum()), T), np.full(len(nxt), T)])
    cst = np.concatenate([ce[~used], -ce[used], np.full(int(free_sink.sum()), cp), nxt_cost]).astype(np.float64)
    dist = np.full(T + 1, np.inf)
    dist[T] = 0.0
    order = np.argsort(src, kind="stable")
    src, dst, cst = src[order], dst[order], cst[order]
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]]) if len(src) else np.zeros(0, dtype=np.int64)
    heads_of = src[starts]
    for _ in range(T + 1):  # Bellman-Ford (vectorised rounds; stops when nothing changes)
        cand = np.minimum.reduceat(cst + dist[dst], starts) if len(src) else np.zeros(0)
        better = cand < dist[heads_of]
        if not better.any():
            break
        dist[heads_of[better]] = cand[better]
    lam_m = np.maximum(0.0, np.where(np.isfinite(dist[R:T]), dist[R:T], 0.0)) / scale
    u = np.zeros(d.n)
    u[rots] = np.where(np.isfinite(dist[:R]), dist[:R], cp) / scale
    return assign, lam_m, u


def _solve_flow(
    d: _Data,
    t0: float,
    c0: float,
    stats: dict,
    *,
    scale: int,
    rounds: int,
    pool: int,
    random_arcs: int,
    band: float,
    gap_target: float,
    time_limit: float,
    repair_pairs: int = 100_000,
) -> Solution:
    """Large instances: min-cost flow over the year with the annual caps (a relaxation: no weekly
    concurrency rows) on candidate pairs, priced against EVERY eligible pair; then a small exact MIP
    repairs the weeks the flow overfills (see the module docstring).

    Candidates: each rotator's ``pool`` cheapest eligible pairs within ``band`` of its cheapest (ties
    broken pseudo-randomly, not by mentor index) plus ``random_arcs`` pseudo-random eligible pairs
    (the popular mentors fill up: without them the first flow would be poor or leave people
    unmatched). Each round prices every eligible pair with the flow's potentials; for each rotator
    with a negative reduced cost, its pairs within ``band`` of its lowest reduced cost join (at most
    ``pool``). Rounds stop when the flow value is within half the ``gap_target`` of the bound, nothing
    joins, after ``rounds`` or half the ``time_limit``. The bound is the Lagrangian value of the
    potentials over every eligible pair, in original (unscaled) costs."""
    if pool < 1 or band <= 0 or scale < 1:
        raise ValueError("flow_pool and flow_scale must be >= 1 and flow_band > 0")
    P = d.w.unmatched_penalty
    count, all_m, all_c = d.eligible_all()
    stats["eligible_pairs"] = int(count.sum())
    stats["t_scan"] = round(time.perf_counter() - t0, 3)
    rots = np.nonzero(count > 0)[0]
    if len(rots) == 0:  # nobody has an eligible mentor
        return _finish(d, np.full(d.n, -1, dtype=np.int64), P * d.n, "no-eligible-pairs", t0, stats)
    annual = d.annual.copy()
    rescap = d.rescap.copy()
    R = len(rots)
    cnt = count[rots]
    starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])  # first pair of each rotator (with any)
    pos_all = np.zeros(len(all_m), dtype=np.int32)  # position in ``rots`` of every eligible pair
    pos_all[starts[1:]] = 1
    np.cumsum(pos_all, out=pos_all)

    def select(rc: np.ndarray, only_negative: bool):
        """For each rotator (with a negative reduced cost, if ``only_negative``) its pairs within
        ``band`` of its lowest reduced cost ``rc``, at most ``pool``, lowest first. Without sorting:
        reduced costs fall in 64 bins of the band; a rotator keeps its bins below the one where
        ``pool`` is reached, and a pseudo-random share of that bin (ties never go by mentor order)."""
        rmin = np.minimum.reduceat(rc, starts)
        lim = rmin + band
        if only_negative:
            lim[rmin >= -1.0 / scale] = -np.inf
        idx = np.flatnonzero(rc < lim[pos_all])
        p = pos_all[idx]
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
        return rots[p], all_m[idx].astype(np.int64), all_c[idx]

    rowmin = np.minimum.reduceat(all_c, starts)
    er, em, ec = select(all_c - rowmin[pos_all], False)
    if random_arcs > 0:
        idx = np.concatenate([starts + (rots * 7919 + j * 104729 + (rots * j) % 997) % cnt for j in range(random_arcs)])
        rows = np.tile(rots, random_arcs)
        first = np.unique(np.concatenate([er * d.m + em, rows * d.m + all_m[idx]]), return_index=True)[1]
        er = np.concatenate([er, rows])[first]
        em = np.concatenate([em, all_m[idx].astype(np.int64)])[first]
        ec = np.concatenate([ec, all_c[idx]])[first]
    stats["t_candidates"] = round(time.perf_counter() - t0, 3)
    bound = -np.inf
    t_flow = t_price = 0.0
    it = 0
    while True:
        it += 1
        t1 = time.perf_counter()
        assign, lam_m, u = _flow_assign(d, rots, er, em, ec, annual, scale)
        t_flow += time.perf_counter() - t1
        t1 = time.perf_counter()
        # Lagrangian bound for these potentials: each rotator's cheapest priced eligible pair (capped at
        # the penalty), plus the load term; valid for any potentials >= 0
        priced = all_c + lam_m[all_m]
        best = np.minimum.reduceat(priced, starts)
        bound = max(bound, float(np.minimum(P, best).sum()) + P * (d.n - R) + _load_term(d, annual, lam_m))
        value = _objective(d, assign)[0]
        done = value - bound <= gap_target * max(value, 1e-9) / 2
        nr = np.zeros(0, dtype=np.int64)
        if not done and it < rounds and time.perf_counter() - t0 < time_limit / 2:
            priced -= u[rots][pos_all]  # reduced costs
            nr, nm, nc = select(priced, True)
            new = ~np.isin(nr * d.m + nm, er * d.m + em)
            nr, nm, nc = nr[new], nm[new], nc[new]
        del priced
        t_price += time.perf_counter() - t1
        stats.setdefault("flow_log", []).append((len(er), round(value, 3), round(bound, 3), len(nr)))
        if not len(nr):
            break
        er, em, ec = np.concatenate([er, nr]), np.concatenate([em, nm]), np.concatenate([ec, nc])
    relaxed = _objective(d, assign)[0]
    stats.update(flow_arcs=len(er), flow_value=round(relaxed, 4), t_flow=round(t_flow, 3), t_price=round(t_price, 3))
    # ---- weekly repair: free the rotators in overfilled (mentor, week) cells, re-solve them exactly ----
    t1 = time.perf_counter()
    over_cells = _overfull(d, assign, rescap)
    stats["overfull_cells"] = int(len(over_cells))
    method = "flow"
    if len(over_cells):
        method = "flow+repair"
        hot = np.zeros(d.m * d.H, dtype=bool)
        hot[over_cells] = True
        matched = np.nonzero(assign >= 0)[0]
        edge_of, cell = _expand(d, assign[matched], d.s[matched], d.e[matched])
        free = np.unique(matched[edge_of[hot[cell]]])
        stats["repaired_rotators"] = int(len(free))
        assign[free] = -1
        used_rescap, used_annual, extra = _residual(d, assign, rescap, annual)
        sel = np.isin(er, free)
        fr, fm, fc = er[sel], em[sel], ec[sel]
        if count[free].sum() <= repair_pairs:  # few enough: the repair sees every eligible pair of them
            fpos = np.searchsorted(rots, free)
            ix = np.concatenate([np.arange(starts[q], starts[q] + cnt[q]) for q in fpos])
            fr, fm, fc = rots[pos_all[ix]], all_m[ix].astype(np.int64), all_c[ix]
        sub = _Model(d, free, fr, fm, fc, used_rescap, used_annual, extra)
        xs = sub.solve_mip(max(1.0, time_limit - (time.perf_counter() - t0)))
        if xs is not None:
            pick = xs[: sub.E] > 0.5
            assign[sub.er[pick]] = sub.em[pick]
        else:  # pragma: no cover - the repair MIP found nothing in time
            method = "flow+greedy"
            _greedy_fill(d, assign, free, used_rescap, used_annual)
        left = free[assign[free] < 0]
        if len(left):  # anyone the repair left out takes the cheapest eligible mentor with a free seat
            used_rescap, used_annual, _ = _residual(d, assign, rescap, annual)
            _greedy_fill(d, assign, left, used_rescap, used_annual)
    if len(_overfull(d, assign, rescap)):  # pragma: no cover - a repair that fails must never ship
        raise RuntimeError("weekly repair left a mentor over capacity")
    stats["t_repair"] = round(time.perf_counter() - t1, 3)
    stats["t_total"] = round(time.perf_counter() - t0, 3)
    stats["cpu_total"] = round(time.process_time() - c0, 3)
    return _finish(d, assign, bound, method, t0, stats)


def _overfull(d: _Data, assign: np.ndarray, rescap: np.ndarray) -> np.ndarray:
    """Cells (mentor * H + week) where ``assign`` puts more rotators than the residual seats."""
    matched = np.nonzero(assign >= 0)[0]
    if not len(matched):
        return np.zeros(0, dtype=np.int64)
    _, cell = _expand(d, assign[matched], d.s[matched], d.e[matched])
    use = np.bincount(cell, minlength=d.m * d.H)
    return np.nonzero(use > np.maximum(rescap.reshape(-1), 0))[0]


def _lagrangian(d: _Data, pool, rots, annual, rescap, P: float, lam_m: np.ndarray, lam_w: np.ndarray):
    """The Lagrangian bound for multipliers ``lam_m`` (mentor load rows) and ``lam_w`` (m, H) (weekly
    rows), all >= 0, over the pools plus their thresholds (valid for every eligible pair), and its
    supergradient (``g_m``, ``g_w``) from the rotators' cheapest priced choices."""
    pr, pm, pc, pthr = pool
    lw = np.zeros((d.m, d.H + 1))
    np.cumsum(lam_w, axis=1, out=lw[:, 1:])
    pbar = pc + lam_m[pm] + lw[pm, d.e[pr]] - lw[pm, d.s[pr]]
    best = np.full(d.n, np.inf)
    np.minimum.at(best, pr, pbar)
    best = np.minimum(best, pthr)
    per_rot = np.minimum(P, best[rots]).sum() + P * (d.n - len(rots))
    w = d.w.load_balance
    if w > 0:
        c = np.clip(np.ceil(lam_m / w - d.load0 - 1e-12), 0, annual).astype(np.float64)
    else:
        c = np.where(lam_m > 0, annual, 0).astype(np.float64)
    zterm = float((c * (w * d.load0 - lam_m) + w * c * (c - 1) / 2).sum())
    capterm = -float((lam_w * np.maximum(rescap, 0)).sum())
    # choices: the pool edge attaining a rotator's minimum (none when the threshold or P is lower)
    chosen = (pbar <= best[pr] + 1e-12) & (pbar < P)
    first = np.zeros(len(pr), dtype=bool)
    idx = np.nonzero(chosen)[0]
    if len(idx):
        _, firsts = np.unique(pr[idx], return_index=True)
        first[idx[firsts]] = True
    g_m = np.bincount(pm[first], minlength=d.m) - c
    g_w = np.zeros((d.m, d.H))
    edge_of, cell = _expand(d, pm[first], d.s[pr[first]], d.e[pr[first]])
    g_w.reshape(-1)[:] = np.bincount(cell, minlength=d.m * d.H)
    g_w -= np.maximum(rescap, 0)
    return per_rot + zterm + capterm, g_m, g_w


def _improve_bound(d, pool, rots, annual, rescap, P, lam_m, lam_w, upper: float, steps: int = 40):
    """Raise a Lagrangian bound: scale the LP duals (they are too high when the LP was cut short),
    then projected supergradient steps (Polyak step towards ``upper``). Returns the best bound."""
    best_val = -np.inf
    best = (lam_m, lam_w)
    for a in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        val = _lagrangian(d, pool, rots, annual, rescap, P, a * lam_m, a * lam_w)[0]
        if val > best_val:
            best_val, best = val, (a * lam_m, a * lam_w)
    lm, lwk = best
    for _ in range(steps):
        val, g_m, g_w = _lagrangian(d, pool, rots, annual, rescap, P, lm, lwk)
        if val > best_val:
            best_val = val
        norm = float((g_m**2).sum() + (g_w[g_w > 0] ** 2).sum() + (g_w[(g_w < 0) & (lwk > 0)] ** 2).sum())
        if norm == 0 or upper - val <= 0:
            break
        t = 0.5 * (upper - val) / norm
        lm = np.maximum(0.0, lm + t * g_m)
        lwk = np.maximum(0.0, lwk + t * g_w)
    return best_val


def _residual(d: _Data, assign: np.ndarray, rescap: np.ndarray, annual: np.ndarray):
    rescap = rescap.copy()
    annual = annual.copy()
    extra = np.zeros(d.m)
    for i in np.nonzero(assign >= 0)[0]:
        j = assign[i]
        rescap[j, d.s[i] : d.e[i]] -= 1
        annual[j] -= 1
        extra[j] += 1
    return rescap, annual, extra


def _greedy_fill(d: _Data, assign, rots, rescap, annual):
    """Give each rotator (in order) its cheapest eligible mentor with a free seat (mutates arguments)."""
    load = d.load0.copy() + np.bincount(assign[assign >= 0], minlength=d.m)
    for i in rots:
        i = int(i)
        ri = np.array([i])
        dept_ok, lang_ok, dtz, tz_ok, avail_ok, _seat, prev_ok = d.static_parts(ri)
        seat = (rescap[:, d.s[i] : d.e[i]].min(axis=1) > 0) & (annual > 0)
        ok = (dept_ok & lang_ok & tz_ok & avail_ok & prev_ok)[0] & seat
        if not ok.any():
            continue
        cost = d.cost_block(ri, dtz)[0] + d.w.load_balance * load
        cost[~ok] = np.inf
        j = int(np.argmin(cost))
        assign[i] = j
        rescap[j, d.s[i] : d.e[i]] -= 1
        annual[j] -= 1
        load[j] += 1


def solve_greedy(rotators: Sequence[Rotator], mentors: Sequence[Mentor], weights: Weights = Weights()) -> Solution:
    """Baseline: week by week (by start week), each rotator takes the cheapest eligible mentor with a
    free seat, counting the load-balance cost of the mentor's current load."""
    t0 = time.perf_counter()
    d = _Data(rotators, mentors, weights)
    assign = np.full(d.n, -1, dtype=np.int64)
    order = np.lexsort((np.arange(d.n), d.s))
    _greedy_fill(d, assign, order, d.rescap.copy(), d.annual.copy())
    return _finish(d, assign, None, "greedy-weekly", t0, {"rotators": d.n, "mentors": d.m})


def _objective(d: _Data, assign: np.ndarray) -> tuple[float, np.ndarray]:
    matched = np.nonzero(assign >= 0)[0]
    costs = d.pair_costs(matched, assign[matched]) if len(matched) else np.zeros(0)
    per_m = np.bincount(assign[matched], minlength=d.m)
    load = sum(d.load_costs(j, int(c)) for j, c in enumerate(per_m) if c)
    total = float(costs.sum() + load + d.w.unmatched_penalty * (d.n - len(matched)))
    return total, costs


def _finish(d: _Data, assign: np.ndarray, bound, method: str, t0: float, stats: dict) -> Solution:
    total, costs = _objective(d, assign)
    matched = np.nonzero(assign >= 0)[0]
    assignments = {d.rotators[i].key: d.mentors[assign[i]].key for i in matched}
    cost_map = {d.rotators[i].key: round(float(c), 6) for i, c in zip(matched, costs, strict=True)}
    unmatched_idx = np.nonzero(assign < 0)[0]
    unmatched = explain_unmatched(d, assign, unmatched_idx)
    gap = None
    if bound is not None:
        bound = float(min(bound, total))  # numerical noise must not show a negative gap
        gap = (total - bound) / total if total > 0 else 0.0
    return Solution(assignments, cost_map, unmatched, total, bound, gap, time.perf_counter() - t0, method, stats)


# --------------------------------------------------------------------------------------------------
# Explaining the unmatched


def _label(x: Mentor) -> str:
    return x.name or str(x.key)


def explain_unmatched(d: _Data, assign: np.ndarray, idx: Iterable[int]) -> list[Unmatched]:
    """Why each rotator in ``idx`` has no mentor, and the smallest relaxation that would give one
    (re-checking eligibility under relaxed rules against the capacity left by ``assign``)."""
    idx = [int(i) for i in idx]
    if not idx:
        return []
    rescap, annual, _ = _residual(d, assign, d.rescap, d.annual)
    out = []
    for i in idx:
        r = d.rotators[i]
        ri = np.array([i])
        dept_ok, lang_ok, dtz, tz_ok, avail_ok, _seat, prev_ok = (a[0] for a in d.static_parts(ri))
        seat_ok = (rescap[:, d.s[i] : d.e[i]].min(axis=1) > 0) & (annual > 0)
        cost = d.cost_block(ri, dtz[None, :])[0]

        def best(mask, cost=cost):
            js = np.nonzero(mask)[0]
            return None if len(js) == 0 else int(js[np.argmin(cost[js])])

        if d.m == 0:
            out.append(Unmatched(r.key, "there are no mentors", None))
            continue
        if not lang_ok.any():
            langs = ", ".join(sorted(r.languages)) or "(none recorded)"
            out.append(Unmatched(r.key, f"no mentor shares a language ({langs})", None))
            continue
        base = lang_ok & dept_ok
        if not (base & tz_ok).any():
            reason = "no mentor in another department within the time-zone limit"
            if not base.any():
                reason = "every mentor who shares a language is in the rotator's own department"
                out.append(Unmatched(r.key, reason, None))
                continue
        elif not (base & tz_ok & prev_ok).any():
            reason = "only previous mentors are eligible"
        elif not (base & tz_ok & prev_ok & avail_ok).any():
            reason = "every eligible mentor is absent during the rotation"
        else:
            reason = "all eligible mentors are at capacity or at their annual cap"
        relax = None
        # 1. a wider time-zone limit (whole hours), everything else as is
        need = base & prev_ok & avail_ok & seat_ok & ~tz_ok
        if need.any():
            js = np.nonzero(need)[0]
            gap = float(np.ceil(dtz[js].min() - 1e-9))
            relax = f"possible if the time-zone limit were {gap:g} h"
        # 2. one more seat for the best otherwise-eligible mentor
        if relax is None:
            j = best(base & tz_ok & prev_ok & avail_ok & ~seat_ok)
            if j is not None:
                relax = f"possible if {_label(d.mentors[j])} had one more seat"
        # 3. an absent mentor
        if relax is None:
            j = best(base & tz_ok & prev_ok & ~avail_ok & seat_ok)
            if j is not None:
                relax = f"possible if {_label(d.mentors[j])} were not absent during the rotation"
        # 4. a previous mentor again
        if relax is None:
            j = best(base & tz_ok & ~prev_ok & avail_ok & seat_ok)
            if j is not None:
                relax = f"possible only with a previous mentor again ({_label(d.mentors[j])})"
        # 5. the time-zone limit together with a seat
        if relax is None:
            js = np.nonzero(base & prev_ok & ~tz_ok)[0]
            if len(js):
                gap = float(np.ceil(dtz[js].min() - 1e-9))
                relax = f"possible if the time-zone limit were {gap:g} h and a mentor there had a free seat"
        out.append(Unmatched(r.key, reason, relax))
    return out


# --------------------------------------------------------------------------------------------------
# Checking a solution (tests, benchmark, service)


def violations(
    rotators: Sequence[Rotator], mentors: Sequence[Mentor], weights: Weights, assignments: Mapping
) -> list[str]:
    """Every hard-rule violation of ``assignments`` (rotator key -> mentor key), as text."""
    by_key = {x.key: x for x in mentors}
    problems = []
    weekly: dict[tuple, int] = defaultdict(int)
    yearly: dict = defaultdict(int)
    for r in rotators:
        mk = assignments.get(r.key)
        if mk is None:
            continue
        x = by_key[mk]
        if x.dept == r.dept:
            problems.append(f"{r.key}: mentor {mk} is in the same department")
        if not (r.languages & x.languages):
            problems.append(f"{r.key}: no shared language with {mk}")
        if abs(r.tz_hours - x.tz_hours) > weights.max_timezone_gap_hours + 1e-9:
            problems.append(f"{r.key}: time zones of {mk} too far apart")
        if mk in r.previous_mentors:
            problems.append(f"{r.key}: {mk} was a previous mentor")
        if any(w in x.unavailable_weeks for w in range(r.start_week, r.end_week)):
            problems.append(f"{r.key}: {mk} is absent during the rotation")
        for w in range(r.start_week, r.end_week):
            weekly[(mk, w)] += 1
        yearly[mk] += 1
    for (mk, w), c in weekly.items():
        x = by_key[mk]
        if c + x.busy_weeks.get(w, 0) > x.capacity:
            problems.append(
                f"mentor {mk} has {c + x.busy_weeks.get(w, 0)} rotators in week {w} (capacity {x.capacity})"
            )
    for mk, c in yearly.items():
        if c > by_key[mk].annual_cap:
            problems.append(f"mentor {mk} gets {c} rotators (annual cap {by_key[mk].annual_cap})")
    return problems


def weekly_cap_violations(rotators, mentors, weights, assignments) -> int:
    """Number of (mentor, week) cells over capacity."""
    return sum(1 for p in violations(rotators, mentors, weights, assignments) if " in week " in p)


def objective(rotators: Sequence[Rotator], mentors: Sequence[Mentor], weights: Weights, assignments: Mapping) -> float:
    """Objective value of any assignment (same definition the solver minimises)."""
    d = _Data(rotators, mentors, weights)
    assign = np.full(d.n, -1, dtype=np.int64)
    for rk, mk in assignments.items():
        assign[d.index_r[rk]] = d.index_m[mk]
    return _objective(d, assign)[0]
