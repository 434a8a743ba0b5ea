"""PII redaction applied to every observation before it is stored.

:func:`redact` replaces customers' private data with typed placeholders and returns how many of each
kind it replaced (the counts are stored, never the values).

Caught (in this order, so an earlier kind's digits are never re-read as a later kind):

``[email]``  addresses like ``jane.doe+tag@mail.example.co.uk``, ``o'brien@example.ie``, quoted local
             parts (``"john doe"@example.com``), internationalised addresses (``josé.müller@exämple.de``,
             ``用户@例子.广告``), and addresses written out to dodge filters: ``jane at example dot com``,
             ``jane [at] example [dot] com``, ``jane(at)web.de``, ``jane.doe at gmail.com`` (a plain
             ``at`` counts only before a spoken ``dot`` or a well-known mail provider, so "works at
             acme.com" stays).
``[iban]``   IBANs, with spaces, dashes or none, any case, whose ISO 13616 mod-97 check digits are right.
``[card]``   payment card numbers: digit groups separated by spaces (one or two), dashes or dots, that
             pass the Luhn check, start like a card brand (Visa, Mastercard, Amex, Diners, JCB, Discover,
             Maestro, UnionPay) with that brand's length, and are grouped like a card (one run, fours, or
             Amex/Diners 4-6-5/4-6-4). Numbers after "tracking", "SIRET", "order", ... are left alone.
``[ssn]``    US social security numbers ``123-45-6789`` (valid area/group/serial); ``123 45 6789`` and
             ``123456789`` only after "SSN" / "social security".
``[ip]``     IPv6 addresses (full, compressed ``2001:db8::1``, with zone or embedded IPv4) and IPv4
             addresses, unless written as a version (``v1.2.3.4``, ``Chrome/124.0.0.0``, ``firmware
             4.2.10.1``, ``from 4.2.10.1 to 4.2.11.0``).
``[phone]``  phone numbers found by ``phonenumbers.PhoneNumberMatcher`` (leniency VALID):
             international ``+``/``00`` numbers of any country, and national formats of the regions in
             :data:`PHONE_REGIONS`. A national number written as a bare digit run (``4155552671``) is
             only taken when a phone word (phone, call, mobile, tel, ...) precedes it, so order numbers and
             product codes stay readable. Dates (``15.03.2024``, ``03-15-2024``) are never phones, and
             neither is a number right after "SIREN", "order", "tracking", "ticket", ...

The company's own numbers and addresses (the hotline, the support mailbox, a shop IBAN) are named in the
policy (``[redaction] allow``) and passed as ``allow``: they are kept as written. An entry starting with
``@`` allows a whole mail domain.

Left alone on purpose: dates, times, versions (``3.14.2``), prices, quantities, short numbers, order,
ticket and tracking numbers, SIRET/SIREN, product codes, postal addresses, and people's names (the text
is written by staff who are asked not to type names; names cannot be found reliably by patterns). Known
misses: phone numbers of regions outside :data:`PHONE_REGIONS` written without ``+``, card numbers that
fail Luhn (mistyped), and numbers split across unusual separators.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import phonenumbers

PHONE_REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "IN", "AU", "BR")
PLACEHOLDERS = {kind: f"[{kind}]" for kind in ("email", "iban", "card", "ssn", "ip", "phone")}

# -- e-mail -------------------------------------------------------------------------------------------
_LOCAL_CHARS = r"[\w.!#$%&'*+/=?^`{|}~-]"
_DOMAIN = r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])"
_EMAIL = re.compile(
    rf"""(?<![\w.+-])(?:"[^"\r\n@]{{1,64}}"|[^\W_]{_LOCAL_CHARS}{{0,63}}|_{_LOCAL_CHARS}{{0,63}})@{_DOMAIN}"""
)
_TLDS = r"com|org|net|edu|gov|info|biz|io|co|eu|de|fr|es|it|nl|be|at|ch|uk|us|ca|au|ie|pt|pl|se|dk|no|fi|br|in|mx|jp|cn"
_SPOKEN_AT = r"(?:\s*[\[\(\{<]\s*at\s*[\]\)\}>]\s*|\s+at\s+|\s*@\s*)"
_SPOKEN_DOT = r"(?:\s*[\[\(\{<]\s*dot\s*[\]\)\}>]\s*|\s+dot\s+)"
_LABEL = r"[^\W_][\w-]{0,62}"
# Written-out addresses: at least one spoken separator, ending in a known top-level domain.
_EMAIL_SPOKEN = re.compile(
    rf"(?<![\w.+-])[^\W_][\w.+-]{{0,63}}(?:{_SPOKEN_DOT}[^\W_][\w+-]{{0,63}})*"
    rf"{_SPOKEN_AT}{_LABEL}(?:(?:{_SPOKEN_DOT}|\.){_LABEL})*(?:{_SPOKEN_DOT}|\.)(?:{_TLDS})(?![\w-])",
    re.IGNORECASE,
)
_MAIL_PROVIDERS = (
    "gmail|googlemail|yahoo|hotmail|outlook|live|icloud|me|aol|gmx|web|t-online|proton|protonmail|"
    "orange|free|laposte|wanadoo|libero|virgilio|mail|yandex|zoho|btinternet|sky|comcast|telefonica"
)
_PLAIN_AT_PROVIDER = re.compile(rf"\s+at\s+(?:{_MAIL_PROVIDERS})\.", re.IGNORECASE)

