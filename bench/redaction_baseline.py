"""Baseline for ``bench/redaction.py``: redaction as it was before issue 17 (a frozen copy of
``frontline/observations/redaction.py`` at b1d90ca), so the benchmark and the corpus test print the
figures of the current code beside the old ones. Not used by Frontline itself.

PII redaction applied to every observation before it is stored.

:func:`redact` replaces customers' private data with typed placeholders and returns how many of each
kind it replaced (the counts are stored, never the values).

Caught (in this order, so an earlier kind's digits are never re-read as a later kind):

``[email]``  addresses like ``jane.doe+tag@mail.example.co.uk``.
``[iban]``   IBANs, with or without spaces, any case, whose ISO 13616 mod-97 check digits are right.
``[card]``   payment card numbers: 13-19 digits, optionally grouped with single spaces or dashes,
             that pass the Luhn check.
``[ssn]``    US social security numbers written ``123-45-6789`` (valid area/group/serial).
``[ip]``     IPv4 addresses (four dot-separated octets 0-255), unless written as a version
             (``v1.2.3.4``, ``version 1.2.3.4``).
``[phone]``  phone numbers found by ``phonenumbers.PhoneNumberMatcher`` (leniency VALID):
             international ``+``/``00`` numbers of any country, and national formats of the regions in
             :data:`PHONE_REGIONS`. A national number written as a bare digit run (``4155552671``) is
             only taken when a phone word (phone, call, mobile, tel, ...) precedes it, so order numbers and
             product codes stay readable.

Left alone on purpose: dates, times, versions (``3.14.2``), prices, quantities, short numbers, order
and ticket numbers, product codes, postal addresses, and people's names (the text is written by staff
who are asked not to type names; names cannot be found reliably by patterns). Known misses: obfuscated
emails (``jane at example dot com``), phone numbers of regions outside :data:`PHONE_REGIONS` written
without ``+``, card numbers that fail Luhn (mistyped), and numbers split across unusual separators.
A bare order number of 13-19 digits that happens to pass Luhn (1 in 10) is redacted as ``[card]``.
"""

from __future__ import annotations

import re
from collections import Counter

import phonenumbers

PHONE_REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "IN", "AU", "BR")
PLACEHOLDERS = {kind: f"[{kind}]" for kind in ("email", "iban", "card", "ssn", "ip", "phone")}

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"
)
# Country code, check digits, then 11-30 alphanumerics in groups of up to 4 separated by one space.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{1,4}){3,8}\b")
# A run of digit groups separated by single spaces or dashes.
_DIGIT_GROUPS = re.compile(r"(?<![\w.,/:])\d+(?:[ -]\d+)*(?![\w]|[.,/:]\d)")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?<!v)({_OCTET}(?:\.{_OCTET}){{3}})(?![\w.]|\.\d)", re.IGNORECASE)
_VERSION_WORD = re.compile(r"(?:version|release|build|v)\s*$", re.IGNORECASE)
_PHONE_WORD = re.compile(
    r"(?:phone|ph|tel|telephone|call(?:ed)?|mobile|cell|number|no|whatsapp|sms|text|fax|ring|reach|contact)\W{0,3}(?:\w+\W+){0,2}$",
    re.IGNORECASE,
)
_PLACEHOLDER_RE = re.compile(r"\[(?:email|iban|card|ssn|ip|phone)\]")

