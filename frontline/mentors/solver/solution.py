"""From an assignment vector to a :class:`Solution`: objective, pair costs, explanations, honest gap."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from frontline.mentors.solver.explain import explain_unmatched
from frontline.mentors.solver.model import Instance
from frontline.mentors.solver.problem import Solution


def finish(
    inst: Instance, assign: np.ndarray, bound: float | None, method: str, t0: float, stats: dict[str, Any]
) -> Solution:
    """The solution for ``assign`` (mentor index per rotator, -1 unmatched), with ``bound`` clipped to
    the objective (numerical noise must not show a negative gap)."""
    total, costs = inst.total_cost(assign)
    matched = np.nonzero(assign >= 0)[0].tolist()
    assignments = {inst.rotators[i].key: inst.mentors[int(assign[i])].key for i in matched}
    cost_map = {inst.rotators[i].key: round(float(c), 6) for i, c in zip(matched, costs, strict=True)}
    unmatched = explain_unmatched(inst, assign, np.nonzero(assign < 0)[0])
    gap = None
    if bound is not None:
        bound = float(min(bound, total))
        gap = (total - bound) / total if total > 0 else 0.0
    return Solution(assignments, cost_map, unmatched, total, bound, gap, time.perf_counter() - t0, method, stats)