# -- numbers ------------------------------------------------------------------------------------------
# Country code, check digits, then 11-30 alphanumerics in groups of up to 4 separated by spaces or a dash.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:(?: {1,2}|-)?[A-Za-z0-9]{1,4}){3,8}\b")
# A run of digit groups separated by one or two spaces, a dash or a dot.
_DIGIT_GROUPS = re.compile(r"(?<![\w.,/:-])\d+(?:(?: {1,2}|[.-])\d+)*(?![\w]|[.,/:-]\d)")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_SSN_LOOSE = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}( ?)(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_WORD = re.compile(r"(?:\bssn|\bss#|social\s+security(?:\s+(?:number|no\.?|#))?)\W{0,4}(?:\w+\W+){0,2}$", re.I)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?<!\w/)({_OCTET}(?:\.{_OCTET}){{3}})(?!\w|\.\w)", re.IGNORECASE)
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*[0-9A-Fa-f](?:%[\w.]*\w)?(?![\w:])")
_VERSION_WORDS = (
    r"version|versión|versão|versione|ver|rev|revision|release|build|v|firmware|fw|bios|driver|kernel|patch|update|updated|upgrade|upgraded|"
    r"downgraded|rolled\s+back|chrome|chromium|firefox|safari|edge|opera|brave|android|ios|ipados|macos|"
    r"windows|win|os|app|sdk|agent|client|browser|webview"
)
_VERSION_BEFORE = re.compile(
    rf"\b(?:{_VERSION_WORDS})\b\.?[\s:=/]*(?:(?:version|ver|v|build|is|was|now|to|from|on)\b\.?[\s:=]*){{0,2}}v?$",
    re.IGNORECASE,
)
_VERSION_CHAIN = re.compile(r"\s*(?:to|->|→|and|or|,|/|vs\.?)\s*v?", re.IGNORECASE)
_PHONE_WORD = re.compile(
    r"(?:phone|ph|tel|telephone|call(?:ed)?|mobile|cell|number|no|whatsapp|sms|text|fax|ring|reach|contact)\W{0,3}(?:\w+\W+){0,2}$",
    re.IGNORECASE,
)
# Identifiers that are not about a person: a number right after one of these words is left alone.
_NOT_PII_WORD = re.compile(
    r"\b(?:siret|siren|tva|vat|ust-?id|tracking|sendung(?:snummer)?|colis|suivi|seguimiento|envío|awb|parcel|"
    r"shipment|consignment|order|orders|bestellung|bestellnummer|commande|pedido|invoice|rechnung|facture|"
    r"factura|ticket|case|ref|reference|serial|s/n|sn|imei|iccid|model|sku|part|po|article|artikel|batch|lot|barcode|"
    r"ean|gtin|upc|contract|vertrag|vertragsnummer|contrat|contrato|policy|kundennummer|"
    r"(?:customer|account|acct|user|member|client)\s*(?:id|no|nr|#))"
    r"\b[\s.:#°nº-]*(?:(?:no|nr|n°|number|num|id|code|is|was|#)\b\.?[\s:#-]*){0,2}$",
    re.IGNORECASE,
)
_PLACEHOLDER_RE = re.compile(r"\[(?:email|iban|card|ssn|ip|phone)\]")
_DATE_FORMS = (
    (re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{2}|\d{4})"), ("dmy", "mdy")),
    (re.compile(r"(\d{4})([./ -])(\d{1,2})\2(\d{1,2})"), ("ymd",)),
)

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


