"""Scans of every eligible pair by blocks, for large instances (100k employees: 89k rotators x 5.7k
mentors, 508 M pairs, 243 M eligible).

:meth:`.model.Instance.pools` checks every rule on a block of rotators x ALL mentors. Here the rotators
are grouped by what makes a mentor's eligibility and cost the same for the whole group: their weeks
(absences and full weeks; the weekly multipliers of the bound) and their time zone (the time-zone rule
and the time-zone cost). Each group is scanned against the mentors left by those rules only (the
mentors within the time-zone gap, available and with a seat in its weeks), with the per-mentor parts of
the cost (time-zone hours, feedback, multipliers) computed once per group; only the shared skills, the
new-hire term, the department and the language rules are computed per pair. Same rules, same costs (the
same floating-point sums as :meth:`.model.Instance.pair_cost`), same outcome as ``pools`` up to ties.
"""

from __future__ import annotations

import numpy as np

from frontline.mentors.solver.model import EPS, Edges, Instance, Pool, _concat


def _groups(inst: Instance, ri_all: np.ndarray) -> list[np.ndarray]:
    """``ri_all`` split by (start week, end week, time zone), in a fixed order."""
    if not len(ri_all):
        return []
    tz = np.unique(inst.tz_r[ri_all], return_inverse=True)[1]
    key = (inst.s[ri_all] * (inst.H + 1) + inst.e[ri_all]) * (tz.max() + 1) + tz
    order = np.argsort(key, kind="stable")
    cut = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
    return [ri_all[order[a:b]] for a, b in zip(cut[:-1], cut[1:], strict=True)]


