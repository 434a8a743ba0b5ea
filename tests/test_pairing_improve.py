"""The block flows after the cohort passes (:mod:`frontline.mentors.solver.improve`): a block's flow is
the exact optimum of its neighbourhood (checked by brute force), the step never worsens a pairing and
never breaks a rule (checked by the oracle in ``tests/test_pairing.py``, which shares no code with the
solver), and it is deterministic."""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontline.mentors.solver import solve
from frontline.mentors.solver.cohorts import Cohorts, CohortSettings, candidates, cohort_passes, exact_scale, priced
from frontline.mentors.solver.improve import ImproveSettings, around_unmatched, blocks, improve_by_blocks, pair_block
from frontline.mentors.solver.model import Edges, Instance
from tests.test_pairing import W, _assert_sound, _m, _medium, _r, broken_rules, definition_cost, instances


def _keys(inst: Instance, assign: np.ndarray) -> dict:
    return {inst.rotators[i].key: inst.mentors[int(j)].key for i, j in enumerate(assign) if j >= 0}


HEAVY_LOAD = dataclasses.replace(W, load_balance=4.0)  # the load term decides more often


def _setup(rotators, mentors, size=1_000, w=W):
    inst = Instance(rotators, mentors, w)
    pool, n_eligible, _ = candidates(inst, size)
    cohorts = Cohorts(inst, pool, np.nonzero(n_eligible > 0)[0])
    return inst, cohorts


def _random_start(inst: Instance, seed: int) -> np.ndarray:
    """A feasible pairing far from optimal: rotators in random order, each with a random eligible mentor
    that has a seat (or nobody, one time in four)."""
    rnd = np.random.default_rng(seed)
    assign = np.full(inst.n, -1, dtype=np.int64)
    rescap, annual = inst.rescap.copy(), inst.annual.copy()
    for i in rnd.permutation(inst.n):
        rules = inst.rules(np.array([i]))
        ok = np.nonzero((rules.eligible[0]) & inst.free_seats(int(i), rescap, annual))[0]
        if len(ok) and rnd.random() < 0.75:
            j = int(rnd.choice(ok))
            assign[i] = j
            rescap[j, inst.s[i] : inst.e[i]] -= 1
            annual[j] -= 1
    return assign


def _block_optimum(rotators, mentors, w, fixed: dict, free: list, way_out: bool = True) -> float:
    """Brute force: the cheapest assignment of the ``free`` rotators (keys), everyone else as in ``fixed``,
    that breaks no rule (without ``way_out``: every free rotator matched)."""
    best = np.inf
    options = ([None] if way_out else []) + [m.key for m in mentors]
    for choice in itertools.product(options, repeat=len(free)):
        a = {k: v for k, v in fixed.items() if k not in free}
        a.update({k: c for k, c in zip(free, choice, strict=True) if c is not None})
        if not broken_rules(rotators, mentors, w, a):
            best = min(best, definition_cost(rotators, mentors, w, a))
    return best


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_rot=5, max_ment=3), st.integers(0, 10), st.sampled_from([W, HEAVY_LOAD]), st.integers(0, 99))
def test_a_block_flow_is_the_exact_optimum_of_its_two_cohorts(inst_, pick, w, seed):
    """Everyone outside the block fixed (a random pairing), both cohorts re-paired: the same objective
    as brute force over every way to pair the block's rotators (weekly seats of the A-only, shared and
    B-only weeks, annual caps, load costs and kept pairings all count); when everyone of the block was
    matched, over the ways that keep them all matched (the block gives no way out then)."""
    rotators, mentors = inst_
    inst, cohorts = _setup(rotators, mentors, w=w)
    pairs = blocks(cohorts, inst, reach=len(cohorts.groups))
    if not pairs:
        return
    a, b = pairs[pick % len(pairs)]
    assign = _random_start(inst, seed)
    rescap, annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    state = (rescap, annual, inst.load0 + extra)
    rots = np.concatenate([cohorts.groups[a], cohorts.groups[b]])
    way_out = bool((assign[rots] < 0).any())
    pair_block(inst, cohorts, rots, len(cohorts.groups[a]), assign, state, 10**9, 100)
    after = _keys(inst, assign)
    assert broken_rules(rotators, mentors, w, after) == []
    free = [inst.rotators[i].key for i in rots]
    assert definition_cost(rotators, mentors, w, after) == pytest.approx(
        _block_optimum(rotators, mentors, w, after, free, way_out)
    )
    # the state it keeps is the state of the new assignment
    again = inst.residual(assign, inst.rescap, inst.annual)
    assert (again[0] == state[0]).all() and (again[1] == state[1]).all()
    assert np.allclose(inst.load0 + again[2], state[2])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_rot=6, max_ment=3), st.integers(1, 3), st.integers(1, 4), st.integers(0, 99))
