"""Routing quality on the hand-written labelled set (tests/data/observations_eval.jsonl).

Train on the first half (ids 1-230), suggest a department for every item of the second half (ids
231-460), and compare with the true department. The router (frontline.observations.routing.Router) is
trained on what the product would have learnt from by then:

  * "rotators + heads": every first-half observation at the department it ended at: the rotator's pick
    where right, a head's re-route where the pick (or an earlier suggestion) was wrong. This is the
    steady state the product is built for;
  * "rotators only": only the first-half items whose rotator picked a department (40%, 15% of those
    wrong), as if no head ever re-routed anything.

Baselines measured in the same run: the example policy table (frontline.example.toml's
area_departments, Support for the rest) and the best possible area table (each area's most common
true department in the first half). Accuracy is given over the whole second half and over the items
the rotator left without a department (where a suggestion is what decides).

usage: python bench/routing.py
"""

from __future__ import annotations

import json
import sys
import time
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from frontline.observations.routing import Example, Router

DATA = ROOT / "tests" / "data" / "observations_eval.jsonl"
HALF = 230


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    train, test = rows[:HALF], rows[HALF:]
    departments = sorted({r["department"] for r in rows})
    example_table = tomllib.loads((ROOT / "frontline.example.toml").read_text())["observations"]["area_departments"]
    by_area: dict[str, Counter] = defaultdict(Counter)
    for r in train:
        by_area[r["product_area"]][r["department"]] += 1
    best_table = {a: c.most_common(1)[0][0] for a, c in by_area.items()}

    methods: dict[str, list[str]] = {}
    secs: dict[str, float] = {}
    for name, examples in (
        (
            "router, rotators + heads",
            [Example(r["text"], r["product_area"], r["category"], r["department"]) for r in train],
        ),
        (
            "router, rotators only",
            [
                Example(r["text"], r["product_area"], r["category"], r["filed_department"])
                for r in train
                if r["filed_department"]
            ],
        ),
    ):
        t0 = time.perf_counter()
        router = Router(examples)
        guesses = [router.suggest(r["text"], r["product_area"], r["category"], departments) or "Support" for r in test]
        secs[name] = time.perf_counter() - t0
        methods[f"{name} ({len(examples)} examples)"] = guesses
    methods["example policy table"] = [example_table.get(r["product_area"], "Support") for r in test]
    methods["best area table (from half 1)"] = [best_table.get(r["product_area"], "Support") for r in test]

    unrouted = [i for i, r in enumerate(test) if not r["filed_department"]]
    print(f"train: {len(train)} observations (ids 1-{HALF}); test: {len(test)}, of which {len(unrouted)} unrouted")
    print(f"{'method':52} {'all':>7} {'unrouted':>9} {'depts hit':>9}")
    for name, guesses in methods.items():
        acc = sum(g == r["department"] for g, r in zip(guesses, test, strict=True)) / len(test)
        acc_u = sum(guesses[i] == test[i]["department"] for i in unrouted) / len(unrouted)
        hit = len({g for g, r in zip(guesses, test, strict=True) if g == r["department"]})
        print(f"{name:52} {acc:7.1%} {acc_u:9.1%} {hit:5d}/{len(departments)}")
    print("seconds (train + suggest):", ", ".join(f"{k}: {v:.2f}" for k, v in secs.items()))


if __name__ == "__main__":
    main()