def scan(
    inst: Instance,
    ri_all: np.ndarray,
    size: int,
    block: int = 1024,
    lam_m: np.ndarray | None = None,
    lw: np.ndarray | None = None,
    u: np.ndarray | None = None,
    spread: float = 0.0,
) -> Pool:
    """:meth:`.model.Instance.pools` by groups (see the module docstring): the same arguments and the
    same :class:`.model.Pool` (ties between equal keys may be broken otherwise). Without duals, ``spread``
    > 0 breaks ties (and near-ties closer than ``spread``) pseudo-randomly per pair instead of by mentor
    order, so that rotators alike do not all keep the same few mentors (the threshold then is the
    smallest key left out minus ``spread``: still below every cost left out).

    Long because each group's per-mentor parts, the per-pair rules and costs and the selection (as in
    ``pools``) are one pass over the group's matrix, kept together so that no matrix outlives its block."""
    priced_mode = lam_m is not None and lw is not None and u is not None
    er, em, ec = [], [], []
    best = np.full(inst.n, np.inf)
    thr = np.full(inst.n, np.inf)
    count = np.zeros(inst.n, dtype=np.int64)
    w = inst.w
    gap = w.max_timezone_gap_hours + 1e-9
    has_seat = inst.annual > 0
    own_dept = np.isin(inst.dept_r, np.unique(inst.dept_m))  # rotators whose department has mentors
    noise_r = ((np.arange(inst.n, dtype=np.int64) * 2654435761) % 65521).astype(np.uint32)  # the spread's terms
    noise_m = ((np.arange(inst.m, dtype=np.int64) * 40503) % 65521).astype(np.uint32)
    one_word_skill = inst.skill_r.shape[1] == 1
    one_word_lang = inst.lang_r.shape[1] == 1
    week_ok: dict[tuple[int, int], np.ndarray] = {}
    for group in _groups(inst, ri_all):
        i0 = int(group[0])
        s, e = int(inst.s[i0]), int(inst.e[i0])
        ok_se = week_ok.get((s, e))
        if ok_se is None:
            ok_se = has_seat & (inst.U[:, e] == inst.U[:, s]) & (inst.F[:, e] == inst.F[:, s])
            week_ok[(s, e)] = ok_se
        dtz_all = np.abs(inst.tz_r[i0] - inst.tz_m)
        cols = np.nonzero(ok_se & (dtz_all <= gap))[0]
        if not len(cols):
            count[group] = 0
            best[group] = np.inf
            continue
        tz_cost = w.timezone_hour * dtz_all[cols]
        mconst = inst.mentor_const[cols]
        first_time = w.first_time_mentor_new_hire * ~inst.ever[cols]
        if priced_mode:
            assert lam_m is not None and lw is not None and u is not None
            lam_c, weekly = lam_m[cols], lw[cols, e] - lw[cols, s]
        dept_c = inst.dept_m[cols]
        k = min(size, len(cols))
        for b0 in range(0, len(group), block):
            ri = group[b0 : b0 + block]
            # the cost, summed in the order of Instance.pair_cost (bit-identical)
            if one_word_skill:
                shared = np.bitwise_count(inst.skill_r[ri, 0, None] & inst.skill_m[None, cols, 0])
            else:
                shared = np.zeros((len(ri), len(cols)), dtype=np.uint8)
                for kw in range(inst.skill_r.shape[1]):
                    shared += np.bitwise_count(inst.skill_r[ri, kw, None] & inst.skill_m[None, cols, kw])
            base = inst.nskill_r[ri, None] - shared
            base *= w.shared_skill
            base += tz_cost[None, :]
            base += mconst[None, :]
            nh = np.nonzero(inst.newhire[ri])[0]
            if len(nh):
                base[nh] += first_time[None, :]
            # the rules the group does not settle: language, department, previous mentors
            if one_word_lang:
                ok = (inst.lang_r[ri, 0, None] & inst.lang_m[None, cols, 0]) != 0
            else:
                ok = np.zeros((len(ri), len(cols)), dtype=bool)
                for kw in range(inst.lang_r.shape[1]):
                    ok |= (inst.lang_r[ri, kw, None] & inst.lang_m[None, cols, kw]) != 0
            own = own_dept[ri]
            if own.any():
                rows = np.nonzero(own)[0]
                ok[rows] &= inst.dept_r[ri[rows], None] != dept_c[None, :]
            had = [(row, js) for row, i in enumerate(ri.tolist()) if (js := inst.prev.get(i)) is not None]
            if had:  # each one's previous mentors among the columns, all at once
                at = np.full(inst.m, -1, dtype=np.int64)
                at[cols] = np.arange(len(cols))
                js_all = np.concatenate([js for _row, js in had])
                rows_all = np.repeat([row for row, _js in had], [len(js) for _row, js in had])
                hit = at[js_all] >= 0
                ok[rows_all[hit], at[js_all[hit]]] = False
            count[ri] = ok.sum(axis=1)
            if priced_mode:
                assert u is not None
                priced = base + lam_c[None, :]
                priced += weekly[None, :]
                priced[~ok] = np.inf
                best[ri] = priced.min(axis=1)
                key = priced - u[ri, None]
                neg = key < -EPS
                key[~neg] = np.inf
                rows = np.nonzero(neg.any(axis=1))[0]  # only these rows select anything
                if not len(rows):
                    continue
                keyr, ri_sel = key[rows], ri[rows]
            else:
                key = np.where(ok, base, np.inf)
                best[ri] = key.min(axis=1)
                if spread > 0:
                    # (ri * 2654435761 + col * 40503) % 65521 from the two terms' residues: their sum is below
                    # 2 * 65521, and where it is below 65521 the unsigned difference wraps above it
                    noise = noise_r[ri, None] + noise_m[None, cols]
                    np.minimum(noise, noise - np.uint32(65521), out=noise)
                    key += noise * (spread / 65521)
                keyr, ri_sel, rows = key, ri, np.arange(len(ri))
            if k < len(cols):
                part = np.argpartition(keyr, k, axis=1)
                top = part[:, :k]
                thr[ri_sel] = np.take_along_axis(keyr, part[:, k : k + 1], axis=1)[:, 0] - spread
            else:
                top = np.tile(np.arange(len(cols)), (len(ri_sel), 1))
            tk = np.take_along_axis(keyr, top, axis=1)
            keep = np.isfinite(tk)
            er.append(np.repeat(ri_sel, top.shape[1]).reshape(top.shape)[keep])
            em.append(cols[top[keep]])
            ec.append(np.take_along_axis(base[rows] if priced_mode else base, top, axis=1)[keep])
    edges = Edges(_concat(er, np.int64), _concat(em, np.int64), _concat(ec, np.float64))
    return Pool(edges, best, count, thr)
