"""Improving a pairing after the cohort passes: exact flows over pairs of overlapping cohorts.

A cohort pass (:func:`.cohorts.cohort_passes`) re-pairs one cohort with everyone else fixed, so it cannot
move a rotator of one cohort to mentor Y while a rotator of an overlapping cohort leaves Y (a swap of
seats between cohorts whose weeks differ). This step frees two overlapping cohorts A and B at once (a
*block*) and re-pairs both exactly by one min-cost flow. Per mentor a block has three kinds of weeks
(only A on rotation, both, only B) and its weekly rows reduce to three nested ones: A's rotators <= the
fewest seats left in the A-only weeks, B's <= those of the B-only weeks, A's + B's <= those of the shared
weeks (the fewest seats of a kind of week bind for all its weeks). Nested rows are a flow: rotator ->
(mentor, A or B) -> mentor, whose arcs carry the first two, and the mentor's unit load arcs to the sink
(the convex load cost, as in the cohort flows), as many as the shared weeks' seats and the annual cap
allow. So the block's pairing is optimal over its rotators' ``candidates`` cheapest eligible mentors
with a seat in their weeks (once the block is freed) plus their current mentor (staying put is always
possible: no flow can lose, up to the flows' cost rounding, and a block's result is kept only when the
exact objective drops). A rotator gets the way out (unmatched, at the penalty) only when someone of the
block is unmatched; otherwise everyone stays matched (leaving someone out costs the penalty, 1000, far
above what a block can gain), and without those arcs the flow's largest cost is a pair's, not the
penalty, so OR-Tools' cost scaling takes fewer phases: with costs scaled by the smallest factor that
keeps them exact (:func:`.cohorts.exact_scale`), a block pass at 10k employees takes ~0.4 s of CPU
instead of ~0.7 s, so :func:`.solve` runs two.

:func:`blocks` lists every pair of overlapping cohorts at most ``reach`` places apart in start order;
:func:`improve_by_blocks` re-pairs them in that order, pass after pass while a pass gains. Then, only while
someone is unmatched, passes around them (:func:`around_unmatched`): each cohort with someone unmatched paired
with every cohort overlapping it, however far apart in start order (a seat they need can be held by a rotator
whose only other seat a cohort two or three starts away holds), while a pass seats at least
``unmatched_pass_share`` (1 %) of those left, one at least (with thousands unmatched the shortage is the
seats': the tight demo at 100k employees, 7,397 unmatched, the first pass seats 1 in ~8 s, a second none in ~8
s more, which the bound's rounds then lack), each followed by the ejection chains of
:func:`.greedy.rescue_unmatched` when fewer than ``rescue_below`` are left (the flows may have opened one; the
tight demo's 736 are left out: the rescue tries them for up to 10 s). 10k demo, seed 8, where a 909-rotator
cohort fills its weeks: 25 -> 18 unmatched for ~2.2 s more; where everyone is matched nothing changes. Then,
while fewer than ``mip_below`` (and more than 0) are left, up to ``mip_rounds`` (3) exact MIPs around them
(:func:`pair_by_mip`, :class:`.lp.AssignmentModel` with every weekly row, the annual caps and the load cost),
each after one that seated someone. A round's first neighbourhood is the one of the *free seats*
(:func:`free_seat_hood`): the span from the unmatched's first week to their last, the mentors eligible for one
of them with a free seat in the span, and everyone paired with one of these mentors whose weeks overlap the
span, each with its ``free_seat_candidates`` (40) cheapest of these mentors with a seat in its weeks, found by
the rules over every pair (not from the pool: the chains that seat the unmatched there go through dearer
mentors; not over more than ``free_seat_rotators``, 2,500, and no MIP when its LP leaves more than
``free_seat_open``, 250, rotators fractional); when that gains nothing, in the first round only, the pool's
neighbourhood (the rotators of the cohorts overlapping theirs that hold a seat of one of their candidate
mentors, :func:`neighbourhood`, :func:`_chain`, the unmatched included, each with its 20 cheapest pool
candidates that have a seat). Everyone else is fixed; the pairs the LP relaxation takes whole are kept and the
MIP decides the rest (HiGHS's root work on the whole model was the cost). Measured 2026-12-07 on the seed-8
10k company (its crowded weeks 3-11 hold 1,001 rotators on 1,086 seats; most of the unmatched speak English
and have 170-360 eligible mentors, none with a seat in all four of their weeks): 18 left after the passes; the
pool's MIP left 15 (1,769 rotators, 34,710 pairs, ~1.4 s of CPU; a second seated nobody on the build of
2026-12-06); the free seats' first round 18 -> 10 (1,560 rotators, 60,542 pairs, ~1.7 s), its second 10 -> 0
(2,126 rotators, 82,684 pairs, ~2.9 s): 142,431 -> 127,771.5, 0.41 % above the LP over every eligible pair.
With 30 candidates the second round seated nobody (10 left; a third would have left 2), with 50 or 70 none
were left (~0.5-1.5 s more); offering the displaced every mentor with a free seat in the span, not only those
eligible for an unmatched, made the second round's MIP stop at ``mip_seconds`` (4 left, ~18 s). The same day,
the seed-9 company with a share of its mentors removed at random (the solver alone, before -> after): 6 %
removed, 9 -> 3 unmatched (3.0 -> 2.8 s); 7 %, 21 -> 9 (4.5 -> 3.7 s); 8 %, 64, and 9 %, 81, unchanged (their
free seats' neighbourhoods have 3,642-3,914 rotators; at 9 % 152k-153k pairs, whose MIPs took 17-24 s of CPU
and were dropped); 12 %, 199 (over ``mip_below``). The seed-8 history company: its neighbourhood has 2,776
rotators and 108k pairs, the LP (7.5 s) leaves 477 of them fractional, the MIP stopped at its 30 s: so the
caps; there the pool's MIP seats 9 as before (27 -> 18, ~8 s). Before the caps, those took 17-62 s. Since
2026-12-07 (twelfth session) a neighbourhood over the cap is split in two where the unmatched's start weeks are
furthest apart, and each part tried the same way, split again while over ``free_seat_part`` (1,500)
(:func:`_split_by_weeks`), for up to ``mip_rounds`` (5) rounds: on the seed-8 history company the 27 left after
the passes start in weeks 5-14, the parts have 79-1,172 rotators, and four rounds seat 4, 2, 13 and 2 (the
fifth none): **6 left where 18 were**, the solver 9.7 s (11.5 before; the same day's machine). Seed 8 base and
every seed-7 company are unchanged (their neighbourhoods fit the cap). Measured and not kept, the same day:
parts up to 2,500 (13 left, 14.7 s: fewer, larger parts seat fewer), up to 1,000 (11 left), 1,200 (as 1,500),
2,000 (13); the cap itself at 1,500 or 1,000 (seed 8 base then leaves 5 or 7: its whole neighbourhoods of
1,560 and 2,126 are what seat everyone); each part over every rotator overlapping its weeks with every mentor
(10 left, 21 s). Not kept when the caps came in: a narrower neighbourhood, the mentors with a free seat in
the weeks of an unmatched they are eligible for (seed 8 base 2 left where this leaves 0, seed 9 with 7 % removed 12 where this leaves 9; only
history gains, 15 where this leaves 18); fewer candidates to keep the model under a budget of pairs with the
caps raised (60,000 pairs: history 0 left in 22 s, but seed 8 base 2; 85,000-100,000: history 11); column
generation over every pair of the neighbourhood (25-30 LP rounds with a flat tail, then a harder MIP: seed 8
base 15 left, 50 s).
Earlier measures of the pool's neighbourhood (2026-12-06, the seed-8 company as built then, 1,751 rotators and
33,911 pairs, 16 -> 11 unmatched): the whole MIP in ~7.5 s of CPU whatever its node limit (1 to 200), the LP
~1.5 s taking 1,668 rotators whole and the MIP over the other 83 ~0.3 s, the same 11 unmatched; with 10
candidates 13 left; on an earlier build of that company the whole neighbourhood (3,041 rotators: 14 left)
~9 s, a chain of two moves (2,471: 15 left) ~4 s. No MIP over more than ``mip_rotators`` (5,000). (Other
neighbourhoods measured at 10k employees, from the same start: windows of 6 start weeks solved as a MIP with
every weekly row (HiGHS) gain about twice as much per sweep as one pass of the blocks but take ~10x its CPU
time; many blocks apart in time in one flow gain about as much per pass but cost ~5x. With the cheaper flows,
from the plain pass: a third pass, over blocks two cohorts apart, gains ~0.08 % for ~0.45 s of CPU; 10 or 30
candidates instead of 20 lose or cost more; pairs of cohorts as the first pass instead of the cohort pass end
lower at 10k base but far higher when seats are short.) Work per pass is one flow of two cohorts per block,
each arc a candidate pair: it grows linearly with the rotators. Deterministic: the blocks, their order, the
flows and the MIPs (a node limit, no time limit; a MIP whose branch and bound would pass ``mip_seconds`` of
CPU is dropped whole) depend only on the input (the deadline is a safety net). Only the branch and bound counts
against ``mip_seconds``, not the LP before it: on seed 8's base company, on 2026-12-07's machine (about 1.6-1.9
times slower than the one of the figures above), the two LPs took 2.5-2.7 and 4.5-4.7 s of CPU, the MIPs after
them 0.4 and 0.9 s; with another process on the second core the second LP and MIP took 9.5 s together, so
counting both would have dropped the MIP (10 left unmatched instead of 0) on a somewhat slower or busier
machine. The LP stops at three times ``mip_seconds`` of wall-clock time instead (then nothing moves).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from frontline.mentors.solver.cohorts import Cohorts, _flow, _load_arcs, exact_scale
from frontline.mentors.solver.greedy import rescue_unmatched
from frontline.mentors.solver.model import Edges, Instance


@dataclass(frozen=True)
class ImproveSettings:
    candidates: int = 20  # cheapest candidates per rotator in the block flows (plus the current mentor)
    passes: int = 1  # at most this many passes over the blocks
    reach: int = 1  # pairs of cohorts up to this many places apart (in start order) form blocks
    scale: int = 100  # costs times this, rounded, for the flows
    min_gain: float = 1e-4  # stop when a pass gains less than this fraction of the objective
    chunk: int = 1_000  # at most this many rotators per flow (a larger block is re-paired in pieces)
    unmatched_passes: int = 4  # at most this many passes around the cohorts with someone unmatched
    unmatched_pass_share: float = 0.01  # ... another only when the last seated at least this share of them
    rescue_below: int = 100  # after such a pass, ejection chains (:func:`.greedy.rescue_unmatched`) when fewer are left
    mip_rounds: int = 5  # then at most this many exact MIPs around the unmatched (:func:`pair_by_mip`), each
    # after one that seated someone (the pool's neighbourhood in the first only)
    mip_below: int = 100  # ... only when fewer than this many are left (and more than 0)
    mip_candidates: int = 20  # cheapest candidates with a seat per rotator in that MIP (plus the current mentor)
    mip_depth: int = 1  # ... over the rotators of the neighbourhood a chain of this many moves reaches
    mip_nodes: int = 200  # HiGHS branch-and-bound node limit of that MIP (deterministic, unlike a time limit)
    mip_seconds: float = 10.0  # safety net: a MIP whose branch and bound takes this CPU time is dropped
    mip_rotators: int = 5_000  # no MIP over more rotators than this (its CPU time grows faster than its size)
    free_seat_candidates: int = 40  # the free seats' MIP: cheapest eligible mentors with a seat per rotator
    free_seat_rotators: int = 2_500  # ... over at most this many rotators (its time grows faster than its size;
    # a larger one is split in time, :func:`_free_seat_mip`)
    free_seat_part: int = 1_500  # ... and a part of a larger one split in time at most this many (smaller parts
    # take less time and, being more, seat more: seed 8's history company)
    free_seat_open: int = 250  # ... and its MIP only when its LP leaves at most this many rotators fractional


def blocks(cohorts: Cohorts, inst: Instance, reach: int) -> list[tuple[int, int]]:
    """Every pair of overlapping cohorts (indices into ``cohorts.groups``, which are in start order) at
    most ``reach`` places apart: those whose first cohort is even-numbered, then the others, each in
    order of the first cohort (a tiling, then the tiling across its seams: measured at 10k employees,
    0.06 % lower after one pass than every block in start order, same time)."""
    span = [(int(inst.s[g[0]]), int(inst.e[g[0]])) if len(g) else (0, 0) for g in cohorts.groups]
    out = []
    for a in range(len(span)):
        for b in range(a + 1, min(len(span), a + 1 + reach)):
            if span[b][0] < span[a][1] and span[a][0] < span[b][1]:
                out.append((a, b))
    return sorted(out, key=lambda ab: (ab[0] % 2, ab))


def around_unmatched(cohorts: Cohorts, inst: Instance, assign: np.ndarray) -> list[tuple[int, int]]:
    """Every pair of overlapping cohorts, however far apart in start order, of which at least one has
    someone unmatched in ``assign``, in order of the first cohort (see :func:`improve_by_blocks`)."""
    span = [(int(inst.s[g[0]]), int(inst.e[g[0]])) if len(g) else (0, 0) for g in cohorts.groups]
    short = [bool(len(g)) and bool((assign[g] < 0).any()) for g in cohorts.groups]
    out = []
    for a in range(len(span)):
        for b in range(a + 1, len(span)):
            if (short[a] or short[b]) and span[b][0] < span[a][1] and span[a][0] < span[b][1]:
                out.append((a, b))
    return out


def _ranks(lens: np.ndarray) -> np.ndarray:
    """0, 1, ..., len-1 for each length in ``lens``, concatenated."""
    return np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)


def _fewest(rescap: np.ndarray, weeks: np.ndarray, none: int) -> np.ndarray:
    """Per mentor (row of ``rescap``): the fewest seats left over ``weeks`` (``none`` when there are no
    such weeks), at least 0."""
    if not len(weeks):
        return np.full(rescap.shape[0], none, dtype=np.int64)
    return np.maximum(rescap[:, weeks].min(axis=1), 0).astype(np.int64)


def _block_cost(inst: Instance, rots: np.ndarray, mentors: np.ndarray, load: np.ndarray) -> float:
    """The part of the objective that depends on how ``rots`` are paired (``mentors``, -1 unmatched),
    the others' load ``load`` fixed: pair costs, the unmatched penalty and the load increments."""
    ok = mentors >= 0
    pair = float(inst.pair_costs(rots[ok], mentors[ok]).sum()) if ok.any() else 0.0
    count = np.bincount(mentors[ok], minlength=inst.m)
    js = np.nonzero(count)[0]
    c = count[js].astype(np.float64)
    loads = inst.w.load_balance * (c * load[js] + c * (c - 1) / 2)
    return pair + float(loads.sum()) + inst.w.unmatched_penalty * float((~ok).sum())


