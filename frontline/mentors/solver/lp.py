"""The exact model over a set of candidate edges, as an LP relaxation (HiGHS dual simplex through
``scipy.optimize.linprog``) or a MIP (HiGHS through ``scipy.optimize.milp``).

min sum c_e x_e + P sum s_r + sum q_mk z_mk, where x_e picks edge e, s_r leaves rotator r unmatched
(cost P, the unmatched penalty) and z_mk is the k-th new rotator of mentor m (the convex load-cost
increment q_mk; at most the annual cap of them). Rows: one assignment row per rotator (= 1), one load
row per mentor (edges - z <= 0), and the weekly concurrency rows that can bind (:func:`weekly_rows`).

SciPy is imported where a model is built or solved (~0.5 s): the cohort method for the largest instances
(``frontline pair`` on a company) never builds one, so it does not pay for that import.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from frontline.mentors.solver.model import Edges, Instance


def weekly_rows(
    inst: Instance,
    em: np.ndarray,
    es: np.ndarray,
    ee: np.ndarray,
    rescap: np.ndarray,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weekly concurrency rows that can bind for the edges (mentor, start, end).

    Returns (row_m, row_w, entries_edge, entries_row): a row (m, w) exists when the edges of m active
    in week w outnumber the residual seats, and it is not dominated by the row of the week before
    (no edge starts in w and w has no fewer seats). ``allowed`` (bool per cell) restricts the rows to
    those cells (lazy rows: the others are checked on the LP solution and added when violated)."""
    H = inst.H
    edge_of, cell = inst.week_cells(em, es, ee)
    counts = np.bincount(cell, minlength=inst.m * H)
    starts = np.zeros(inst.m * H, dtype=bool)
    starts[em * H + es] = True
    flat_res = rescap.reshape(-1)
    need = counts > np.maximum(flat_res, 0)
    wk = np.arange(inst.m * H) % H
    prev_res = np.where(wk > 0, np.roll(flat_res, 1), np.iinfo(np.int64).min)
    dominated = (~starts) & (wk > 0) & (flat_res >= prev_res)
    need &= ~dominated
    if allowed is not None:
        need &= allowed
    row_id = np.full(inst.m * H, -1, dtype=np.int64)
    cells = np.nonzero(need)[0]
    row_id[cells] = np.arange(len(cells))
    r_of_entry = row_id[cell]
    sel = r_of_entry >= 0
    return cells // H, cells % H, edge_of[sel], r_of_entry[sel]


class LpCut(RuntimeError):
    """The LP relaxation stopped at its time limit (:meth:`AssignmentModel.solve_lp`)."""


class LpSolution(NamedTuple):
    value: float
    x: np.ndarray
    u: np.ndarray  # rotator duals (assignment rows)
    lam: np.ndarray  # inequality duals >= 0: mentor load rows, then weekly rows