def test_the_step_never_worsens_nor_breaks_a_rule_and_stays_above_the_optimum(inst_, size, chunk, seed):
    """From a random pairing, with few candidates and small pieces: never worse, no rule broken,
    never below the exact MIP's optimum."""
    rotators, mentors = inst_
    inst, cohorts = _setup(rotators, mentors, size)
    start = _random_start(inst, seed)
    cfg = ImproveSettings(candidates=size, passes=3, reach=3, chunk=chunk)
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, {}, cfg)
    after = _keys(inst, out)
    assert broken_rules(rotators, mentors, W, after) == []
    before = definition_cost(rotators, mentors, W, _keys(inst, start))
    cost = definition_cost(rotators, mentors, W, after)
    assert cost <= before + 1e-9
    exact = solve(rotators, mentors, W, method="mip")
    assert exact.objective <= cost + 1e-6


@pytest.mark.parametrize("seed", [1, 3])
def test_blocks_improve_the_cohort_passes_on_a_medium_instance(seed):
    """One seat per mentor and week (the weekly rows bind): the cohort method with the block flows ends
    below the cohort passes alone, above the proven optimum, every rule kept; the same input gives the
    same pairs."""
    rotators, mentors = _medium(seed)
    mentors = [dataclasses.replace(m, capacity=1) for m in mentors]
    exact = solve(rotators, mentors, W, method="mip")
    assert exact.method == "mip-exact"
    plain = solve(rotators, mentors, W, method="cohorts", cohort_passes=6, block_passes=0)  # as before
    improved = solve(rotators, mentors, W, method="cohorts")
    for sol in (plain, improved):
        _assert_sound(sol, rotators, mentors)
    assert exact.objective - 1e-6 <= improved.objective < plain.objective
    assert improved.stats["block_flows_kept"] > 0
    assert solve(rotators, mentors, W, method="cohorts").assignments == improved.assignments


def test_the_step_after_the_cohort_passes_gains_and_keeps_every_rule():
    """The step on the cohort passes' own result (its documented use), with pieces smaller than a block."""
    rotators, mentors = _medium(2)
    mentors = [dataclasses.replace(m, capacity=1) for m in mentors]
    inst, cohorts = _setup(rotators, mentors, 40)
    start = cohort_passes(inst, cohorts, np.full(inst.n, -1), CohortSettings(passes=1), time.perf_counter() + 60, {})
    stats: dict = {}
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, ImproveSettings(chunk=7))
    assert broken_rules(rotators, mentors, W, _keys(inst, out)) == []
    assert stats["block_passes"][-1] < stats["block_passes"][0]
    assert stats["block_passes"] == sorted(stats["block_passes"], reverse=True)
    assert stats["block_passes"][-1] == pytest.approx(definition_cost(rotators, mentors, W, _keys(inst, out)))