def _book(inst: Instance, rots: np.ndarray, mentors: np.ndarray, state: tuple, sign: int) -> None:
    """``rots`` leave (``sign`` +1) or join (-1) ``mentors`` (-1: none): seats, annual caps and load."""
    rescap, annual, load = state
    ok = mentors >= 0
    r, mj = rots[ok], mentors[ok]
    if not len(r):
        return
    lens = inst.e[r] - inst.s[r]
    weeks = np.repeat(inst.s[r], lens) + _ranks(lens)
    np.add.at(rescap, (np.repeat(mj, lens), weeks), sign)
    np.add.at(annual, mj, sign)
    np.add.at(load, mj, -sign)


def pair_block(
    inst: Instance,
    cohorts: Cohorts,
    rots: np.ndarray,
    n_a: int,
    assign: np.ndarray,
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
    cand: int,
    scale: int,
) -> bool:
    """Re-pair ``rots`` (the first ``n_a`` of cohort A, the rest of an overlapping cohort B) by one
    min-cost flow, everyone else fixed (see the module docstring). ``state`` = (weekly seats left,
    annual caps left, load per mentor) after ``assign``; ``cand``: how many of each rotator's cheapest
    pool edges with a seat take part (plus its current mentor). Keeps the result (mutating ``assign`` and ``state``) only when the exact objective drops;
    returns whether it did. Long because it builds the flow's layers (rotators, (mentor, cohort),
    mentors with their load arcs) and then books or reverts the result."""
    R = len(rots)
    before = assign[rots].copy()
    _book(inst, rots, before, state, +1)  # free the block: its seats go back
    rescap, annual, load = state
    wa = np.arange(int(inst.s[rots[0]]), int(inst.e[rots[0]]))
    wb = np.arange(int(inst.s[rots[-1]]), int(inst.e[rots[-1]]))
    both = np.intersect1d(wa, wb)
    open_a = (rescap[:, wa].min(axis=1) > 0) & (annual > 0)  # a seat in every week of A's (B's) rotation
    open_b = (rescap[:, wb].min(axis=1) > 0) & (annual > 0)
    loc, mm, cc = cohorts.edges_of(rots)
    ok = np.where(loc < n_a, open_a[mm], open_b[mm])
    loc, mm, cc = loc[ok], mm[ok], cc[ok]  # still by rotator, then cost
    keep = _ranks(np.bincount(loc, minlength=R)) < cand
    cur = np.nonzero(before >= 0)[0]
    loc = np.concatenate([loc[keep], cur])
    mm = np.concatenate([mm[keep], before[cur]])
    cc = np.concatenate([cc[keep], inst.pair_costs(rots[cur], before[cur])])
    first = np.unique(loc * inst.m + mm, return_index=True)[1]  # the current pair may be a candidate too
    loc, mm, cc = loc[first], mm[first], cc[first]
    ments, mpos = np.unique(mm, return_inverse=True)
    M = len(ments)
    sub = rescap[ments]
    seats_a = _fewest(sub, np.setdiff1d(wa, both), R)
    seats_b = _fewest(sub, np.setdiff1d(wb, both), R)
    counts = np.bincount(mpos, minlength=M)
    total = np.minimum.reduce([_fewest(sub, both, R), seats_a + seats_b, np.maximum(annual[ments], 0), counts])
    scale = exact_scale(inst, cc, load[ments], scale)
    lm, lcost = _load_arcs(inst, ments, total, load, scale)
    # nodes: rotators [0, R), (mentor, A) [R, R + M), (mentor, B) [R + M, R + 2M), mentors, sink
    in_b = (loc >= n_a).astype(np.int64)
    T = R + 3 * M
    P = int(round(inst.w.unmatched_penalty * scale))
    # the way out (unmatched, at the penalty) only when someone of the block is unmatched: see the docstring
    out = np.arange(R) if (before < 0).any() else np.zeros(0, dtype=np.int64)
    tails = np.concatenate([loc, out, R + np.arange(2 * M), R + 2 * M + lm])
    heads = np.concatenate(
        [R + in_b * M + mpos, np.full(len(out), T), R + 2 * M + np.tile(np.arange(M), 2), np.full(len(lm), T)]
    )
    caps = np.concatenate(
        [np.ones(len(loc) + len(out), dtype=np.int64), seats_a, seats_b, np.ones(len(lm), dtype=np.int64)]
    )
    costs = np.concatenate(
        [
            np.rint(cc * scale).astype(np.int64),
            np.full(len(out), P, dtype=np.int64),
            np.zeros(2 * M, dtype=np.int64),
            lcost,
        ]
    )
    used = _flow(tails, heads, caps, costs, R, T + 1)[: len(loc)] > 0
    after = np.full(R, -1, dtype=np.int64)
    after[loc[used]] = mm[used]
    better = _block_cost(inst, rots, after, load) < _block_cost(inst, rots, before, load) - 1e-9
    final = after if better else before
    assign[rots] = final
    _book(inst, rots, final, state, -1)
    return better