class AssignmentModel:
    """min sum c_e x_e + P sum s_r + sum q_mk z_mk over a candidate edge set (see the module docstring)."""

    def __init__(
        self,
        inst: Instance,
        rots: np.ndarray,
        edges: Edges,
        rescap: np.ndarray,
        annual: np.ndarray,
        load_extra: np.ndarray,
        allowed: np.ndarray | None = None,
    ):
        from scipy import sparse

        self.inst = inst
        self.rots = rots  # rotator indices in this model
        er, em, ec = edges
        self.er, self.em, self.ec = er, em, ec
        E = len(er)
        pos = np.full(inst.n, -1, dtype=np.int64)
        pos[rots] = np.arange(len(rots))
        self.rpos = pos[er]
        ments = np.unique(em)
        self.ments = ments
        mpos = np.full(inst.m, -1, dtype=np.int64)
        mpos[ments] = np.arange(len(ments))
        self.mpos = mpos[em]
        ncand = np.bincount(em, minlength=inst.m)[ments]
        zc = np.minimum(annual[ments], ncand)
        self.zc = zc
        self.z_m = np.repeat(np.arange(len(ments)), zc)
        k = np.arange(zc.sum()) - np.repeat(np.cumsum(zc) - zc, zc)
        self.z_cost = inst.w.load_balance * (inst.load0[ments][self.z_m] + load_extra[ments][self.z_m] + k)
        Z = len(self.z_m)
        R = len(rots)
        self.E, self.R, self.Z = E, R, Z
        self.c = np.concatenate([ec, np.full(R, inst.w.unmatched_penalty), self.z_cost])
        # equality: assignment rows
        rows = np.concatenate([self.rpos, np.arange(R)])
        cols = np.concatenate([np.arange(E), E + np.arange(R)])
        self.A_eq = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(R, E + R + Z))
        # inequality: mentor load rows, then weekly rows
        Mn = len(ments)
        ri1 = np.concatenate([self.mpos, self.z_m])
        ci1 = np.concatenate([np.arange(E), E + R + np.arange(Z)])
        vi1 = np.concatenate([np.ones(E), -np.ones(Z)])
        es, ee = inst.s[er], inst.e[er]
        self.wrow_m, self.wrow_w, ent_e, ent_r = weekly_rows(inst, em, es, ee, rescap, allowed)
        W = len(self.wrow_m)
        rows = np.concatenate([ri1, Mn + ent_r])
        cols = np.concatenate([ci1, ent_e])
        vals = np.concatenate([vi1, np.ones(len(ent_e))])
        self.A_ub = sparse.csr_array((vals, (rows, cols)), shape=(Mn + W, E + R + Z))
        self.b_ub = np.concatenate([np.zeros(Mn), np.maximum(rescap[self.wrow_m, self.wrow_w], 0)]).astype(float)
        self.Mn, self.W = Mn, W
        self.upper = np.ones(len(self.c))  # variables' upper bounds: a slack at 0 keeps its rotator matched
        self.mip_dual_bound: float | None = None
        self.mip_optimal = False

    def solve_lp(self, method: str = "highs-ds", presolve: bool = False, time_limit: float | None = None) -> LpSolution:
        """The LP relaxation (HiGHS's dual simplex without presolve: the fastest on the rounds' models; the
        interior point for a model over every eligible pair, ``bench/pair.py --offline-lp``). Raises
        :class:`LpCut` when HiGHS stops at ``time_limit`` (wall-clock seconds), RuntimeError when it fails
        otherwise."""
        from scipy.optimize import linprog

        has_rows = bool(self.A_ub.shape[0])
        res = linprog(
            self.c,
            A_ub=self.A_ub if has_rows else None,
            b_ub=self.b_ub if has_rows else None,
            A_eq=self.A_eq,
            b_eq=np.ones(self.R),
            bounds=np.column_stack([np.zeros(len(self.c)), self.upper]),
            method=method,
            options={"presolve": presolve} | ({} if time_limit is None else {"time_limit": max(0.1, time_limit)}),
        )
        if res.status == 1:  # an iteration or time limit
            raise LpCut(f"LP relaxation stopped at its limit: {res.message}")
        if res.status != 0:
            raise RuntimeError(f"LP relaxation failed: {res.message}")
        lam = -res.ineqlin.marginals if has_rows else np.zeros(0)
        return LpSolution(res.fun, res.x, res.eqlin.marginals, lam)

    def solve_mip(
        self, time_limit: float | None, node_limit: int | None = None, fixed: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The integer optimum (or HiGHS's best in ``time_limit`` and ``node_limit`` branch-and-bound nodes;
        None when it found nothing); sets ``mip_dual_bound`` and ``mip_optimal``. Without a time limit
        the result depends only on the model (a node limit is deterministic). ``fixed`` (bool per edge):
        those edges are taken (x = 1; HiGHS's presolve removes them with their rotators and seats), the
        optimum is then over the rest."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        lower = np.zeros(len(self.c))
        if fixed is not None:
            lower[: self.E][fixed] = 1.0
        integrality = np.concatenate([np.ones(self.E + self.R), np.zeros(self.Z)])
        cons = [LinearConstraint(self.A_eq, 1, 1)]
        if self.A_ub.shape[0]:
            cons.append(LinearConstraint(self.A_ub, -np.inf, self.b_ub))
        res = milp(
            self.c,
            constraints=cons,
            integrality=integrality,
            bounds=Bounds(lower, self.upper),
            options={"mip_rel_gap": 1e-6}
            | ({} if time_limit is None else {"time_limit": max(0.5, time_limit)})
            | ({} if node_limit is None else {"node_limit": node_limit}),
        )
        self.mip_dual_bound = getattr(res, "mip_dual_bound", None)
        self.mip_optimal = res.status == 0
        return None if res.x is None else np.asarray(res.x)

    def picked(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rotator, mentor) of the edges an integer solution ``xs`` picks."""
        pick = xs[: self.E] > 0.5
        return self.er[pick], self.em[pick]