@dataclass(frozen=True)
class AllowList:
    """The company's own numbers and addresses, normalised for comparison (see :func:`allow_list`)."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()  # upper-case alphanumerics of every entry (IBANs, cards, numbers)
    phones_international: frozenset[tuple[int, int]] = frozenset()  # (country code, national number)
    phones_national: frozenset[int] = field(default_factory=frozenset)

    def keeps(self, raw: str) -> bool:
        raw = raw.strip()
        if "@" in raw:
            low = raw.lower()
            return low in self.emails or low.rsplit("@", 1)[1] in self.domains
        return _key(raw) in self.keys

    def keeps_phone(self, number: phonenumbers.PhoneNumber, raw: str) -> bool:
        if (number.country_code, number.national_number) in self.phones_international:
            return True
        written_national = not raw.lstrip("( ").startswith(("+", "00"))
        return written_national and number.national_number in self.phones_national


NOTHING_ALLOWED = AllowList()


def _key(raw: str) -> str:
    key = re.sub(r"[^0-9A-Za-z]", "", raw).upper()
    return key[2:] if raw.strip().startswith("00") else key


@lru_cache(maxsize=32)
def allow_list(entries: tuple[str, ...]) -> AllowList:
    """Normalise the policy's ``[redaction] allow`` entries: e-mail addresses, ``@domain`` (every address
    of the domain), phone numbers (international, or national in any of :data:`PHONE_REGIONS`), IBANs."""
    emails: set[str] = set()
    domains: set[str] = set()
    keys: set[str] = set()
    intl: set[tuple[int, int]] = set()
    national: set[int] = set()
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("@"):
            domains.add(entry[1:].lower())
            continue
        if "@" in entry:
            emails.add(entry.lower())
            continue
        keys.add(_key(entry))
        for region in (None, *PHONE_REGIONS):
            try:
                number = phonenumbers.parse(entry, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(number) and number.country_code and number.national_number:
                intl.add((number.country_code, number.national_number))
                national.add(number.national_number)
            if region is None or entry.startswith(("+", "00")):
                break
    return AllowList(frozenset(emails), frozenset(domains), frozenset(keys), frozenset(intl), frozenset(national))


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
    iban = re.sub(r"[ -]", "", candidate).upper()
    if not (15 <= len(iban) <= 34) or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not iban[4:].isascii() or not iban[4:].isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def card_brand_ok(digits: str) -> bool:
    """Whether ``digits`` starts like a payment card brand and has one of that brand's lengths."""
    n, two, four = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if two in (30, 36, 38, 39):
        return 14 <= n <= 19  # Diners Club
    if two == 35:
        return 16 <= n <= 19  # JCB
    if digits[0] in "56":
        return 12 <= n <= 19  # Discover, UnionPay, Maestro
    return False


def _card_grouping_ok(groups: list[str]) -> bool:
    sizes = [len(g) for g in groups]
    if len(sizes) == 1:
        return True
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True  # Amex, Diners
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


def looks_like_date(raw: str) -> bool:
    """``15.03.2024``, ``03/15/24``, ``2024-03-15``, ``2024 03 15``: a calendar date, not a number."""
    raw = raw.strip()
    for pattern, orders in _DATE_FORMS:
        m = pattern.fullmatch(raw)
        if not m:
            continue
        a, b, c = int(m.group(1)), int(m.group(3)), int(m.group(4))
        for order in orders:
            y, mo, d = {"dmy": (c, b, a), "mdy": (c, a, b), "ymd": (a, b, c)}[order]
            if y < 100:
                y += 2000
            try:
                date(y, mo, d)
            except ValueError:
                continue
            return True
    return False


