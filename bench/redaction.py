"""Redaction quality on the corpus ``tests/data/redaction_corpus.jsonl``, beside the code before issue 17.

For each claimed kind (email, phone, card, iban, ssn, ip): recall over the items the corpus expects
redacted (an item counts as found only when its case comes out exactly as expected, so a partly
redacted address is a miss), false positives, and how many clean lines (nothing to redact) were
changed, overall and for the realistic clean lines written as rotators write (versions, dates after a
phone word, tracking numbers, SIRET, the company's own hotline). The same figures for
``bench/redaction_baseline.py`` (the old code, which has no allow-list) are printed beside them.
Known misses (outside what redaction claims: a mistyped card, a national number of a region it does
not parse) are listed separately and left out of the claimed recall.

usage: python bench/redaction.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CORPUS = ROOT / "tests" / "data" / "redaction_corpus.jsonl"
PLACEHOLDER = re.compile(r"\[(email|iban|card|ssn|ip|phone)\]")
KINDS = ("email", "phone", "card", "iban", "ssn", "ip")

Redact = Callable[[dict], tuple[str, dict[str, int]]]


def load_corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def measure(redact_case: Redact, cases: list[dict] | None = None) -> dict:
    """Per kind ``tp``/``fn``/``fp`` over the claimed cases (positives and negatives), ``known`` (known
    misses found), and the clean lines changed (``clean_changed`` of ``clean``; ``realistic_changed``
    of ``realistic``). ``redact_case(case)`` returns ``(clean_text, counts)``."""
    cases = load_corpus() if cases is None else cases
    per_kind: dict[str, Counter] = {k: Counter() for k in KINDS}
    clean = clean_changed = realistic = realistic_changed = 0
    changed_lines: list[str] = []
    for case in cases:
        expected = Counter(PLACEHOLDER.findall(case["expected"]))
        out, got = redact_case(case)
        exact = out == case["expected"]
        if case["kind"] == "negative":
            clean += 1
            realistic += bool(case.get("realistic"))
            if out != case["text"]:
                clean_changed += 1
                realistic_changed += bool(case.get("realistic"))
                changed_lines.append(f"{case['text']!r} -> {out!r}")
        for kind in set(expected) | set(got):
            k = per_kind.setdefault(kind, Counter())
            hit = min(expected[kind], got.get(kind, 0)) if exact else 0
            bucket = "known" if case["kind"] == "known_miss" else ""
            k[bucket + "tp"] += hit
            k[bucket + "fn"] += expected[kind] - hit
            k["fp"] += max(0, got.get(kind, 0) - expected[kind])
    return {
        "per_kind": per_kind,
        "clean": clean,
        "clean_changed": clean_changed,
        "realistic": realistic,
        "realistic_changed": realistic_changed,
        "changed_lines": changed_lines,
    }


def recall(k: Counter) -> float:
    return k["tp"] / (k["tp"] + k["fn"]) if k["tp"] + k["fn"] else 1.0


def current() -> Redact:
    from frontline.observations.redaction import redact

    return lambda case: redact(case["text"], case.get("allow", ()))


def baseline() -> Redact:
    import redaction_baseline

    return lambda case: redaction_baseline.redact(case["text"])


def report(now: dict, before: dict) -> str:
    lines = [
        f"{'kind':6s} {'items':>5s}  {'recall now':>10s} {'before':>7s}  {'fp now':>6s} {'before':>6s}",
    ]
    for kind in KINDS:
        k, b = now["per_kind"][kind], before["per_kind"][kind]
        lines.append(f"{kind:6s} {k['tp'] + k['fn']:5d}  {recall(k):10.3f} {recall(b):7.3f}  {k['fp']:6d} {b['fp']:6d}")
    lines.append(
        f"clean lines changed: {now['clean_changed']} of {now['clean']} now, {before['clean_changed']} before; "
        f"realistic clean lines: {now['realistic_changed']} of {now['realistic']} now, "
        f"{before['realistic_changed']} before"
    )
    known = sum(k["knowntp"] + k["knownfn"] for k in now["per_kind"].values())
    found = sum(k["knowntp"] for k in now["per_kind"].values())
    lines.append(f"known misses (not claimed): {found} of {known} found")
    for line in now["changed_lines"]:
        lines.append(f"  changed now: {line}")
    return "\n".join(lines)


def main() -> None:
    cases = load_corpus()
    t0 = time.perf_counter()
    now = measure(current(), cases)
    t1 = time.perf_counter()
    before = measure(baseline(), cases)
    t2 = time.perf_counter()
    print(f"redaction corpus: {len(cases)} cases")
    print(report(now, before))
    print(f"time over the corpus: {t1 - t0:.3f} s now, {t2 - t1:.3f} s before (ratio {(t1 - t0) / (t2 - t1):.2f})")


if __name__ == "__main__":
    main()