def test_someone_unmatched_gets_a_seat_through_a_block_of_cohorts_two_apart():
    """X and Y have one seat a week. ``a`` (weeks 0-4) holds X, ``c`` (weeks 2-6) can only have X and is
    unmatched; ``b`` (weeks 1-5, the cohort between them) speaks only German and has Z. The blocks of
    neighbouring cohorts, (a, b) and (b, c), cannot seat ``c``: only a block of a and c moves ``a`` to
    Y. The passes around the unmatched pair c's cohort with every cohort overlapping it, however far
    apart in start order (a and c are two apart), and are run only while someone is unmatched."""
    de = dict(languages=frozenset({"de"}))
    mentors = [_m("X"), _m("Y", tz_hours=1.0), _m("Z", **de)]
    rotators = [_r("a", 0, 4), _r("b", 1, 5, **de), _r("c", 2, 6, previous_mentors=frozenset({"Y"}))]
    inst, cohorts = _setup(rotators, mentors)
    start = np.array([0, 2, -1])
    assert blocks(cohorts, inst, 1) == [(0, 1), (1, 2)]
    assert around_unmatched(cohorts, inst, start) == [(0, 2), (1, 2)]
    assert around_unmatched(cohorts, inst, np.array([0, 2, 0])) == []
    plain: dict = {}
    cfg = ImproveSettings(unmatched_passes=0, mip_rounds=0)
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, plain, cfg)
    assert _keys(inst, out) == {"a": "X", "b": "Z"}
    stats: dict = {}
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, ImproveSettings())
    assert _keys(inst, out) == {"a": "Y", "b": "Z", "c": "X"}
    assert stats["matched_around_unmatched"] == [1]
    assert broken_rules(rotators, mentors, W, _keys(inst, out)) == []


def test_no_second_pass_around_the_unmatched_after_one_that_seated_almost_none_of_them():
    """As above (``c`` is seated only by the pass around the unmatched), with 100 more people whom only
    Z, full, could take: the first pass seats ``c``, 1 of 101 (under 1 %), so no second pass is run;
    with the share at 0 a second runs (and seats nobody)."""
    de = dict(languages=frozenset({"de"}))
    mentors = [_m("X"), _m("Y", tz_hours=1.0), _m("Z", **de)]
    crowd = [_r(f"d{k}", 1, 5, **de) for k in range(100)]
    rotators = [_r("a", 0, 4), _r("b", 1, 5, **de), _r("c", 2, 6, previous_mentors=frozenset({"Y"})), *crowd]
    inst, cohorts = _setup(rotators, mentors)
    start = np.array([0, 2, -1] + [-1] * len(crowd))
    for share, passes in ((ImproveSettings().unmatched_pass_share, [1]), (0.0, [1, 0])):
        stats: dict = {}
        cfg = ImproveSettings(unmatched_pass_share=share, mip_rounds=0)
        out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, cfg)
        assert _keys(inst, out) == {"a": "Y", "b": "Z", "c": "X"}
        assert stats["matched_around_unmatched"] == passes


def test_after_a_pass_around_the_unmatched_an_ejection_chain_may_seat_them():
    """With one candidate per rotator both ``k`` and ``i`` (same weeks) have only X, which has one seat:
    no block flow can seat ``i``. After the pass around the unmatched, the ejection chain moves ``k`` to
    Y (outside its candidates; Y has two seats, ``c`` takes one) and gives ``i`` X; with
    ``rescue_below=0`` (and no MIP around the unmatched) ``i`` stays unmatched."""
    mentors = [_m("X"), _m("Y", tz_hours=1.0, capacity=2)]
    rotators = [_r("k", 0, 4), _r("i", 0, 4, previous_mentors=frozenset({"Y"})), _r("c", 2, 6)]
    inst, cohorts = _setup(rotators, mentors)
    start = np.array([0, -1, 1])
    none: dict = {}
    cfg = ImproveSettings(candidates=1, rescue_below=0, mip_rounds=0)
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, none, cfg)
    assert _keys(inst, out) == {"k": "X", "c": "Y"}
    stats: dict = {}
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, ImproveSettings(candidates=1))
    assert _keys(inst, out) == {"k": "Y", "i": "X", "c": "Y"}
    assert stats["matched_around_unmatched"] == [1]
    assert broken_rules(rotators, mentors, W, _keys(inst, out)) == []