def neighbourhood(cohorts: Cohorts, inst: Instance, assign: np.ndarray) -> np.ndarray:
    """Every rotator of the cohorts overlapping the weeks of a cohort with someone unmatched in ``assign``
    (those cohorts included), by cohort in start order."""
    span = [(int(inst.s[g[0]]), int(inst.e[g[0]])) for g in cohorts.groups if len(g)]
    groups = [g for g in cohorts.groups if len(g)]
    short = [k for k, g in enumerate(groups) if (assign[g] < 0).any()]
    take = [g for (s, e), g in zip(span, groups, strict=True) if any(s < span[k][1] and span[k][0] < e for k in short)]
    hood = np.concatenate(take) if take else np.zeros(0, dtype=np.int64)
    return hood


def _chain(cohorts: Cohorts, inst: Instance, assign: np.ndarray, hood: np.ndarray, depth: int, cand: int) -> np.ndarray:
    """The rotators of ``hood`` an ejection chain of ``depth`` moves from its unmatched can reach: the
    unmatched, then those paired with one of their candidate mentors (``cand`` cheapest; the unmatched's
    whole pool), then those paired with a candidate of these, ..., in ``hood``'s order."""
    free = assign[hood] < 0
    for _ in range(depth):
        loc, mm, _cc = cohorts.edges_of(hood[free])
        rank = _ranks(np.bincount(loc, minlength=int(free.sum())))
        ments = np.zeros(inst.m, dtype=bool)
        ments[mm[(rank < cand) | (assign[hood[free]][loc] < 0)]] = True
        free |= (assign[hood] >= 0) & ments[np.maximum(assign[hood], 0)]
    return hood[free]