def _replace_spans(text: str, spans: list[tuple[int, int]], placeholder: str) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + placeholder + text[end:]
    return text


def _not_pii_before(text: str, start: int) -> bool:
    return bool(_NOT_PII_WORD.search(text[max(0, start - 40) : start]))


def _redact_emails(text: str, allow: AllowList) -> tuple[str, int]:
    spans = [m.span() for m in _EMAIL.finditer(text) if not allow.keeps(m.group(0))]
    text = _replace_spans(text, spans, PLACEHOLDERS["email"])
    spoken = []
    for m in _EMAIL_SPOKEN.finditer(text):
        raw = m.group(0)
        low = raw.lower()
        plain_at = "@" not in raw and " at " in low and " dot " not in low and not re.search(r"[\[\(\{<]", raw)
        if plain_at and not _PLAIN_AT_PROVIDER.search(raw):
            continue  # "works at acme.com": a plain "at" needs a spoken dot or a mail provider
        if "@" in raw and not re.search(rf"{_SPOKEN_DOT}|\s@|@\s", raw, re.IGNORECASE):
            continue  # an ordinary address already handled above
        spoken.append(m.span())
    text = _replace_spans(text, spoken, PLACEHOLDERS["email"])
    return text, len(spans) + len(spoken)


def _redact_ibans(text: str, allow: AllowList) -> tuple[str, int]:
    spans = []
    pos = 0
    while m := _IBAN.search(text, pos):
        # The pattern may swallow following words ("... 3000 BIC", "... 00 not GB82 ..."): try shorter
        # group prefixes too, and look again right after the IBAN found (or the first group).
        parts = re.split(r"( {1,2}|-)", m.group(0))
        pos = m.start() + len(parts[0])
        for n in range(len(parts), 0, -2):
            candidate = "".join(parts[:n])
            if iban_ok(candidate):
                if not allow.keeps(candidate):
                    spans.append((m.start(), m.start() + len(candidate)))
                pos = m.start() + len(candidate)
                break
    return _replace_spans(text, spans, PLACEHOLDERS["iban"]), len(spans)


def _card_at(raw: str, groups: list[re.Match[str]]) -> tuple[int, int] | None:
    """The span (within ``raw``) of a card made of whole consecutive ``groups``: the whole run when it is
    one; in a longer run (several cards in a row), the first window of up to five groups that is."""
    digits = "".join(g.group(0) for g in groups)
    if len(digits) <= 19:
        windows = [(0, len(groups))]
    else:
        windows = [(i, j) for i in range(len(groups)) for j in range(min(len(groups), i + 5), i, -1)]
    for i, j in windows:
        part = [g.group(0) for g in groups[i:j]]
        joined = "".join(part)
        if 12 <= len(joined) <= 19 and luhn_ok(joined) and card_brand_ok(joined) and _card_grouping_ok(part):
            return groups[i].start(), groups[j - 1].end()
    return None


def _redact_cards(text: str, allow: AllowList) -> tuple[str, int]:
    spans = []
    for m in _DIGIT_GROUPS.finditer(text):
        raw = m.group(0)
        if len(set(re.findall(r"\D+", raw))) > 1:
            continue  # one kind of separator throughout
        groups = list(re.finditer(r"\d+", raw))
        if sum(len(g.group(0)) for g in groups) < 12 or _not_pii_before(text, m.start()):
            continue
        rest = groups
        while rest:
            found = _card_at(raw, rest)
            if found is None:
                break
            start, end = found
            if not allow.keeps(raw[start:end]):
                spans.append((m.start() + start, m.start() + end))
            rest = [g for g in rest if g.start() >= end]
    return _replace_spans(text, spans, PLACEHOLDERS["card"]), len(spans)