_IBAN_LENGTHS = {
    "AD": 24,
    "AE": 23,
    "AT": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "CH": 21,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "EE": 20,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IS": 26,
    "IT": 27,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MT": 31,
    "NL": 18,
    "NO": 15,
    "PL": 28,
    "PT": 25,
    "RO": 24,
    "SA": 24,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "TR": 26,
    "UA": 29,
}


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    iban = candidate.replace(" ", "").upper()
    if not (15 <= len(iban) <= 34) or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not iban[4:].isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _replace_spans(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + placeholder + text[end:]
    return text


def _redact_ibans(text: str) -> tuple[str, int]:
    spans = []
    for m in _IBAN.finditer(text):
        # The pattern may swallow a following word ("... 3000 BIC"); try shorter group prefixes too.
        parts = m.group(0).split(" ")
        for n in range(len(parts), 0, -1):
            candidate = " ".join(parts[:n])
            if iban_ok(candidate):
                spans.append((m.start(), m.start() + len(candidate)))
                break
    return _replace_spans(text, spans, PLACEHOLDERS["iban"]), len(spans)


def _redact_cards(text: str) -> tuple[str, int]:
    spans = []
    for m in _DIGIT_GROUPS.finditer(text):
        raw = m.group(0)
        digits_total = sum(ch.isdigit() for ch in raw)
        if digits_total < 13:
            continue
        # Groups with their offsets; find the longest contiguous run of groups that is a valid card.
        groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", raw)]
        best = None
        for i in range(len(groups)):
            for j in range(len(groups), i, -1):
                start, end = groups[i][0], groups[j - 1][1]
                digits = re.sub(r"\D", "", raw[start:end])
                if 13 <= len(digits) <= 19 and luhn_ok(digits):
                    if best is None or (end - start) > (best[1] - best[0]):
                        best = (start, end)
                    break
        if best is not None:
            spans.append((m.start() + best[0], m.start() + best[1]))
    return _replace_spans(text, spans, PLACEHOLDERS["card"]), len(spans)


def _redact_ipv4(text: str) -> tuple[str, int]:
    spans = []
    for m in _IPV4.finditer(text):
        if _VERSION_WORD.search(text[max(0, m.start() - 12) : m.start()]):
            continue
        spans.append(m.span())
    return _replace_spans(text, spans, PLACEHOLDERS["ip"]), len(spans)


def _phone_span_ok(text: str, start: int, raw: str) -> bool:
    before = text[start - 1] if start > 0 else " "
    end = start + len(raw)
    after = text[end] if end < len(text) else " "
    if before.isalnum() or before in "-_/#" or after.isalnum() or after in "-_/":
        return False  # part of a code or identifier such as INV-2024-000123
    stripped = raw.lstrip("(")
    if stripped.startswith("+") or stripped.startswith("00"):
        return True
    if re.search(r"[ ().\-/]", raw.strip()):
        return True  # formatted like a phone number
    return bool(_PHONE_WORD.search(text[max(0, start - 40) : start]))


def _redact_phones(text: str) -> tuple[str, int]:
    if sum(ch.isdigit() for ch in text) < 7:
        return text, 0
    count = 0
    for region in PHONE_REGIONS:
        spans = []
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            if _PLACEHOLDER_RE.search(match.raw_string):
                continue
            if _phone_span_ok(text, match.start, match.raw_string):
                spans.append((match.start, match.end))
        if spans:
            text = _replace_spans(text, spans, PLACEHOLDERS["phone"])
            count += len(spans)
        if sum(ch.isdigit() for ch in text) < 7:
            break
    return text, count


def redact(text: str) -> tuple[str, dict[str, int]]:
    """``(clean_text, counts)``: ``text`` with PII replaced by ``[email]``, ``[phone]``, ``[card]``,
    ``[iban]``, ``[ssn]``, ``[ip]``; ``counts`` maps each kind found to how many were replaced."""
    counts: Counter[str] = Counter()
    if not text:
        return text, {}
    spans = [m.span() for m in _EMAIL.finditer(text)]
    if spans:
        text = _replace_spans(text, spans, PLACEHOLDERS["email"])
        counts["email"] += len(spans)
    if any(ch.isdigit() for ch in text):
        for kind, step in (
            ("iban", _redact_ibans),
            ("card", _redact_cards),
            ("ssn", None),
            ("ip", _redact_ipv4),
            ("phone", _redact_phones),
        ):
            if step is None:
                found = [m.span() for m in _SSN.finditer(text)]
                text, n = _replace_spans(text, found, PLACEHOLDERS["ssn"]), len(found)
            else:
                text, n = step(text)
            if n:
                counts[kind] += n
    return text, dict(counts)