def free_seat_hood(
    inst: Instance, short: np.ndarray, assign: np.ndarray, rescap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The neighbourhood of :func:`pair_by_mip`'s first kind (the module docstring), around the unmatched
    ``short`` of ``assign`` (``rescap``: the seats left). Its span is the weeks from the unmatched's first
    to their last; its mentors are those eligible for one of the unmatched with a free seat in the span.
    Returns (rotators, mentors): the unmatched and everyone paired with one of these mentors whose weeks
    overlap the span; and these mentors (where they may go)."""
    lo, hi = int(inst.s[short].min()), int(inst.e[short].max())
    wanted = np.zeros(inst.m, dtype=bool)
    for b0 in range(0, len(short), 512):
        wanted |= inst.rules(short[b0 : b0 + 512]).eligible.any(axis=0)
    wanted &= (rescap[:, lo:hi] > 0).any(axis=1)
    on = (assign >= 0) & wanted[np.maximum(assign, 0)] & (inst.s < hi) & (inst.e > lo)
    on[short] = True
    return np.nonzero(on)[0], np.nonzero(wanted)[0]


def _eligible_with_a_seat(
    inst: Instance, rots: np.ndarray, mentors: np.ndarray, full: np.ndarray, annual: np.ndarray, block: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in ``rots``, mentor, cost) of every eligible pair of ``rots`` with one of ``mentors`` that
    has a seat in every week of the rotation (``full``: prefix counts of full weeks) and room under its
    annual cap, by rotator, then cost."""
    locs, ments, costs = [], [], []
    for b0 in range(0, len(rots), block):
        ri = rots[b0 : b0 + block]
        rules = inst.rules(ri)
        cost = inst.cost_block(ri, rules.tz_distance)[:, mentors]
        seat = full[mentors][:, inst.e[ri]] - full[mentors][:, inst.s[ri]] == 0
        ok = rules.eligible[:, mentors] & seat.T & (annual[mentors] > 0)[None, :]
        rr, jj = np.nonzero(ok)
        locs.append(b0 + rr)
        ments.append(mentors[jj])
        costs.append(cost[rr, jj])
    loc, mm, cc = (np.concatenate(x) for x in (locs, ments, costs))
    order = np.lexsort((cc, loc))
    return loc[order], mm[order], cc[order]


def pair_by_mip(
    inst: Instance,
    cohorts: Cohorts | None,
    rots: np.ndarray,
    assign: np.ndarray,
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
    cfg: ImproveSettings,
    stats: dict[str, Any],
    mentors: np.ndarray | None = None,
    move: np.ndarray | None = None,
) -> bool:
    """Re-pair ``rots`` by one exact MIP (:class:`.lp.AssignmentModel`: every weekly row that can bind, the
    annual caps, the convex load cost; HiGHS through ``scipy.optimize.milp``), everyone else fixed: the
    seats they hold are out of the mentors' weekly seats and annual caps, their load counts in the load
    cost. Each rotator's ``mip_candidates`` cheapest pool pairs with a seat in its weeks once ``rots`` are
    freed (with ``mentors``: its ``free_seat_candidates`` cheapest eligible pairs with one of them that has
    a seat, from the rules, pool or not), plus its current mentor (so staying put is feasible). The pairs
    the LP relaxation takes whole are fixed, the MIP decides the others (the module docstring). The MIP
    stops at ``mip_nodes`` nodes, so the same input gives the same result; a MIP whose branch and bound
    (after the LP: its CPU time is not counted, the caps bound its size) used ``mip_seconds`` of CPU, or ran
    into HiGHS's wall-clock limit (three times that: only on a machine loaded several times over), is dropped
    whole, never kept cut short; an LP that reaches that wall-clock limit is followed by no MIP (nothing
    moves). Keeps the result (mutating ``assign`` and ``state``) only when the exact objective drops. With
    ``mentors``, no MIP is solved when the LP leaves more than ``free_seat_open`` rotators fractional.
    ``move`` (per rotator of ``rots``): what leaving its current mentor costs in the MIP (not in the
    objective), so that it moves only to seat someone (:func:`make_room`); a paired rotator with a ``move``
    cost also stays paired (its slack's upper bound is 0). Returns whether the objective dropped."""
    from frontline.mentors.solver.lp import AssignmentModel, LpCut

    before = assign[rots].copy()
    _book(inst, rots, before, state, +1)  # free the neighbourhood: its seats go back
    rescap, annual, load = state
    edges = _mip_edges(inst, cohorts, rots, before, rescap, annual, cfg, mentors)
    if move is not None:  # leaving the current mentor costs the MIP ``move``
        pos = np.full(inst.n, -1, dtype=np.int64)
        pos[rots] = np.arange(len(rots))
        at = pos[edges.rot]
        edges = Edges(edges.rot, edges.ment, edges.cost + np.where(edges.ment != before[at], move[at], 0.0))
    model = AssignmentModel(inst, rots, edges, rescap, annual, load - inst.load0)
    if move is not None:  # whoever moving costs (people already told) keeps a mentor: their slack stays 0
        model.upper[model.E + np.nonzero((before >= 0) & (move > 0))[0]] = 0.0
    now = _block_cost(inst, rots, before, load)
    c0 = time.process_time()
    try:  # the LP's whole pairs stay; the MIP decides the rest
        fixed: np.ndarray | None = model.solve_lp(time_limit=3 * cfg.mip_seconds).x[: model.E] > 1 - 1e-6
    except LpCut:  # the LP alone took the MIP's whole allowance (a machine loaded many times over)
        return _not_solved(inst, rots, before, state, stats, "mip_lp_cut", [len(rots), len(edges.rot)])
    except RuntimeError:  # HiGHS did not solve the LP: the MIP decides every pair
        fixed = None
    open_ = len(rots) if fixed is None else len(rots) - int(fixed.sum())  # rotators the MIP decides
    if mentors is not None and open_ > cfg.free_seat_open:  # a long MIP: not solved
        return _not_solved(
            inst, rots, before, state, stats, "free_seats_not_solved", [len(rots), len(edges.rot), open_]
        )
    c1, t1 = time.process_time(), time.perf_counter()
    xs = model.solve_mip(3 * cfg.mip_seconds, cfg.mip_nodes, fixed=fixed)
    cpu, wall = time.process_time() - c1, time.perf_counter() - t1
    n_fixed = -1 if fixed is None else int(fixed.sum())
    kind = "pool" if mentors is None else "free seats"
    entry = [len(rots), len(edges.rot), n_fixed, round(c1 - c0, 2), round(cpu, 2), kind]  # CPU s: LP, MIP
    stats.setdefault("mip_around_unmatched", []).append(entry)
    after = before
    in_time = cpu < cfg.mip_seconds and wall < 0.99 * 3 * cfg.mip_seconds
    if xs is not None and in_time:  # a cut MIP is dropped: what it found would depend on the machine
        after = np.full(len(rots), -1, dtype=np.int64)
        pr, pm = model.picked(xs)
        pos = np.full(inst.n, -1, dtype=np.int64)
        pos[rots] = np.arange(len(rots))
        after[pos[pr]] = pm
    better = _block_cost(inst, rots, after, load) < now - 1e-9
    final = after if better else before
    assign[rots] = final
    _book(inst, rots, final, state, -1)
    return better


def _mip_edges(
    inst: Instance,
    cohorts: Cohorts | None,
    rots: np.ndarray,
    before: np.ndarray,
    rescap: np.ndarray,
    annual: np.ndarray,
    cfg: ImproveSettings,
    mentors: np.ndarray | None,
) -> Edges:
    """The pairs of :func:`pair_by_mip`'s model over ``rots`` (their mentors ``before``, their seats given
    back in ``rescap`` and ``annual``): each rotator's cheapest candidates with a seat in every week of its
    rotation (the pool's ``mip_candidates``, or with ``mentors`` its ``free_seat_candidates`` eligible pairs
    with them), plus its current pair."""
    # a seat in every week of the rotation: prefix counts of full weeks per mentor
    full = np.zeros((inst.m, inst.H + 1), dtype=np.int32)
    np.cumsum(rescap <= 0, axis=1, out=full[:, 1:])
    if mentors is None:  # the pool's pairs
        assert cohorts is not None, "the pool's pairs need the cohorts"
        loc, mm, cc = cohorts.edges_of(rots)
        r = rots[loc]
        ok = (full[mm, inst.e[r]] - full[mm, inst.s[r]] == 0) & (annual[mm] > 0)
        loc, mm, cc = loc[ok], mm[ok], cc[ok]  # still by rotator, then cost
        keep = _ranks(np.bincount(loc, minlength=len(rots))) < cfg.mip_candidates
    else:
        loc, mm, cc = _eligible_with_a_seat(inst, rots, mentors, full, annual)
        keep = _ranks(np.bincount(loc, minlength=len(rots))) < cfg.free_seat_candidates
    cur = np.nonzero(before >= 0)[0]
    loc = np.concatenate([loc[keep], cur])
    mm = np.concatenate([mm[keep], before[cur]])
    cc = np.concatenate([cc[keep], inst.pair_costs(rots[cur], before[cur])])
    first = np.unique(loc * inst.m + mm, return_index=True)[1]  # the current pair may be a candidate too
    return Edges(rots[loc[first]], mm[first], cc[first])


def make_room(
    inst: Instance, assign: np.ndarray, move: np.ndarray, cfg: ImproveSettings, stats: dict[str, Any]
) -> np.ndarray:
    """Seat the unmatched of ``assign`` (mutated and returned) by moving others where that is the only way:
    up to ``mip_rounds`` MIPs over the free seats' neighbourhood (:func:`_free_seat_mip`: in parts split in
    time when it has more than ``free_seat_rotators``), each after one that seated someone, with ``move``
    (per rotator) charged for leaving the current mentor; a rotator with that cost also keeps a mentor, and whoever moves may go to
    any mentor with a free seat in the span (not only to those eligible for an unmatched: a chain that
    seats a Greek speaker may run through a mentor who speaks no Greek). With ``move`` above any difference
    of pairing costs and below the unmatched penalty, nobody moves but to seat someone (a chain of moves
    that seats one costs less than leaving them unmatched), and staying put is always feasible. For a re-run
    after a roster change (the service: kept pairings, whose people were told, cost ``move``; pairings of
    this run nothing)."""
    rescap, annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    state = (rescap, annual, inst.load0 + extra)
    for _ in range(cfg.mip_rounds):
        short = np.nonzero(assign < 0)[0]
        if not 0 < len(short) < cfg.mip_below or not _free_seat_mip(inst, None, short, assign, state, cfg, stats, move):
            break
    return assign


def _not_solved(
    inst: Instance, rots: np.ndarray, before: np.ndarray, state: tuple, stats: dict[str, Any], key: str, entry: list
) -> bool:
    """:func:`pair_by_mip` without a MIP: ``rots`` take their seats ``before`` again; ``entry`` is recorded
    under ``key``. Returns False (nothing moved)."""
    _book(inst, rots, before, state, -1)
    stats.setdefault(key, []).append(entry)
    return False


def _free_seat_mip(
    inst: Instance,
    cohorts: Cohorts | None,
    short: np.ndarray,
    assign: np.ndarray,
    state: tuple,
    cfg: ImproveSettings,
    stats: dict[str, Any],
    move: np.ndarray | None = None,
    limit: int | None = None,
) -> bool:
    """:func:`pair_by_mip` over the free seats' neighbourhood of the unmatched ``short``
    (:func:`free_seat_hood`). Over more than ``limit`` (default ``free_seat_rotators``), ``short`` is split in
    two where their start weeks are furthest apart (:func:`_split_by_weeks`) and each part is tried the same
    way with the limit ``free_seat_part``, in start order: a narrower span has fewer mentors with a free seat
    in it and fewer rotators on them. ``move`` (per rotator of the instance): what leaving the current
    mentor costs the MIP; with it (making room) whoever moves may go to any mentor with a free seat in the
    span. Returns whether the objective dropped."""
    hood, ments = free_seat_hood(inst, short, assign, state[0])
    if not len(ments):
        return False
    if len(hood) <= (cfg.free_seat_rotators if limit is None else limit):
        if move is not None:  # making room: whoever moves keeps a mentor, so may go to any with a free seat
            lo, hi = int(inst.s[short].min()), int(inst.e[short].max())
            ments = np.union1d(ments, np.nonzero((state[0][:, lo:hi] > 0).any(axis=1))[0])
        return pair_by_mip(inst, cohorts, hood, assign, state, cfg, stats, ments, None if move is None else move[hood])
    stats.setdefault("free_seats_not_solved", []).append([len(hood)])
    parts = _split_by_weeks(inst, short)
    better = False
    for part in parts:  # each part's span is narrower, so are its mentors and its neighbourhood
        part = part[assign[part] < 0]
        if len(part):
            better = _free_seat_mip(inst, cohorts, part, assign, state, cfg, stats, move, cfg.free_seat_part) or better
    return better


def _split_by_weeks(inst: Instance, short: np.ndarray) -> list[np.ndarray]:
    """``short`` in two at the widest gap between the start weeks of its rotators (none: one start week)."""
    weeks = np.unique(inst.s[short])
    if len(weeks) < 2:
        return []
    cut = weeks[int(np.argmax(np.diff(weeks))) + 1]
    return [short[inst.s[short] < cut], short[inst.s[short] >= cut]]


def _mip_around_unmatched(
    inst: Instance,
    cohorts: Cohorts,
    assign: np.ndarray,
    state: tuple,
    cfg: ImproveSettings,
    stats: dict[str, Any],
    pool: bool,
) -> bool:
    """One exact MIP around the unmatched (:func:`pair_by_mip`): over the mentors with a free seat in their
    weeks (:func:`free_seat_hood`, at most ``free_seat_rotators``) first; when that gains nothing and
    ``pool``, over the pool's mentors of the rotators a chain reaches (:func:`neighbourhood`,
    :func:`_chain`). Returns whether the objective dropped."""
    short = np.concatenate([g[assign[g] < 0] for g in cohorts.groups])
    if _free_seat_mip(inst, cohorts, short, assign, state, cfg, stats):
        return True
    if not pool:
        return False
    hood = _chain(cohorts, inst, assign, neighbourhood(cohorts, inst, assign), cfg.mip_depth, cfg.mip_candidates)
    return len(hood) <= cfg.mip_rotators and pair_by_mip(inst, cohorts, hood, assign, state, cfg, stats)


def _chunks(inst: Instance, ga: np.ndarray, gb: np.ndarray, chunk: int) -> list[tuple[np.ndarray, int]]:
    """The block of cohorts ``ga`` and ``gb`` as (rotators, how many of them are in ``ga``), in pieces of
    at most ``chunk`` rotators, by time zone (who shares a time zone shares candidate mentors)."""
    rots = np.concatenate([ga, gb])
    if len(rots) <= chunk:
        return [(rots, len(ga))]
    order = np.lexsort((rots, inst.tz_r[rots]))
    out = []
    for k in range(-(-len(rots) // chunk)):
        piece = np.sort(order[k * chunk : (k + 1) * chunk])  # positions: ga's before gb's
        out.append((rots[piece], int((piece < len(ga)).sum())))
    return out


def _one_pass(
    inst: Instance,
    cohorts: Cohorts,
    todo: list[tuple[int, int]],
    assign: np.ndarray,
    state: tuple,
    cfg: ImproveSettings,
    deadline: float,
) -> tuple[int, int]:
    """Re-pair the blocks ``todo`` in order (mutating ``assign`` and ``state``), not after ``deadline``;
    returns (flows, flows kept)."""
    flows = kept = 0
    for a, b in todo:
        for rots, n_a in _chunks(inst, cohorts.groups[a], cohorts.groups[b], cfg.chunk):
            kept += pair_block(inst, cohorts, rots, n_a, assign, state, cfg.candidates, cfg.scale)
            flows += 1
        if time.perf_counter() > deadline:
            break
    return flows, kept


def _unmatched(cohorts: Cohorts, assign: np.ndarray) -> int:
    return sum(int((assign[g] < 0).sum()) for g in cohorts.groups)


def improve_by_blocks(
    inst: Instance,
    cohorts: Cohorts,
    assign: np.ndarray,
    deadline: float,
    stats: dict[str, Any],
    cfg: ImproveSettings = ImproveSettings(),
) -> np.ndarray:
    """Block flows (see the module docstring) from ``assign`` (within every weekly seat and annual cap), pass after
    pass while a pass gains at least ``min_gain`` of the objective, at most ``passes``, and not after
    ``deadline``. Then, while someone is unmatched, passes around them (at most ``unmatched_passes``, each
    while the last seated ``unmatched_pass_share`` of them, one at least): every cohort with someone unmatched
    re-paired with each cohort overlapping it, however far apart in start order (:func:`around_unmatched`; a
    seat the unmatched need may be held by a rotator who can move only to a seat that a cohort two or three
    starts away holds), each pass followed by the ejection chains when fewer than ``rescue_below`` are left;
    then, while fewer than ``mip_below`` are left, at most ``mip_rounds`` exact MIPs around them
    (:func:`pair_by_mip`). Nobody unmatched: nothing more is done. Returns the improved assignment (never
    worse than ``assign``)."""
    assign = assign.copy()
    rescap, annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    state = (rescap, annual, inst.load0 + extra)
    todo = blocks(cohorts, inst, cfg.reach)
    values = [round(inst.total_cost(assign)[0], 3)]
    kept = flows = 0
    for _pass in range(cfg.passes):
        f, k = _one_pass(inst, cohorts, todo, assign, state, cfg, deadline)
        flows, kept = flows + f, kept + k
        values.append(round(inst.total_cost(assign)[0], 3))
        if values[-2] - values[-1] < cfg.min_gain * values[-1] or time.perf_counter() > deadline:
            break
    matched = []
    short = _unmatched(cohorts, assign)
    for _pass in range(cfg.unmatched_passes if short else 0):
        f, k = _one_pass(inst, cohorts, around_unmatched(cohorts, inst, assign), assign, state, cfg, deadline)
        flows, kept = flows + f, kept + k
        now = _unmatched(cohorts, assign)
        if 0 < now <= cfg.rescue_below and rescue_unmatched(inst, assign):  # the flows may open a chain
            rescap, annual, extra = inst.residual(assign, inst.rescap, inst.annual)
            state = (rescap, annual, inst.load0 + extra)
            now = _unmatched(cohorts, assign)
        values.append(round(inst.total_cost(assign)[0], 3))
        matched.append(short - now)
        if short - now < max(1.0, cfg.unmatched_pass_share * short) or not now or time.perf_counter() > deadline:
            break  # (almost) nobody more matched, or everyone is
        short = now
    for _round in range(cfg.mip_rounds):
        short = _unmatched(cohorts, assign)
        if not 0 < short < cfg.mip_below or time.perf_counter() > deadline:
            break
        if not _mip_around_unmatched(inst, cohorts, assign, state, cfg, stats, pool=not _round):
            break
        values.append(round(inst.total_cost(assign)[0], 3))
        matched.append(short - _unmatched(cohorts, assign))
        if not matched[-1]:  # another round only after one that seated someone
            break
    stats["block_passes"] = values
    stats["matched_around_unmatched"] = matched
    stats["blocks"] = len(todo)
    stats["block_flows"] = flows
    stats["block_flows_kept"] = kept
    return assign
