"""Why a rotator has no mentor, and the smallest relaxation of the rules that would give one."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from frontline.mentors.solver.model import Instance, Rules
from frontline.mentors.solver.problem import Mentor, Rotator, Unmatched


def _label(x: Mentor) -> str:
    return x.name or str(x.key)


def _whole_hours(distances: np.ndarray) -> float:
    return float(np.ceil(distances.min() - 1e-9))


def _reason(r: Rotator, rules: Rules) -> tuple[str, bool]:
    """The first rule that leaves no mentor, and whether no relaxation can help (language, department)."""
    if not rules.language.any():
        langs = ", ".join(sorted(r.languages)) or "(none recorded)"
        return f"no mentor shares a language ({langs})", True
    base = rules.language & rules.dept
    if not base.any():
        return "every mentor who shares a language is in the rotator's own department", True
    if not (base & rules.tz).any():
        return "no mentor in another department within the time-zone limit", False
    if not (base & rules.tz & rules.not_previous).any():
        return "only previous mentors are eligible", False
    if not (base & rules.tz & rules.not_previous & rules.available).any():
        return "every eligible mentor is absent during the rotation", False
    return "all eligible mentors are at capacity or at their annual cap", False


def _relaxation(inst: Instance, rules: Rules, seat: np.ndarray, cost: np.ndarray) -> str | None:
    """The smallest change that would give a mentor, tried in this order: a wider time-zone limit;
    one more seat, no absence, or a previous mentor again for the cheapest mentor that needs only that;
    a wider time-zone limit together with a free seat."""
    base = rules.language & rules.dept
    tz, prev, avail, dtz = rules.tz, rules.not_previous, rules.available, rules.tz_distance
    wider = base & prev & avail & seat & ~tz
    if wider.any():
        return f"possible if the time-zone limit were {_whole_hours(dtz[wider]):g} h"
    for mask, text in (
        (base & tz & prev & avail & ~seat, "possible if {} had one more seat"),
        (base & tz & prev & ~avail & seat, "possible if {} were not absent during the rotation"),
        (base & tz & ~prev & avail & seat, "possible only with a previous mentor again ({})"),
    ):
        js = np.nonzero(mask)[0]
        if len(js):
            return text.format(_label(inst.mentors[int(js[np.argmin(cost[js])])]))
    far = base & prev & ~tz
    if far.any():
        return f"possible if the time-zone limit were {_whole_hours(dtz[far]):g} h and a mentor there had a free seat"
    return None


def explain_unmatched(inst: Instance, assign: np.ndarray, idx: Iterable[int], block: int = 256) -> list[Unmatched]:
    """Why each rotator in ``idx`` has no mentor, and the smallest relaxation that would give one
    (re-checking eligibility under relaxed rules against the capacity left by ``assign``)."""
    idx = [int(i) for i in idx]
    if not idx:
        return []
    if inst.m == 0:
        return [Unmatched(inst.rotators[i].key, "there are no mentors", None) for i in idx]
    rescap, annual, _ = inst.residual(assign, inst.rescap, inst.annual)
    out = []
    seats: dict[tuple[int, int], np.ndarray] = {}  # per weeks: mentors with a seat in each and under the cap
    for b0 in range(0, len(idx), block):  # the rules and costs of a block of rotators at once
        ri = np.array(idx[b0 : b0 + block])
        block_rules = inst.rules(ri)
        costs = inst.cost_block(ri, block_rules.tz_distance)
        for row, i in enumerate(ri.tolist()):
            r = inst.rotators[i]
            rules = Rules(*(a[row] for a in block_rules))
            reason, hopeless = _reason(r, rules)
            relax = None
            if not hopeless:
                weeks = (int(inst.s[i]), int(inst.e[i]))
                if weeks not in seats:
                    seats[weeks] = inst.free_seats(i, rescap, annual)
                relax = _relaxation(inst, rules, seats[weeks], costs[row])
            out.append(Unmatched(r.key, reason, relax))
    return out
