"""The redaction corpus: every positive and negative case must come out exactly as expected (no
regressions); known misses are documented limitations and count against recall. Precision and recall
(per replaced item, by kind) are printed; run with ``-s`` to see them.

The bookkeeping is checked too: a positive case's expected text redacts whole items (no part of an
address is left next to its placeholder), and a known miss really misses (once redaction handles it,
it moves to the positive cases, in ``data/make_redaction_corpus.py``)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from frontline.observations.redaction import iban_ok, luhn_ok, redact

CORPUS = Path(__file__).parent / "data" / "redaction_corpus.jsonl"
PLACEHOLDER = re.compile(r"\[(email|iban|card|ssn|ip|phone)\]")


def load_corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_corpus_is_large_and_balanced():
    cases = load_corpus()
    kinds = Counter(c["kind"] for c in cases)
    assert len(cases) >= 80
    assert kinds["positive"] >= 40 and kinds["negative"] >= 30
    expected_kinds = Counter(k for c in cases for k in PLACEHOLDER.findall(c["expected"]))
    for kind in ("email", "phone", "card", "iban"):
        assert expected_kinds[kind] >= 5, kind


@pytest.mark.parametrize("case", [c for c in load_corpus() if c["kind"] != "known_miss"], ids=lambda c: c["text"][:40])
def test_case_redacts_exactly(case):
    clean, counts = redact(case["text"])
    assert clean == case["expected"]
    assert counts == dict(Counter(PLACEHOLDER.findall(case["expected"])))


def test_positive_cases_expect_whole_items_redacted():
    """A placeholder glued to the rest of an address (``o'[email]``: the ``o'`` leaks) is a miss, not an
    expectation: such a case belongs to the known misses, with the whole item redacted as expected."""
    partial = re.compile(r"[\w.'+%-]\[email\]|\[email\][\w@-]")
    glued = [c["text"] for c in load_corpus() if c["kind"] == "positive" and partial.search(c["expected"])]
    assert not glued, f"positive cases expecting part of an address to stay: {glued}"


@pytest.mark.parametrize("case", [c for c in load_corpus() if c["kind"] == "known_miss"], ids=lambda c: c["text"][:40])
def test_known_misses_still_miss(case):
    """A known miss that redaction now gets right is a positive case: move it (and recall goes up)."""
    clean, _counts = redact(case["text"])
    assert clean != case["expected"], "redaction handles this now: list it as a positive case"


def test_precision_and_recall(capsys):
    """An item counts as found only when the case comes out exactly as expected: a partly redacted
    address (``o'[email]``) is a miss, not a hit."""
    tp = fp = fn = 0
    per_kind: dict[str, Counter] = {}
    for case in load_corpus():
        expected = Counter(PLACEHOLDER.findall(case["expected"]))
        clean, got = redact(case["text"])
        exact = clean == case["expected"]
        for kind in set(expected) | set(got):
            k = per_kind.setdefault(kind, Counter())
            hit = min(expected[kind], got.get(kind, 0)) if exact else 0
            k["tp"] += hit
            k["fp"] += max(0, got.get(kind, 0) - expected[kind])
            k["fn"] += expected[kind] - hit
    for _kind, k in sorted(per_kind.items()):
        tp, fp, fn = tp + k["tp"], fp + k["fp"], fn + k["fn"]
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    with capsys.disabled():
        print(
            f"\nredaction corpus: {len(load_corpus())} cases; precision {precision:.3f}, recall {recall:.3f} "
            f"(tp={tp} fp={fp} fn={fn})"
        )
        for kind, k in sorted(per_kind.items()):
            print(f"  {kind:6s} tp={k['tp']:3d} fp={k['fp']:2d} fn={k['fn']:2d}")
    assert precision == 1.0  # no false positive on the corpus
    # 58 of 62 items: the 4 known misses (o'brien's partly redacted address among them since it is counted
    # honestly as a miss). Fixing redaction (another issue) raises this bound again.
    assert recall >= 0.93


def test_unchanged_text_is_returned_as_is():
    text = "Export broke in 3.14.2 on 2024-03-15 at 10:30; 7 months; $1,299.00; SKU-4821-XL"
    assert redact(text) == (text, {})
    assert redact("") == ("", {})


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")
    assert not iban_ok("DE89 3704 0044 0532 0130 0")  # wrong length for Germany