def test_only_the_mip_around_the_unmatched_seats_someone_whose_mentor_two_cohorts_hold():
    """X and Y have one seat a week. ``u`` (weeks 0-2) can only have X; ``a`` holds X in week 0 and ``b``
    (another cohort) in week 1. No block of two cohorts, no ejection chain of one move seats ``u``: ``a``
    and ``b`` must both move to Y. The exact MIP over the cohorts around the unmatched does, and ends at
    the exact optimum (the MIP over the whole instance), deterministically and within every seat; with Y's
    annual cap at 1 only one of them can move, so ``u`` stays unmatched and nobody is overfilled."""
    for y_cap, seated in ((5, True), (1, False)):
        mentors = [_m("X"), _m("Y", tz_hours=1.0, annual_cap=y_cap)]
        rotators = [_r("a", 0, 1), _r("u", 0, 2, previous_mentors=frozenset({"Y"})), _r("b", 1, 2)]
        inst, cohorts = _setup(rotators, mentors)
        start = np.array([0, -1, 0])
        plain: dict = {}
        out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, plain, ImproveSettings(mip_rounds=0))
        assert _keys(inst, out) == {"a": "X", "b": "X"}
        outs = []
        for _ in range(2):
            stats: dict = {}
            outs.append(improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, ImproveSettings()))
            assert len(inst.overfull(outs[-1], inst.rescap)) == 0
            assert broken_rules(rotators, mentors, W, _keys(inst, outs[-1])) == []
        assert np.array_equal(outs[0], outs[1])
        if seated:
            assert _keys(inst, outs[0]) == {"a": "Y", "u": "X", "b": "Y"}
            assert stats["mip_around_unmatched"][0][2] >= 0  # pairs its LP took whole (fixed)
            assert stats["matched_around_unmatched"] == [0, 1]  # the passes around the unmatched seat nobody, the MIP u
            exact = solve(rotators, mentors, W, method="mip")
            assert inst.total_cost(outs[0])[0] == pytest.approx(exact.objective)
        else:
            assert outs[0][1] == -1


def test_the_mip_over_free_seats_reaches_mentors_outside_the_pool():
    """X and Y have one seat a week; ``u`` (weeks 0-1) can take either but both are half full: ``a`` holds
    X in week 1, ``c`` (who had X before) Y in week 0. The others' pool is one mentor, X (the cheapest),
    and the ejection chains are off: no block flow and no MIP over the pool can move ``a`` to Y. The MIP
    over the mentors with a free seat (every eligible pair with them, outside the pool too) does, and
    seats ``u``: the exact optimum. Without its candidates (0) ``u`` stays unmatched."""
    mentors = [_m("X"), _m("Y", tz_hours=1.0)]
    rotators = [_r("u", 0, 2), _r("a", 1, 2), _r("c", 0, 1, previous_mentors=frozenset({"X"}))]
    inst, cohorts = _setup(rotators, mentors, size=1)
    start = np.array([-1, 0, 1])
    cfg = ImproveSettings(candidates=1, rescue_below=0)
    none: dict = {}
    out = improve_by_blocks(
        inst, cohorts, start, time.perf_counter() + 60, none, dataclasses.replace(cfg, free_seat_candidates=0)
    )
    assert _keys(inst, out) == {"a": "X", "c": "Y"}
    assert [kind for *_, kind in none["mip_around_unmatched"]] == ["free seats", "pool"]  # neither gains
    stats: dict = {}
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, cfg)
    assert _keys(inst, out) == {"u": "X", "a": "Y", "c": "Y"}
    assert stats["mip_around_unmatched"][0][-1] == "free seats"
    assert stats["matched_around_unmatched"] == [0, 1]  # the passes around the unmatched seat nobody, the MIP u
    assert broken_rules(rotators, mentors, W, _keys(inst, out)) == []
    assert inst.total_cost(out)[0] == pytest.approx(solve(rotators, mentors, W, method="mip").objective)
    # over more rotators than free_seat_rotators, or with an LP leaving more than free_seat_open rotators
    # fractional, the free seats' MIP is not solved: the pool's MIP cannot seat u
    for limit, not_solved in (dict(free_seat_rotators=2), [[3]]), (dict(free_seat_open=-1), [[3, 5, 0]]):
        capped: dict = {}
        out = improve_by_blocks(
            inst, cohorts, start, time.perf_counter() + 60, capped, dataclasses.replace(cfg, **limit)
        )
        assert _keys(inst, out) == {"a": "X", "c": "Y"}
        assert capped["free_seats_not_solved"] == not_solved  # [rotators, pairs u-X u-Y a-X a-Y c-Y, fractional]
        assert [kind for *_, kind in capped["mip_around_unmatched"]] == ["pool"]


