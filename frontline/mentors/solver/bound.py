"""Lagrangian lower bounds: relax the mentor load rows (multipliers ``lam_m``) and the weekly rows
(``lam_w``); what is left splits per rotator (its cheapest priced eligible mentor, or the unmatched
penalty) and per mentor (how many load increments are cheaper than its multiplier). Any multipliers
>= 0 give a bound valid for the whole problem, whichever pairs were in the model."""

from __future__ import annotations

import numpy as np

from frontline.mentors.solver.model import Edges, Instance


def dual_value(inst: Instance, best: np.ndarray, rots: np.ndarray, zterm: float, capterm: float) -> float:
    """The Lagrangian value: each rotator with an eligible mentor its cheapest priced choice ``best``
    (at most the unmatched penalty), the others the penalty, plus the load and capacity terms."""
    P = inst.w.unmatched_penalty
    return float(np.minimum(P, best[rots]).sum() + P * (inst.n - len(rots)) + zterm + capterm)


def priced_best(
    inst: Instance, pool: Edges, threshold: np.ndarray, lam_m: np.ndarray, lw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Priced cost of every pool edge (cost + mentor dual + the weekly duals of its weeks; ``lw`` their
    prefix sums (m, H+1)) and each rotator's cheapest, capped by its pool ``threshold`` (outside the
    pool the priced cost is >= the cost >= the threshold)."""
    pr, pm, pc = pool
    pbar = pc + lam_m[pm] + lw[pm, inst.e[pr]] - lw[pm, inst.s[pr]]
    best = np.full(inst.n, np.inf)
    np.minimum.at(best, pr, pbar)
    return pbar, np.minimum(best, threshold)


def load_term(inst: Instance, annual: np.ndarray, lam_m: np.ndarray) -> float:
    """Lagrangian load term: sum over mentors of min over z of (load cost of z rotators - lam * z),
    0 <= z <= annual cap (the load cost is convex, so z counts the increments cheaper than lam)."""
    w = inst.w.load_balance
    c = _load_counts(inst, annual, lam_m)
    return float((c * (w * inst.load0 - lam_m) + w * c * (c - 1) / 2).sum())


def _load_counts(inst: Instance, annual: np.ndarray, lam_m: np.ndarray) -> np.ndarray:
    """The z of :func:`load_term` per mentor."""
    w = inst.w.load_balance
    if w > 0:
        return np.clip(np.ceil(lam_m / w - inst.load0 - 1e-12), 0, annual).astype(np.float64)
    return np.where(lam_m > 0, annual, 0).astype(np.float64)


def lagrangian(
    inst: Instance, pool: Edges, threshold: np.ndarray, rots: np.ndarray, lam_m: np.ndarray, lam_w: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The Lagrangian bound for multipliers ``lam_m`` (mentor load rows) and ``lam_w`` (m, H) (weekly
    rows), all >= 0, over the pool plus its thresholds (valid for every eligible pair), and its
    supergradient (``g_m``, ``g_w``) from the rotators' cheapest priced choices."""
    P, annual, rescap = inst.w.unmatched_penalty, inst.annual, inst.rescap
    pr, pm, _ = pool
    lw = np.zeros((inst.m, inst.H + 1))
    np.cumsum(lam_w, axis=1, out=lw[:, 1:])
    pbar, best = priced_best(inst, pool, threshold, lam_m, lw)
    c = _load_counts(inst, annual, lam_m)
    zterm = load_term(inst, annual, lam_m)
    capterm = -float((lam_w * np.maximum(rescap, 0)).sum())
    # choices: the pool edge attaining a rotator's minimum (none when the threshold or P is lower)
    chosen = (pbar <= best[pr] + 1e-12) & (pbar < P)
    first = np.zeros(len(pr), dtype=bool)
    idx = np.nonzero(chosen)[0]
    if len(idx):
        _, firsts = np.unique(pr[idx], return_index=True)
        first[idx[firsts]] = True
    g_m = np.bincount(pm[first], minlength=inst.m) - c
    g_w = np.zeros((inst.m, inst.H))
    _, cell = inst.week_cells(pm[first], inst.s[pr[first]], inst.e[pr[first]])
    g_w.reshape(-1)[:] = np.bincount(cell, minlength=inst.m * inst.H)
    g_w -= np.maximum(rescap, 0)
    return dual_value(inst, best, rots, zterm, capterm), g_m, g_w


def improve_bound(
    inst: Instance,
    pool: Edges,
    threshold: np.ndarray,
    rots: np.ndarray,
    lam_m: np.ndarray,
    lam_w: np.ndarray,
    upper: float,
    steps: int = 40,
) -> float:
    """Raise the Lagrangian bound of :func:`lagrangian` from the LP duals ``lam_m``, ``lam_w``: scale
    them (they are too high when the LP was cut short), then projected supergradient steps (Polyak step
    towards ``upper``). Returns the best bound."""

    def value(lm: np.ndarray, lwk: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return lagrangian(inst, pool, threshold, rots, lm, lwk)

    best_val = -np.inf
    best = (lam_m, lam_w)
    for a in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        val = value(a * lam_m, a * lam_w)[0]
        if val > best_val:
            best_val, best = val, (a * lam_m, a * lam_w)
    lm, lwk = best
    for _ in range(steps):
        val, g_m, g_w = value(lm, lwk)
        if val > best_val:
            best_val = val
        stepped = polyak_step(lm, lwk, g_m, g_w, upper - val)
        if stepped is None:
            break
        lm, lwk = stepped
    return float(best_val)


def polyak_step(
    lam_m: np.ndarray, lam_w: np.ndarray, g_m: np.ndarray, g_w: np.ndarray, gap: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """One projected supergradient step on the multipliers (all >= 0) with Polyak's step length, half of
    ``gap`` (an upper bound minus the current value) over the squared norm of the supergradient's feasible
    part (a weekly component pushing a zero multiplier below zero does not count); ``None`` when there is
    no step to take (a zero supergradient, or the value already at the upper bound)."""
    norm = float((g_m**2).sum() + (g_w[g_w > 0] ** 2).sum() + (g_w[(g_w < 0) & (lam_w > 0)] ** 2).sum())
    if norm == 0 or gap <= 0:
        return None
    t = 0.5 * gap / norm
    return np.maximum(0.0, lam_m + t * g_m), np.maximum(0.0, lam_w + t * g_w)
