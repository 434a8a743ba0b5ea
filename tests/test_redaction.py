"""The redaction corpus: every positive and negative case must come out exactly as expected (no
regressions); known misses are documented limitations and count against recall. Precision and recall
(per replaced item, by kind) are printed; run with ``-s`` to see them.

The bookkeeping is checked too: a positive case's expected text redacts whole items (no part of an
address is left next to its placeholder), and a known miss really misses (once redaction handles it,
it moves to the positive cases, in ``data/make_redaction_corpus.py``)."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from frontline.core.policy import parse_policy
from frontline.observations.redaction import allow_list, iban_ok, looks_like_date, luhn_ok, redact

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import redaction as bench

PLACEHOLDER = bench.PLACEHOLDER
load_corpus = bench.load_corpus


def test_corpus_is_large_and_balanced():
    cases = load_corpus()
    kinds = Counter(c["kind"] for c in cases)
    assert len(cases) >= 220
    assert kinds["positive"] >= 120 and kinds["negative"] >= 100
    assert sum(bool(c.get("realistic")) for c in cases) >= 60
    expected_kinds = Counter(k for c in cases for k in PLACEHOLDER.findall(c["expected"]))
    for kind in ("email", "phone", "card", "iban", "ip"):
        assert expected_kinds[kind] >= 12, kind
    assert expected_kinds["ssn"] >= 6


@pytest.mark.parametrize("case", [c for c in load_corpus() if c["kind"] != "known_miss"], ids=lambda c: c["text"][:40])
def test_case_redacts_exactly(case):
    clean, counts = redact(case["text"], case.get("allow", ()))
    assert clean == case["expected"]
    assert counts == dict(Counter(PLACEHOLDER.findall(case["expected"])))


def test_positive_cases_expect_whole_items_redacted():
    """A placeholder glued to the rest of an address (``o'[email]``: the ``o'`` leaks) is a miss, not an
    expectation: such a case belongs to the known misses, with the whole item redacted as expected."""
    partial = re.compile(r"[\w.+%-]\[email\]|\w'\[email\]|\[email\][\w@-]")
    glued = [c["text"] for c in load_corpus() if c["kind"] == "positive" and partial.search(c["expected"])]
    assert not glued, f"positive cases expecting part of an address to stay: {glued}"


@pytest.mark.parametrize("case", [c for c in load_corpus() if c["kind"] == "known_miss"], ids=lambda c: c["text"][:40])
def test_known_misses_still_miss(case):
    """A known miss that redaction now gets right is a positive case: move it (and recall goes up)."""
    clean, _counts = redact(case["text"])
    assert clean != case["expected"], "redaction handles this now: list it as a positive case"


def test_recall_per_kind_and_clean_lines(capsys):
    """Recall per claimed kind >= 99% and no clean line changed (the realistic ones included: versions,
    dates after a phone word, tracking numbers, SIRET, the company's own hotline); the figures are printed
    beside the code before issue 17 (``bench/redaction_baseline.py``), as ``bench/redaction.py`` does."""
    cases = load_corpus()
    now = bench.measure(bench.current(), cases)
    before = bench.measure(bench.baseline(), cases)
    with capsys.disabled():
        print(f"\nredaction corpus: {len(cases)} cases\n" + bench.report(now, before))
    for kind, k in now["per_kind"].items():
        assert bench.recall(k) >= 0.99, (kind, k)
        assert k["fp"] == 0, (kind, k)
    assert now["clean_changed"] == 0, now["changed_lines"]
    # the corpus does tell the difference: the old code misses and over-redacts on it
    assert before["realistic_changed"] >= 10
    assert min(bench.recall(k) for k in before["per_kind"].values()) < 0.9


def test_allow_list_keeps_the_companys_own_numbers_only():
    allowed = ["+49 800 1234567", "support@help.example", "@frontline-shop.example", "DE89 3704 0044 0532 0130 00"]
    text = (
        "hotline 0800 1234567 and +49 800 1234567, cust +49 170 1234567; support@help.example, "
        "a@frontline-shop.example, jane@example.com; refund DE89-3704-0044-0532-0130-00 not GB82 WEST 1234 5698 7654 32"
    )
    clean, counts = redact(text, allowed)
    assert clean == (
        "hotline 0800 1234567 and +49 800 1234567, cust [phone]; support@help.example, "
        "a@frontline-shop.example, [email]; refund DE89-3704-0044-0532-0130-00 not [iban]"
    )
    assert counts == {"phone": 1, "email": 1, "iban": 1}
    # without the allow-list every one of them is redacted
    assert redact(text)[1] == {"phone": 3, "email": 3, "iban": 2}
    assert allow_list(tuple(allowed)) is allow_list(tuple(allowed))  # parsed once


def test_policy_names_the_allow_list():
    policy = parse_policy({"support_department": "Support", "redaction": {"allow": ["0800 123 4567"]}})
    assert policy.redaction.allow == ["0800 123 4567"]
    assert parse_policy({"support_department": "Support"}).redaction.allow == []


def test_dates_are_told_from_numbers():
    for raw in ("15.03.2024", "03-15-2024", "2024-03-15", "2024 03 15", "12.03.24", "04/11/2024"):
        assert looks_like_date(raw), raw
    for raw in ("415-555-2671", "32.13.2024", "030 901820", "2024-13-45"):
        assert not looks_like_date(raw), raw


def test_unchanged_text_is_returned_as_is():
    text = "Export broke in 3.14.2 on 2024-03-15 at 10:30; 7 months; $1,299.00; SKU-4821-XL"
    assert redact(text) == (text, {})
    assert redact("") == ("", {})


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")
    assert not iban_ok("DE89 3704 0044 0532 0130 0")  # wrong length for Germany