def test_a_free_seat_neighbourhood_over_the_cap_is_solved_in_parts_split_at_the_widest_gap_in_time():
    """The case above twice, ten weeks apart, with the same mentors: ``u`` (weeks 0-1) and ``v`` (weeks
    10-11) are each seated only by moving ``a`` (or ``b``) to Y. The free seats' neighbourhood of both has 6
    rotators, over a cap of 5: it is split where their start weeks are furthest apart, and each part (3
    rotators, a part's cap 3) is solved: both seated, the exact optimum. With a part's cap of 2 the parts
    are over it, and a part of one start week is not split further: nobody moves."""
    mentors = [_m("X"), _m("Y", tz_hours=1.0)]
    rotators = [
        _r("u", 0, 2),
        _r("a", 1, 2),
        _r("c", 0, 1, previous_mentors=frozenset({"X"})),
        _r("v", 10, 12),
        _r("b", 11, 12),
        _r("d", 10, 11, previous_mentors=frozenset({"X"})),
    ]
    inst, cohorts = _setup(rotators, mentors, size=1)
    start = np.array([-1, 0, 1, -1, 0, 1])
    cfg = ImproveSettings(candidates=1, rescue_below=0, free_seat_rotators=5, free_seat_part=3)
    stats: dict = {}
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, cfg)
    assert _keys(inst, out) == {"u": "X", "a": "Y", "c": "Y", "v": "X", "b": "Y", "d": "Y"}
    assert stats["free_seats_not_solved"] == [[6]]
    assert [(n, kind) for n, *_, kind in stats["mip_around_unmatched"]] == [(3, "free seats"), (3, "free seats")]
    assert broken_rules(rotators, mentors, W, _keys(inst, out)) == []
    assert inst.total_cost(out)[0] == pytest.approx(solve(rotators, mentors, W, method="mip").objective)
    capped: dict = {}
    out = improve_by_blocks(
        inst, cohorts, start, time.perf_counter() + 60, capped, dataclasses.replace(cfg, free_seat_part=2)
    )
    assert _keys(inst, out) == {"a": "X", "c": "Y", "b": "X", "d": "Y"}
    assert capped["free_seats_not_solved"] == [[6], [3], [3]]


def test_make_room_moves_someone_only_to_seat_the_unmatched():
    """The case above, as a re-run sees it: ``a`` (X, week 1) and ``c`` (Y, week 0) were told their
    mentors, ``u`` (weeks 0-1) has none. Moving ``a`` to Y seats ``u`` with X; ``c`` stays. When moving
    costs more than leaving ``u`` unmatched (the penalty), nobody moves."""
    from frontline.mentors.solver import make_room

    mentors = [_m("X"), _m("Y", tz_hours=1.0)]
    rotators = [_r("u", 0, 2), _r("a", 1, 2), _r("c", 0, 1, previous_mentors=frozenset({"X"}))]
    current = {"a": "X", "c": "Y"}
    after, costs, unmatched, stats = make_room(rotators, mentors, W, current, dict.fromkeys(current, 100.0))
    assert after == {"u": "X", "a": "Y", "c": "Y"}
    assert set(costs) == set(after) and stats["mip_around_unmatched"][0][-1] == "free seats"
    assert broken_rules(rotators, mentors, W, after) == []
    assert unmatched == []
    after, _, unmatched, _ = make_room(rotators, mentors, W, current, dict.fromkeys(current, 2_000.0))
    assert after == current and [u.key for u in unmatched] == ["u"]