def _redact_ssns(text: str, allow: AllowList) -> tuple[str, int]:
    spans = [m.span() for m in _SSN.finditer(text) if not allow.keeps(m.group(0))]
    for m in _SSN_LOOSE.finditer(text):
        if m.span() not in spans and _SSN_WORD.search(text[max(0, m.start() - 40) : m.start()]):
            spans.append(m.span())
    return _replace_spans(text, spans, PLACEHOLDERS["ssn"]), len(spans)


def _is_version(text: str, start: int) -> bool:
    return bool(_VERSION_BEFORE.search(text[max(0, start - 40) : start]))


def _redact_ips(text: str, allow: AllowList) -> tuple[str, int]:
    spans = []
    for m in _IPV6.finditer(text):
        address = m.group(0).partition("%")[0]
        if "::" not in address and address.count(":") != 7:
            continue  # times (10:30:00) and MAC addresses (six groups) are not IPv6
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            continue
        if not allow.keeps(address):
            spans.append(m.span())
    text = _replace_spans(text, spans, PLACEHOLDERS["ip"])
    count = len(spans)
    spans = []
    version_end = -1
    for m in _IPV4.finditer(text):
        # "from 4.2.10.1 to 4.2.11.0": a number right after a version (joined by to / and / ,) is one too
        chained = version_end >= 0 and _VERSION_CHAIN.fullmatch(text[version_end : m.start()])
        if chained or _is_version(text, m.start()):
            version_end = m.end()
            continue
        if not allow.keeps(m.group(0)):
            spans.append(m.span())
    return _replace_spans(text, spans, PLACEHOLDERS["ip"]), count + len(spans)


def _phone_span_ok(text: str, start: int, raw: str) -> bool:
    before = text[start - 1] if start > 0 else " "
    end = start + len(raw)
    after = text[end] if end < len(text) else " "
    if before.isalnum() or before in "-_/#" or after.isalnum() or after in "-_/":
        return False  # part of a code or identifier such as INV-2024-000123
    if looks_like_date(raw) or _not_pii_before(text, start) or _is_version(text, start):
        return False
    stripped = raw.lstrip("(")
    if stripped.startswith("+") or stripped.startswith("00"):
        return True
    if re.search(r"[ ().\-/]", raw.strip()):
        return True  # formatted like a phone number
    return bool(_PHONE_WORD.search(text[max(0, start - 40) : start]))


def _redact_phones(text: str, allow: AllowList) -> tuple[str, int]:
    if sum(ch.isdigit() for ch in text) < 7:
        return text, 0
    count = 0
    for region in PHONE_REGIONS:
        spans = []
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            if _PLACEHOLDER_RE.search(match.raw_string) or allow.keeps_phone(match.number, match.raw_string):
                continue
            if _phone_span_ok(text, match.start, match.raw_string):
                spans.append((match.start, match.end))
        if spans:
            text = _replace_spans(text, spans, PLACEHOLDERS["phone"])
            count += len(spans)
        if sum(ch.isdigit() for ch in text) < 7:
            break
    return text, count


_STEPS: tuple[tuple[str, Callable[[str, AllowList], tuple[str, int]]], ...] = (
    ("iban", _redact_ibans),
    ("card", _redact_cards),
    ("ssn", _redact_ssns),
    ("ip", _redact_ips),
    ("phone", _redact_phones),
)


def redact(text: str, allow: Iterable[str] | AllowList = ()) -> tuple[str, dict[str, int]]:
    """``(clean_text, counts)``: ``text`` with PII replaced by ``[email]``, ``[phone]``, ``[card]``,
    ``[iban]``, ``[ssn]``, ``[ip]``; ``counts`` maps each kind found to how many were replaced.
    ``allow``: the company's own numbers and addresses, kept as written (policy ``[redaction] allow``)."""
    counts: Counter[str] = Counter()
    if not text:
        return text, {}
    allowed = allow if isinstance(allow, AllowList) else allow_list(tuple(allow))
    if "@" in text or re.search(r"\bat\b", text, re.IGNORECASE):
        text, n = _redact_emails(text, allowed)
        if n:
            counts["email"] += n
    if any(ch.isdigit() for ch in text):
        for kind, step in _STEPS:
            text, n = step(text, allowed)
            if n:
                counts[kind] += n
    return text, dict(counts)