def test_make_room_never_takes_a_mentor_from_someone_told():
    """X, the only mentor, has two seats a week: ``k`` and ``j`` (both told: moving costs 100) hold them in
    weeks 0-1, week 2 is free. ``u`` needs X in week 0, ``v`` in weeks 1-2. Taking X from ``k`` would seat
    both (two penalties saved for one): make-room keeps ``k`` paired, and nobody more is seated. Someone
    not told yet (``k`` at no cost) may lose the seat when that seats two."""
    from frontline.mentors import solver

    mentors = [_m("X", capacity=2)]
    rotators = [_r("k", 0, 2), _r("j", 0, 2), _r("u", 0, 1), _r("v", 1, 3)]
    current = {"k": "X", "j": "X"}
    after, _, unmatched, stats = solver.make_room(rotators, mentors, W, current, {"k": 100.0, "j": 100.0})
    assert stats["mip_around_unmatched"], "the MIP ran"
    assert after == current and sorted(u.key for u in unmatched) == ["u", "v"]
    assert all(u.reason for u in unmatched)
    after, _, unmatched, _ = solver.make_room(rotators, mentors, W, current, {"k": 0.0, "j": 100.0})
    assert after == {"j": "X", "u": "X", "v": "X"} and [u.key for u in unmatched] == ["k"]


def test_the_mip_keeps_the_pairs_it_is_told_to_and_decides_the_rest():
    """X and Y have one seat a week and ``b`` (who had Y before) can only have X, ``a`` either:
    the optimum gives ``b`` X and ``a`` Y. With ``a``-X fixed (as :func:`.improve.pair_by_mip` fixes the
    pairs its LP takes whole), ``a`` keeps X and ``b``, left only the full X, stays unmatched."""
    from frontline.mentors.solver.lp import AssignmentModel

    mentors = [_m("X"), _m("Y", tz_hours=1.0)]
    rotators = [_r("a"), _r("b", previous_mentors=frozenset({"Y"}))]
    inst, cohorts = _setup(rotators, mentors)
    rots = np.arange(2)
    loc, mm, cc = cohorts.edges_of(rots)
    edges = Edges(rots[loc], mm, cc)
    model = AssignmentModel(inst, rots, edges, inst.rescap, inst.annual, np.zeros(inst.m))
    picked = lambda xs: {inst.rotators[r].key: inst.mentors[m].key for r, m in zip(*model.picked(xs), strict=True)}  # noqa: E731
    assert picked(model.solve_mip(None)) == {"a": "Y", "b": "X"}
    fixed = (edges.rot == 0) & (edges.ment == 0)
    assert fixed.sum() == 1
    assert picked(model.solve_mip(None, fixed=fixed)) == {"a": "X"}


def test_the_mip_around_the_unmatched_decides_every_pair_when_its_lp_fails(monkeypatch):
    """The case above where only the MIP seats ``u``: with the LP relaxation failing (HiGHS gives up), no
    pair is fixed and the MIP alone still seats ``u`` (-1 fixed in the stats); the pairing is not lost."""
    from frontline.mentors.solver.lp import AssignmentModel

    def failing(self, *args, **kwargs):
        raise RuntimeError("LP relaxation failed: simulated")

    monkeypatch.setattr(AssignmentModel, "solve_lp", failing)
    mentors = [_m("X"), _m("Y", tz_hours=1.0)]
    rotators = [_r("a", 0, 1), _r("u", 0, 2, previous_mentors=frozenset({"Y"})), _r("b", 1, 2)]
    inst, cohorts = _setup(rotators, mentors)
    stats: dict = {}
    out = improve_by_blocks(inst, cohorts, np.array([0, -1, 0]), time.perf_counter() + 60, stats, ImproveSettings())
    assert _keys(inst, out) == {"a": "Y", "u": "X", "b": "Y"}
    assert stats["mip_around_unmatched"][0][2] == -1


def test_the_mips_cpu_allowance_counts_its_branch_and_bound_not_its_lp(monkeypatch):
    """The case above where only the MIP seats ``u``. An LP that takes longer than ``mip_seconds`` of CPU
    (here made to, as on a slow or loaded machine) does not make the MIP after it be dropped: ``u`` is
    seated, and the stats give the LP's and the MIP's CPU seconds apart. An LP that HiGHS stops at its
    wall-clock limit is followed by no MIP: nothing moves (``mip_lp_cut``)."""
    from frontline.mentors.solver.lp import AssignmentModel, LpCut

    solve_lp = AssignmentModel.solve_lp

    def slow(self, *args, **kwargs):
        t = time.process_time()
        while time.process_time() - t < 0.3:  # CPU, as a slow machine's LP
            pass
        return solve_lp(self, *args, **kwargs)

    mentors = [_m("X"), _m("Y", tz_hours=1.0)]
    rotators = [_r("a", 0, 1), _r("u", 0, 2, previous_mentors=frozenset({"Y"})), _r("b", 1, 2)]
    inst, cohorts = _setup(rotators, mentors)
    start = np.array([0, -1, 0])
    cfg = ImproveSettings(mip_seconds=0.2)
    monkeypatch.setattr(AssignmentModel, "solve_lp", slow)
    stats: dict = {}
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, cfg)
    assert _keys(inst, out) == {"a": "Y", "u": "X", "b": "Y"}
    (_, _, _, lp_cpu, mip_cpu, _), *_ = stats["mip_around_unmatched"]
    assert lp_cpu >= 0.3 > cfg.mip_seconds > mip_cpu

    def cut(self, *args, **kwargs):
        raise LpCut("LP relaxation stopped at its limit: simulated")

    monkeypatch.setattr(AssignmentModel, "solve_lp", cut)
    stats = {}
    out = improve_by_blocks(inst, cohorts, start, time.perf_counter() + 60, stats, cfg)
    assert _keys(inst, out) == {"a": "X", "b": "X"}
    assert "mip_around_unmatched" not in stats
    assert stats["mip_lp_cut"] == [[3, 5]]  # the pool's neighbourhood: every rotator, 5 pairs


def test_a_block_flow_counts_the_load_the_others_leave():
    """Two mentors alike but for the load they already carry (X: 3 rotators before, Y: none), and two
    overlapping rotations both with X: the block moves both to Y, the even-load term's choice."""

    mentors = [_m("X", capacity=2, annual_cap=9, load_so_far=3), _m("Y", capacity=2, annual_cap=9)]
    rotators = [_r("a", 0, 4), _r("b", 2, 6)]
    inst, cohorts = _setup(rotators, mentors, w=HEAVY_LOAD)
    assign = np.array([0, 0])
    rescap, annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    state = (rescap, annual, inst.load0 + extra)
    rots = np.concatenate(cohorts.groups)
    assert pair_block(inst, cohorts, rots, 1, assign, state, 10**9, 100)
    assert _keys(inst, assign) == {"a": "Y", "b": "Y"}


def test_a_block_flow_takes_the_cheapest_candidates_that_have_a_seat():
    """With one candidate per rotator, that candidate is the cheapest mentor with a seat in the rotator's
    weeks, not the cheapest of the pool: X is cheaper for ``a`` but ``c`` (outside the block) holds X's
    only seat, so ``a`` gets Y (with the cheapest of the pool it would stay unmatched)."""
    mentors = [_m("X"), _m("Y", tz_hours=1.0)]
    rotators = [_r("c", 0, 4), _r("a", 2, 6)]
    inst, cohorts = _setup(rotators, mentors)
    assign = np.array([0, -1])
    rescap, annual, extra = inst.residual(assign, inst.rescap, inst.annual)
    state = (rescap, annual, inst.load0 + extra)
    assert pair_block(inst, cohorts, np.array([1]), 1, assign, state, 1, 100)
    assert _keys(inst, assign) == {"c": "X", "a": "Y"}


def test_exact_scale_is_the_smallest_factor_that_keeps_every_cost_whole():
    inst, _ = _setup([_r("a")], [_m("X")])  # W: load 0.5, penalty 1000
    assert exact_scale(inst, np.array([7.0, 12.5]), np.array([0.0, 3.0]), 100) == 2
    assert exact_scale(inst, np.array([7.0, 2.6]), np.array([0.0]), 100) == 10  # 2.6 and 0.5
    assert exact_scale(inst, np.array([1 / 3]), np.array([0.0]), 100) == 100  # none exact: as before
    inst, _ = _setup([_r("a")], [_m("X")], w=dataclasses.replace(W, load_balance=1.0))
    assert exact_scale(inst, np.array([7.0, 12.0]), np.array([2.0]), 100) == 1


def test_a_priced_pass_leaves_the_seat_a_later_cohort_needs():
    """X is the cheapest for both ``a`` (weeks 0-4) and ``b`` (weeks 2-6) but has one seat; Y suits
    ``a`` only (one hour away) and nobody else suits ``b``. In start order ``a`` takes X and ``b`` stays
    unmatched; with X's shared weeks priced (what seating ``b`` there is worth), ``a`` takes Y first.
    The priced cohorts keep every pair and its order, each cost raised by the share of its weeks' prices."""
    mentors = [_m("X"), _m("Y", tz_hours=1.0, languages=frozenset({"en", "de"}))]
    rotators = [_r("a", 0, 4), _r("b", 2, 6, languages=frozenset({"ja", "en"}), skills=frozenset())]
    rotators[1] = dataclasses.replace(rotators[1], previous_mentors=frozenset({"Y"}))
    inst, cohorts = _setup(rotators, mentors)
    cfg = CohortSettings(passes=1)
    empty = np.full(inst.n, -1, dtype=np.int64)
    plain = cohort_passes(inst, cohorts, empty, cfg, time.perf_counter() + 60, {})
    assert _keys(inst, plain) == {"a": "X"}
    mu = np.zeros((inst.m, inst.H))
    mu[0, 2:4] = 2.0  # X's weeks shared by a and b
    p = priced(inst, cohorts, mu, 0.5)
    assert (p.pool.rot == cohorts.pool.rot).all() and (p.pool.ment == cohorts.pool.ment).all()
    assert np.allclose(p.pool.cost - cohorts.pool.cost, np.where(p.pool.ment == 0, 2.0, 0.0))
    out = cohort_passes(inst, p, empty, cfg, time.perf_counter() + 60, {})
    assert _keys(inst, out) == {"a": "Y", "b": "X"}
    huge = priced(inst, cohorts, mu * 1e6, 0.5)  # never above half the penalty: a seat stays better than none
    assert np.allclose(huge.pool.cost, np.where(p.pool.ment == 0, W.unmatched_penalty / 2, cohorts.pool.cost))


def test_the_cohort_method_pairs_again_by_a_priced_pass_after_the_bounds():
    """Below ``flow_bound_rotators``: one plain pass (its pairs seed the bound's flow), the bounds, then
    the pairing from scratch by the priced pass; sound, and the same input gives the same pairs."""
    rotators, mentors = _medium(3)
    mentors = [dataclasses.replace(m, capacity=1) for m in mentors]
    sol = solve(rotators, mentors, W, method="cohorts")
    _assert_sound(sol, rotators, mentors)
    assert len(sol.stats["unpriced_pass"]) == 1 and len(sol.stats["cohort_passes"]) == 1
    assert "every_week_bound" in sol.stats
    assert solve(rotators, mentors, W, method="cohorts").assignments == sol.assignments
