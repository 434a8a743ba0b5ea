"""Themes: group observations that describe the same customer pain.

**Semantic grouping** (default, :func:`find_themes`): every text's multilingual sentence embedding
(:mod:`frontline.digests.embeddings`), centred, beside TF-IDF word+char vectors and a one-hot of the
picked category (:class:`ThemeParams`), clustered with average linkage over *all* the items, so notes in
different languages, or filed under the wrong area, meet when they describe one problem.

**Lexical fallback** (no model, or ``embed=False``): split by ``(product_area, category)``, then within
each group the normalised texts (contractions, a synonym table, domain stop words, light stemming) as
TF-IDF word 1-2 grams and character 3-5 grams, plus an LSA component from ``LSA_MIN_DOCS`` items on,
clustered with average linkage; equal normalised texts are one row weighted by their count (the same
vectors and clusters as one row each); groups of more than ``DENSE_GROUP_LIMIT`` distinct texts from a sample.

Both are deterministic. A theme's label (:func:`theme_label`) is a clean first sentence of a central
member, preferably one in the organisation's language: no lead-in filler, no redaction placeholder,
never cut inside a word. Labels are what :attr:`models.Observation.theme` stores.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from frontline.digests.embeddings import Embedder

DEFAULT_DISTANCE_THRESHOLD = 0.95  # with the LSA component (tuned on bench/themes.py, two seeds)
LEXICAL_ONLY_THRESHOLD = 0.93  # small inputs (no LSA): TF-IDF alone
LSA_MIN_DOCS = 50  # below this many observations there is too little co-occurrence to learn from
LSA_DIMS = 60
LEXICAL_WEIGHT = 0.3  # share of the TF-IDF part in the combined vector (the rest: LSA)
DENSE_GROUP_LIMIT = 2500  # distinct texts; above this, a group is clustered from a sample (memory stays bounded)
ASSIGN_SIMILARITY = 0.15  # large groups: an item joins a sample theme at this centroid cosine
LABEL_CHARS = 70
BACKGROUND_PRIOR = 50  # semantic grouping: weight (in items) of the shipped background mean when centring
FRAGMENT_FRACTION = 0.05  # clusters below this share of their group (min 3) join their nearest larger theme ...
FRAGMENT_SIMILARITY = 0.15  # ... when at least this similar (centroid cosine)

# Phrases that say the same thing, mapped to one token (applied in order, after contractions).
_SYNONYMS: list[tuple[str, str]] = [
    (
        r"\b(where(?:'s| is| are| do i| can i| do you| did)?(?: (?:find|get|see))?|"
        r"(?:can ?not|could not|did not|does not|do not) (?:find|locate|see)|unable to (?:find|locate|see)|not able to (?:find|locate)|hard to (?:find|locate|see)|"
        r"can ?not (?:locate|see)|looking for|search(?:ed|ing)? for|locate|hidden|missing from|no sign of)\b",
        " find ",
    ),
    (
        r"\b(buttons?|menus?|options?|links?|tabs?|icons?|toggles?|settings? page|dropdowns?|entry|entries)\b",
        " control ",
    ),
    (
        r"\b(crash(?:es|ed|ing)?|freez(?:e|es|ing)|froze|hangs?|stuck|not responding|blank screen|white screen)\b",
        " crash ",
    ),
    (r"\b(slow(?:ly|er)?|lag(?:gy|s)?|takes? (?:ages|forever|too long)|time(?:s|d)? out|timeouts?)\b", " slow "),
    (r"\b(charged twice|double charged?|double[- ]billed|duplicate charges?|billed twice)\b", " doublecharge "),
    (r"\b(refunds?|money back|reimburse(?:d|ment)?)\b", " refund "),
    (r"\b(expensive|pricey|overpriced|too much money|costs? too much|price (?:is )?too high)\b", " expensive "),
    (r"\b(log ?in|sign ?in|signing in|logging in)\b", " login "),
    (
        r"\b(password reset|reset (?:my |the |their )?password|forgot(?:ten)? (?:my |the |their )?password)\b",
        " pwreset ",
    ),
    (r"\b(csv|xlsx|excel|spreadsheet|download(?:s|ed|ing)? (?:the |their |my )?data)\b", " export "),
    (r"\b(late|delayed|delay|not arrived|never arrived|hasn't arrived|has not arrived|still waiting)\b", " late "),
    (r"\b(confus(?:ing|ed|es)|unclear|not clear|hard to understand|makes no sense|puzzl(?:ed|ing))\b", " confusing "),
    (r"\b(docs?|documentation|help (?:page|article|centre|center)|manual|guide)\b", " docs "),
    (r"\b(love[sd]?|great|awesome|fantastic|happy with|delighted)\b", " praise "),
]
_CONTRACTIONS = [
    (r"\bcan['’]?t\b", "can not"),
    (r"\bcannot\b", "can not"),
    (r"\bwon['’]t\b", "will not"),
    (r"\bn['’]t\b", " not"),
    (r"(\w)n['’]t\b", r"\1 not"),
    (r"['’]re\b", " are"),
    (r"['’]s\b", ""),
    (r"['’]ve\b", " have"),
    (r"['’]ll\b", " will"),
    (r"['’]d\b", " would"),
    (r"['’]m\b", " am"),
]
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "about",
        "into",
        "over",
        "under",
        "again",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "only",
        "own",
        "same",
        "than",
        "too",
        "very",
        "just",
        "also",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "now",
        "still",
        "even",
        "really",
        "please",
        "get",
        "got",
        "gets",
        "customer",
        "customers",
        "client",
        "clients",
        "user",
        "users",
        "people",
        "person",
        "someone",
        "somebody",
        "caller",
        "callers",
        "they'd",
        "he's",
        "she's",
        "one",
        "asked",
        "asks",
        "ask",
        "said",
        "says",
        "say",
        "told",
        "tell",
        "tells",
        "want",
        "wants",
        "wanted",
        "need",
        "needs",
        "needed",
        "keep",
        "keeps",
        "trying",
        "tried",
        "try",
        "today",
        "again",
        "always",
        "never",
        "every",
        "time",
        "times",
        "thing",
        "things",
        "way",
        "lot",
        "lots",
        "bit",
    ]
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ied", "ies", "ed", "es", "ly", "s")
# For each synonym pattern above, words one of which every match contains: a text with none of them is
# skipped without running the pattern (most texts match a few patterns; each scan costs ~1.5 us). Keep
# them in step with _SYNONYMS: tests/test_themes.py checks every alternative of every pattern against them.
_SYNONYM_HINTS: list[tuple[str, ...]] = [
    ("where", "find", "locate", "see", "looking", "search", "hidden", "missing", "sign"),
    ("button", "menu", "option", "link", "tab", "icon", "toggle", "setting", "dropdown", "entr"),
    ("crash", "freez", "froze", "hang", "stuck", "responding", "screen"),
    ("slow", "lag", "take", "time"),
    ("twice", "double", "duplicate"),
    ("refund", "money", "reimburse"),
    ("expensive", "pricey", "price", "money", "cost"),
    ("log", "sign"),
    ("password",),
    ("csv", "xlsx", "excel", "spreadsheet", "download"),
    ("late", "delay", "arrived", "waiting"),
    ("confus", "unclear", "clear", "understand", "sense", "puzzl"),
    ("doc", "manual", "guide", "help"),
    ("love", "great", "awesome", "fantastic", "happy", "delighted"),
]
_COMPILED_SYN = [(re.compile(p), r, hints) for (p, r), hints in zip(_SYNONYMS, _SYNONYM_HINTS, strict=True)]
_COMPILED_CON = [(re.compile(p), r) for p, r in _CONTRACTIONS]
_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    if len(word) <= 4:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word


def normalise(text: str) -> str:
    """The comparison form of an observation text (what the vectorisers see)."""
    t = text.lower()
    # all but the first two contraction patterns need an apostrophe to match, and those two "can"
    if "'" in t or "’" in t:
        contractions = _COMPILED_CON
    else:
        contractions = _COMPILED_CON[:2] if "can" in t else []
    for pattern, repl in contractions:
        t = pattern.sub(repl, t)
    for pattern, repl, hints in _COMPILED_SYN:
        for hint in hints:
            if hint in t:
                t = pattern.sub(repl, t)
                break
    words = [_stem(w) for w in _TOKEN.findall(t) if w not in _STOP]
    return " ".join(words)


@dataclass(frozen=True)
class ThemeInput:
    """What clustering needs from an observation (plain data; ``id`` is any hashable key)."""

    id: object
    text: str
    product_area: str
    category: str


@dataclass
class Theme:
    label: str
    product_area: str
    category: str
    member_ids: list = field(default_factory=list)
    central_id: object = None  # the member that best represents the theme (first in member_ids)

    @property
    def size(self) -> int:
        return len(self.member_ids)


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    """First clause of ``text``, at most ``limit`` characters, cut on a word boundary."""
    t = " ".join(text.split())
    lead = re.match(r"^[^:.!?]{1,24}:\s+(?=\S{2})", t)  # "Caller said: ..." / "FYI: ..." lead-ins
    if lead and len(t) - lead.end() >= 12:
        t = t[lead.end() :]
        t = t[0].upper() + t[1:]
    clauses = _clauses(t)
    if clauses and len(clauses[0]) >= 12:
        t = clauses[0]
    return _cut(t, limit)


def _cut(t: str, limit: int = LABEL_CHARS) -> str:
    """``t`` in at most ``limit`` characters, cut between words (never inside one), with no dangling
    connective or punctuation before the ellipsis."""
    if len(t) <= limit:
        return t
    words = t[: limit - 1].split(" ")
    if len(words) > 1 and not t[limit - 1 : limit].isspace():
        words = words[:-1]  # the last word was cut
    while len(words) > 1 and (words[-1].lower().strip(",;:") in _DANGLING or not words[-1].strip("-–—,;:(")):
        words.pop()
    return " ".join(words).rstrip(",;:-–—(") + "…"


_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "approx",
        "vs",
        "etc",
        "no",
        "nr",
        "ca",
        "z.b",
        "u.a",
        "bzw",
        "usw",
        "mr",
        "mrs",
        "ms",
        "dr",
        "min",
        "max",
        "incl",
        "excl",
        "v",
        "ver",
        "vol",
        "p.s",
        "ps",
        "pls",
        "tel",
        "fig",
        "dept",
        "sr",
        "st",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
_DANGLING = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "with",
        "of",
        "to",
        "for",
        "in",
        "on",
        "at",
        "by",
        "from",
        "as",
        "that",
        "which",
        "when",
        "while",
        "because",
        "bc",
        "w/",
        "und",
        "oder",
        "der",
        "die",
        "das",
        "mit",
        "y",
        "o",
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "con",
        "en",
        "et",
        "ou",
        "le",
        "les",
        "du",
        "des",
        "avec",
        "e",
    ]
)
_PLACEHOLDER = re.compile(r"\[(?:email|phone|card|iban|ip|ssn|name|url|address|redacted)\]", re.I)
_FILLER_CLAUSE = re.compile(
    r"^(?:this is a pattern.*|.*not a one[- ]off.*|pattern.*|fyi|heads up|update|again|same (?:as|thing).*|"
    r"another one|one more|see above|as (?:above|before)|\d+ (?:of (?:my|our|today'?s) )?\d* ?(?:calls?|chats?|tickets?)"
    r"(?: today| this week)?)$",
    re.I,
)
_LEAD_INS = [
    re.compile(p, re.I)
    for p in (
        r"^(?:fyi|heads up|update|again|btw|note|ok so|so|also|urgent|pls note|hi|hey)\b[:,!\-–—]?\s*",
        r"^\d+ (?:of (?:my|our|today'?s) )?\d* ?(?:calls?|chats?|tickets?|customers?|cx)(?: today| this week| so far)?"
        r"\s*(?:[:,\-–—]|said|say|are|were|had|with|about)\s*",
        r"^(?:(?:\d+|two|three|four|five|another|one more|a|the|my|this|one|same)\s+)?(?:more\s+)?"
        r"(?:cx|cust|custs|customers?|callers?|clients?|users?|people|guy|lady|woman|man|merchant|shop owner|"
        r"caller on chat|chat)\s+(?:today\s+|this week\s+|again\s+|on (?:the )?phone\s+|on chat\s+)?"
        r"(?:said|says|saying|reports?|reported|reporting|told (?:me|us)|asked|asks|asking|complain(?:s|ed|ing)?"
        r"(?: about| that)?|wrote|writes|calling about|called(?: about)?|mentions?|mentioned|is|was|were|are|"
        r"had|has|can'?t|cannot)?(?:\s+(?:that|about))?\s*[:,\-–—]?\s*",
        r"^[^:.!?]{1,24}:\s+(?=\S{2})",
    )
]


def _clauses(t: str) -> list[str]:
    """Sentences of ``t``, split after . ! ? ; or a line break, never after an abbreviation, a
    single letter or inside a number ("v5.12", "approx. 20", "z.B. Excel")."""
    out, start = [], 0
    for m in re.finditer(r"[.!?;…]+(?=\s|$)|\n|\s[-–—]\s", t):
        before = t[start : m.start()].rsplit(" ", 1)[-1].lower().strip("(\"'")
        if m.group().startswith(".") and (before in _ABBREVIATIONS or len(before) <= 1 or "." in before):
            continue
        if t[start : m.start()].count('"') % 2 == 1 and m.group() != "\n":
            continue  # inside a quotation: "Something went wrong. Try again"
        end = m.start() + (1 if m.group()[:1] in "?!" else 0)
        piece = t[start:end].strip(" -–—")
        if piece:
            out.append(piece)
        start = m.end()
    rest = t[start:].strip(" -–—")
    if rest:
        out.append(rest)
    return out


def _strip_lead_in(t: str) -> str:
    for _ in range(3):
        before = t
        for pattern in _LEAD_INS:
            m = pattern.match(t)
            if m and len(t) - m.end() >= 12:
                t = t[m.end() :]
        if t == before:
            break
    return t


_STOPWORDS_BY_LANGUAGE = {
    "en": [
        "the",
        "and",
        "is",
        "was",
        "are",
        "with",
        "not",
        "for",
        "they",
        "this",
        "that",
        "have",
        "it",
        "of",
        "to",
        "on",
        "my",
        "can",
    ],
    "de": [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ein",
        "eine",
        "mit",
        "auf",
        "kunde",
        "kundin",
        "bei",
        "sich",
        "wird",
        "im",
        "den",
        "dem",
        "zu",
    ],
    "es": [
        "el",
        "la",
        "los",
        "las",
        "y",
        "es",
        "no",
        "con",
        "una",
        "un",
        "que",
        "por",
        "para",
        "del",
        "se",
        "cliente",
        "al",
    ],
    "fr": [
        "le",
        "la",
        "les",
        "et",
        "est",
        "pas",
        "une",
        "un",
        "avec",
        "pour",
        "que",
        "des",
        "du",
        "il",
        "elle",
        "au",
        "client",
        "sur",
    ],
    "pt": ["o", "a", "os", "as", "e", "não", "com", "uma", "um", "que", "para", "do", "da", "cliente", "no", "na"],
    "nl": ["de", "het", "en", "is", "niet", "een", "met", "op", "van", "klant", "voor", "dat", "bij", "zijn"],
}


def _balance_quotes(t: str) -> str:
    """Close a quotation the clause split left open (or drop it when it opens at the very end)."""
    if t.count('"') % 2 == 1:
        head = t[: t.rfind('"')].rstrip(" =+&/,;:-–—(")
        return head if len(head) >= 15 else t + '"'
    return t


def detect_language(text: str) -> str:
    """A rough guess of the language of ``text`` (en, de, es, fr, pt, nl) by common words."""
    words = re.findall(r"[a-zà-ÿß]+", text.lower())
    scores = {lang: sum(w in set(stop) for w in words) for lang, stop in _STOPWORDS_BY_LANGUAGE.items()}
    best = max(scores, key=lambda k: (scores[k], k == "en"))
    return best if scores[best] > 0 else "en"


def label_candidate(text: str) -> tuple[str, int]:
    """The label ``text`` would give and its penalty (0 = clean): the first clause that says something,
    lead-in filler ("2 cx today said", "FYI:") removed, never a placeholder, cut between words."""
    t = " ".join(text.split())
    penalty = 0
    if _PLACEHOLDER.search(t):
        penalty += 3
        t = _PLACEHOLDER.sub("", t)
        t = re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"\(\s*\)|\s{2,}", " ", t)).strip()
    clauses = [c for c in (_strip_lead_in(c) for c in _clauses(t)) if c and not _FILLER_CLAUSE.match(c.strip(" :,"))]
    clauses = [c for c in clauses if len(c.split()) >= 3] or clauses
    if not clauses:
        return _cut(t), 10
    if clauses[0] != _clauses(t)[0] if _clauses(t) else False:
        penalty += 1  # the first sentence was filler
    label = _balance_quotes(clauses[0].strip(" :,-–—"))
    if len(label) < 15:
        penalty += 2
    if label.isupper():
        label = label.capitalize()
    label = label[0].upper() + label[1:]
    return _cut(label), penalty


def theme_label(ranked_texts: Sequence[str], language: str = "en", candidates: int = 40) -> str:
    """The label of a theme whose member texts are ``ranked_texts`` (most central first): the clean
    label of a central member, preferring one written in the organisation's ``language``."""
    best: tuple[float, str] | None = None
    for rank, text in enumerate(ranked_texts[:candidates]):
        label, penalty = label_candidate(text)
        score = rank + 2 * penalty + (100 if detect_language(text) != language else 0)
        if best is None or score < best[0]:
            best = (score, label)
    if best is None:
        return ""
    return best[1]


def _normalised(texts: Sequence[str]) -> list[str]:
    """The comparison forms of ``texts``, each distinct text normalised once (a week repeats many texts
    word for word: "Can't find the export button")."""
    done: dict[str, str] = {}
    out = []
    for t in texts:
        n = done.get(t)
        if n is None:
            n = done[t] = normalise(t) or t.lower()
        out.append(n)
    return out


def _distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The distinct ``texts`` in first-seen order, each text's index among them, and how often each
    occurs. A week repeats many texts word for word ("Can't find the export button"): they are
    vectorised and clustered once, weighted by their count (the same result as one row each)."""
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.intp, count=len(texts))
    return list(index), inverse, np.bincount(inverse, minlength=len(index))


def _tfidf(texts: list[str], counts: np.ndarray, *, min_df: int = 1, analyzer: str = "word"):
    """``TfidfVectorizer(sublinear_tf=True, min_df=min_df, ...).fit_transform`` of the texts with text ``k``
    repeated ``counts[k]`` times, one row per distinct text: word 1-2 grams (``analyzer="word"``,
    ``token_pattern=r"\\S+"``) or character 3-5 grams inside words (``"char_wb"``). The document
    frequencies (and the ``min_df`` cut) count the repeats, so every row is the one the repeated input
    would give; the arithmetic is scikit-learn's (:mod:`frontline.digests.vectors`). Raises
    ``ValueError`` when no term is left, as scikit-learn does."""
    from frontline.digests import vectors

    tf = vectors.word_counts(texts) if analyzer == "word" else vectors.char_counts(texts)
    df = np.bincount(
        tf.indices, weights=np.repeat(counts.astype(np.float64), np.diff(tf.indptr)), minlength=tf.shape[1]
    )
    if min_df > 1:
        keep = np.flatnonzero(df >= min_df)
        if not len(keep):
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        tf, df = tf[:, keep], df[keep]
    return vectors.tfidf(tf, df, int(counts.sum()))


def _semantic(norm: list[str]) -> np.ndarray | None:
    """LSA (truncated SVD of word TF-IDF over *all* the texts): words that occur in the same contexts
    ("coupon" / "voucher" next to "code", "invalid", "checkout") get close, which plain TF-IDF cannot
    see. ``None`` when the input is too small to learn co-occurrence from. Deterministic (fixed seed).
    Each distinct text is one row weighted by the square root of its count (the SVD of the repeated rows)."""
    if len(norm) < LSA_MIN_DOCS:  # too little co-occurrence to learn from
        return None
    from frontline.digests.vectors import normalize, truncated_svd

    distinct, inverse, counts = _distinct(norm)
    try:
        w = _tfidf(distinct, counts, min_df=2)
    except ValueError:
        return None
    dims = min(LSA_DIMS, w.shape[1] - 1, w.shape[0] - 1)
    if dims < 10:
        return None
    if counts.max() > 1:  # X^T X of the repeated rows = (sqrt(c) X)^T (sqrt(c) X); a row's scale goes with normalize
        w = w.multiply(np.sqrt(counts)[:, None]).tocsr()
    z = truncated_svd(w, dims, n_iter=5, seed=0)
    return normalize(z)[inverse]


def _vectorise(
    texts: list[str],
    *,
    normalised: bool = False,
    semantic: np.ndarray | None = None,
    counts: np.ndarray | None = None,
):
    """TF-IDF word 1-2 grams and character 3-5 grams of the (normalised) texts, beside ``semantic`` rows
    when given; with ``counts``, text ``k`` stands for ``counts[k]`` equal texts (see :func:`_tfidf`)."""
    from scipy.sparse import csr_matrix, hstack

    from frontline.digests.vectors import normalize

    norm = texts if normalised else _normalised(texts)
    if counts is None:
        counts = np.ones(len(norm), dtype=np.intp)
    try:
        w = _tfidf(norm, counts)
    except ValueError:  # empty vocabulary (all texts empty after normalising)
        w = None
    c = _tfidf([t if t.strip() else "_" for t in norm], counts, analyzer="char_wb")
    # Words carry the meaning; character grams bridge inflections and typos.
    x = normalize(c if w is None else hstack([w * np.sqrt(0.6), c * np.sqrt(0.4)]).tocsr())
    if semantic is not None:
        x = normalize(hstack([x * np.sqrt(LEXICAL_WEIGHT), csr_matrix(semantic) * np.sqrt(1 - LEXICAL_WEIGHT)]).tocsr())
    return x


GRAM_DENSE_FRACTION = 16  # _gram: columns set in more than 1/16 of the rows are multiplied densely


def _gram(x) -> np.ndarray:
    """``x @ x.T`` as a dense array. The columns set in many rows (the LSA or sentence-embedding part,
    kept inside the sparse matrix, and the common words and character grams) are multiplied as a dense
    block (BLAS), the rest as sparse: a sparse product costs about the sum of its columns' squared
    fill, so a column set in more than ``1 / GRAM_DENSE_FRACTION`` of the rows is cheaper in BLAS (the
    same similarities up to rounding, ~1e-15; tests/test_themes.py checks the clusters are the same)."""
    n = x.shape[0]
    filled = np.diff(x.tocsc().indptr)
    cut = n // GRAM_DENSE_FRACTION
    dense = np.flatnonzero(filled > cut)
    if len(dense) == 0:
        return np.asarray((x @ x.T).toarray())
    block = x[:, dense].toarray()
    sim = block @ block.T
    rest = np.flatnonzero(filled <= cut)
    if len(rest):
        part = x[:, rest]
        sim += (part @ part.T).toarray()
    return np.asarray(sim)


def _cluster_dense(x, threshold: float, counts: np.ndarray | None = None) -> np.ndarray:
    """Average-linkage clusters of the rows of ``x`` (cosine distance), cut at ``threshold``; with
    ``counts``, row ``k`` stands for ``counts[k]`` identical items (:func:`_average_linkage`)."""
    n = x.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    dist = _gram(x)  # a fresh array: turned into distances in place (n^2 floats, no copies)
    np.subtract(1.0, dist, out=dist)
    np.clip(dist, 0.0, 2.0, out=dist)
    np.fill_diagonal(dist, 0.0)
    if counts is not None and counts.max() > 1:
        return _average_linkage(dist, counts, threshold)
    from frontline.digests.vectors import average_linkage

    return average_linkage(dist, threshold)


def _average_linkage(dist: np.ndarray, counts: np.ndarray, threshold: float) -> np.ndarray:
    """Flat clusters of average linkage over rows that each stand for ``counts[k]`` identical items (at
    distance 0 from each other, so they would be merged first): merge the closest pair of clusters while
    it is nearer than ``threshold``, the distance of a merged cluster being the count-weighted mean of
    its parts' (Lance-Williams, UPGMA) -- the clusters average linkage gives over the repeated items,
    without their rows. O(n^2) memory, about O(n^2) time (nearest neighbours kept per row).

    Whenever half the clusters are merged away, the matrix keeps only the live ones (in the same order,
    so every argmin picks the same cluster): the rescans of late merges, when a large cluster is many
    rows' nearest, read short rows. ``dist`` (float64) is used as the work matrix: its contents are lost."""
    n = len(counts)
    d = np.asarray(dist, dtype=np.float64)
    np.fill_diagonal(d, np.inf)
    size = counts.astype(np.float64)
    alive = np.ones(n, dtype=bool)
    label = np.arange(n)  # the original index of each row of d
    parent = np.arange(n)
    nearest = d.argmin(axis=1)
    nearest_d = d[np.arange(n), nearest]
    live = n
    while True:
        i = int(nearest_d.argmin())
        if not nearest_d[i] < threshold:
            break
        j = int(nearest[i])
        row = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        row[i] = np.inf
        d[i], d[:, i] = row, row
        d[j], d[:, j] = np.inf, np.inf
        size[i] += size[j]
        alive[j], parent[label[j]], nearest_d[j] = False, label[i], np.inf
        live -= 1
        # a merged distance lies between its parts', so only rows whose nearest was i or j can change
        stale = np.flatnonzero(((nearest == i) | (nearest == j)) & alive)
        nearest[stale] = d[stale].argmin(axis=1)
        nearest_d[stale] = d[stale, nearest[stale]]
        if 2 * live <= len(d) and live >= 64:
            keep = np.flatnonzero(alive)
            position = np.full(len(d), -1)
            position[keep] = np.arange(live)
            # a live row's nearest is live, unless the row is all infinity (then it never merges again)
            d, size, label = d[np.ix_(keep, keep)], size[keep], label[keep]
            nearest, nearest_d, alive = position[nearest[keep]], nearest_d[keep], alive[keep]
            lost = nearest < 0
            if lost.any():
                nearest[lost] = d[lost].argmin(axis=1)
    for k in range(n):  # parents are merged later than their children: follow each chain to its root
        root = k
        while parent[root] != root:
            root = parent[root]
        parent[k] = root
    return np.unique(parent, return_inverse=True)[1].astype(int)


def _cluster_large(x, threshold: float, sample: int) -> np.ndarray:
    """Groups too big for one dense distance matrix: cluster an evenly spaced sample densely, assign
    every other item to the most similar sample theme (centroid cosine >= ``ASSIGN_SIMILARITY``), and
    cluster what is left the same way (recursively). Memory O(sample^2 + n * themes); deterministic."""
    from frontline.digests.vectors import normalize

    n = x.shape[0]
    if n <= sample:
        return _cluster_dense(x, threshold)
    picked = np.unique(np.linspace(0, n - 1, sample).round().astype(int))
    sample_labels = _cluster_dense(x[picked], threshold)
    k = int(sample_labels.max()) + 1
    centroids = normalize(np.vstack([np.asarray(x[picked[sample_labels == c]].mean(axis=0)) for c in range(k)]))
    sims = np.asarray(x @ centroids.T)
    best = sims.argmax(axis=1)
    labels = np.where(sims[np.arange(n), best] >= ASSIGN_SIMILARITY, best, -1)
    labels[picked] = sample_labels
    rest = np.flatnonzero(labels < 0)
    if len(rest):
        if len(rest) == n:  # nothing attached: avoid endless recursion, split the rest by position
            halves = np.array_split(rest, 2)
            for h in halves:
                labels[h] = _cluster_large(x[h], threshold, sample) + labels.max() + 1
        else:
            labels[rest] = _cluster_large(x[rest], threshold, sample) + k
    return labels


def _absorb_fragments(x, labels: np.ndarray, min_fraction: float, min_similarity: float) -> np.ndarray:
    """Attach clusters smaller than ``min_fraction`` of the group (and < 3 members at least) to the most
    similar larger cluster (centroid cosine >= ``min_similarity``); a fragment unlike every larger
    cluster stays on its own. One pass, deterministic."""
    from frontline.digests.vectors import normalize

    n = len(labels)
    sizes = np.bincount(labels)
    cutoff = max(3, min_fraction * n)
    big = [c for c in range(len(sizes)) if sizes[c] >= cutoff]
    small = [c for c in range(len(sizes)) if 0 < sizes[c] < cutoff]
    if not big or not small:
        return labels
    centroids = normalize(np.vstack([np.asarray(x[labels == c].mean(axis=0)) for c in big]))
    out = labels.copy()
    for c in small:
        v = normalize(np.asarray(x[labels == c].mean(axis=0)))
        sims = (centroids @ v.T).ravel()
        j = int(np.argmax(sims))
        if sims[j] >= min_similarity:
            out[labels == c] = big[j]
    return out


def cluster_texts(
    texts: Sequence[str],
    distance_threshold: float = LEXICAL_ONLY_THRESHOLD,
    *,
    fragment_fraction: float = FRAGMENT_FRACTION,
    fragment_similarity: float = FRAGMENT_SIMILARITY,
    normalised: bool = False,
    semantic: np.ndarray | None = None,
):
    """Cluster labels (ints) and the feature matrix of ``texts`` (TF-IDF, plus ``semantic`` rows when given).
    Equal (normalised) texts are vectorised and clustered once, weighted by their count."""
    norm = list(texts) if normalised else _normalised(list(texts))
    distinct, inverse, counts = _distinct(norm)
    first = np.zeros(len(distinct), dtype=np.intp)
    first[inverse[::-1]] = np.arange(len(norm) - 1, -1, -1)
    rows = None if semantic is None else semantic[first]
    xd = _vectorise(distinct, normalised=True, semantic=rows, counts=counts)
    x = xd[inverse] if len(distinct) < len(norm) else xd
    if xd.shape[0] <= DENSE_GROUP_LIMIT:
        labels = _cluster_dense(xd, distance_threshold, counts)[inverse]
    else:
        labels = _cluster_large(x, distance_threshold, DENSE_GROUP_LIMIT)
    if fragment_fraction > 0 and x.shape[0] >= 10:
        labels = _absorb_fragments(x, labels, fragment_fraction, fragment_similarity)
    return labels, x


def _sort_key(value: object):
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


@dataclass(frozen=True)
class ThemeParams:
    """Weights and cut of the semantic grouping (chosen on the first half of tests/data/observations_eval.jsonl
    only, checked on the second half: ``python bench/themes.py --tune``)."""

    text_weight: float = 0.5  # share of the TF-IDF word+char vector beside the (centred) sentence embedding
    category_weight: float = 0.1  # the category the rotator picked: a soft hint, not a wall
    area_weight: float = 0.0  # the product area: often picked wrongly or lazily ("other"), so no weight
    distance_threshold: float = 0.8  # average-linkage cut on cosine distance


def find_themes(
    items: Iterable[ThemeInput],
    *,
    distance_threshold: float | None = None,
    fragment_fraction: float = FRAGMENT_FRACTION,
    fragment_similarity: float = FRAGMENT_SIMILARITY,
    semantic: bool = True,
    vectors: Mapping[Any, np.ndarray | None] | None = None,
    params: ThemeParams | None = None,
    embed: Embedder | None | bool = True,
    language: str | None = None,
) -> list[Theme]:
    """Group ``items`` into themes, largest first (ties: label). Every item is in exactly one theme.

    Semantic grouping (default) embeds every text with the multilingual sentence model (``vectors`` holds
    embeddings already known by item id; the rest are computed with ``embed``, default
    :func:`frontline.digests.embeddings.embedder`) and clusters all items together, so a German and an
    English note about one problem meet and a problem filed under the wrong area still joins its theme.
    Without the model (``embed=False`` or the package unusable) it falls back to the lexical grouping
    (per (area, category), TF-IDF + LSA). Labels are written in ``language`` (default: settings)."""
    import scipy.linalg  # noqa: F401 - loads SciPy's own BLAS now, so the limit below covers it too
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the matrices are tall and thin (items x 60-400), where a second thread gains
    # nothing and, on a busy machine, OpenBLAS's spinning threads made the SVD and QR steps ~20x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _find_themes(
            list(items),
            distance_threshold=distance_threshold,
            fragment_fraction=fragment_fraction,
            fragment_similarity=fragment_similarity,
            semantic=semantic,
            vectors=vectors,
            params=params,
            embed=embed,
            language=language,
        )


def _find_themes(
    items: list[ThemeInput],
    *,
    distance_threshold: float | None,
    fragment_fraction: float,
    fragment_similarity: float,
    semantic: bool,
    vectors: Mapping[Any, np.ndarray | None] | None,
    params: ThemeParams | None,
    embed: Embedder | None | bool,
    language: str | None,
) -> list[Theme]:
    if language is None:
        language = _org_language()
    if semantic and embed is not False and items:
        matrix = _embeddings(items, vectors or {}, None if embed is True else embed)
        if matrix is not None:
            return _semantic_themes(items, matrix, params or ThemeParams(), language)
    return _lexical_themes(
        items,
        distance_threshold=distance_threshold,
        fragment_fraction=fragment_fraction,
        fragment_similarity=fragment_similarity,
        semantic=semantic,
        language=language,
    )


def _org_language() -> str:
    from frontline.core.errors import SettingsError
    from frontline.core.settings import get_settings

    try:
        return get_settings().language
    except SettingsError:  # settings unreadable (a bare library call): English
        return "en"


def _embeddings(items: list[ThemeInput], known: Mapping[Any, np.ndarray | None], embed: Embedder | None):
    """One row per item: the known vector, else a computed one. ``None`` when some are missing and no
    model is available."""
    from frontline.digests.embeddings import DIM, embedder

    rows = np.zeros((len(items), DIM), dtype=np.float32)
    todo = []
    for i, item in enumerate(items):
        v = known.get(item.id)
        if v is None:
            todo.append(i)
        else:
            rows[i] = v
    if todo:
        fn = embed or embedder()
        if fn is None:
            return None
        rows[todo] = fn([items[i].text for i in todo])
    return rows


def _semantic_features(items: list[ThemeInput], emb: np.ndarray, params: ThemeParams):
    """Centred sentence embeddings (e5 vectors share a large common direction; removing the mean spreads
    them) beside TF-IDF word+char vectors of the normalised text and one-hots of the picked fields."""
    from scipy.sparse import csr_matrix, hstack

    from frontline.digests.embeddings import background_mean
    from frontline.digests.vectors import normalize

    # The set's own mean, pulled towards the shipped background mean while the set is small.
    n = len(items)
    centre = (emb.sum(axis=0) + BACKGROUND_PRIOR * background_mean()) / (n + BACKGROUND_PRIOR)
    centred = emb - centre
    parts = [csr_matrix(normalize(centred))]
    if params.text_weight > 0:
        parts.append(_vectorise([i.text for i in items]) * np.sqrt(params.text_weight))
    for weight, values in (
        (params.category_weight, [i.category.strip().lower() for i in items]),
        (params.area_weight, [i.product_area.strip().lower() for i in items]),
    ):
        if weight > 0:
            keys = {v: k for k, v in enumerate(sorted(set(values)))}
            onehot = csr_matrix(
                (np.ones(len(values)), ([keys[v] for v in values], range(len(values)))), shape=(len(keys), len(values))
            ).T
            parts.append(onehot * np.sqrt(weight))
    return normalize(hstack(parts).tocsr())


def _semantic_themes(items: list[ThemeInput], emb: np.ndarray, params: ThemeParams, language: str) -> list[Theme]:
    perm = sorted(range(len(items)), key=lambda k: _sort_key(items[k].id))
    items = [items[k] for k in perm]
    emb = emb[perm]
    x = _semantic_features(items, emb, params)
    if x.shape[0] <= DENSE_GROUP_LIMIT:
        labels = _cluster_dense(x, params.distance_threshold)
    else:
        labels = _cluster_large(x, params.distance_threshold, DENSE_GROUP_LIMIT)
    themes = []
    for cluster in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == cluster)
        members = [items[i] for i in idx]
        area = _majority([m.product_area.strip().lower() for m in members])
        category = _majority([m.category.strip().lower() for m in members])
        themes.append(_make_theme(members, x[idx], area, category, language))
    themes.sort(key=lambda t: (-t.size, t.label, t.product_area, t.category))
    return themes


def _majority(values: list[str]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for v in values:
        counts[v] += 1
    return min(counts, key=lambda v: (-counts[v], v))


def _make_theme(members: list[ThemeInput], sub, area: str, category: str, language: str) -> Theme:
    if len(members) == 1:
        order = np.zeros(1, dtype=int)
    else:
        # sum of similarities to all members = similarity to the members' sum (O(nnz))
        centrality = np.asarray(sub @ np.asarray(sub.sum(axis=0)).ravel()).ravel()
        # most central first; ties broken by the earlier id (stable sort over id order)
        order = np.argsort(-np.round(centrality, 9), kind="stable")
    ranked = [members[i] for i in order]
    return Theme(
        label=theme_label([m.text for m in ranked], language),
        product_area=area,
        category=category,
        member_ids=[m.id for m in ranked],
        central_id=ranked[0].id,
    )


def _lexical_themes(
    items: list[ThemeInput],
    *,
    distance_threshold: float | None,
    fragment_fraction: float,
    fragment_similarity: float,
    semantic: bool,
    language: str,
) -> list[Theme]:
    """The fallback without the sentence model: split by (area, category), TF-IDF (+ LSA) inside."""
    groups: dict[tuple[str, str], list[ThemeInput]] = defaultdict(list)
    for item in items:
        groups[(item.product_area.strip().lower(), item.category.strip().lower())].append(item)
    ordered = sorted(groups.items())
    for _key, members in ordered:
        members.sort(key=lambda i: _sort_key(i.id))
    every = _normalised([m.text for _key, members in ordered for m in members])  # duplicates across groups too
    norm, offset = {}, 0
    for key, members in ordered:
        norm[key] = every[offset : offset + len(members)]
        offset += len(members)
    z = _semantic([t for key, _m in ordered for t in norm[key]]) if semantic else None
    if distance_threshold is None:
        distance_threshold = DEFAULT_DISTANCE_THRESHOLD if z is not None else LEXICAL_ONLY_THRESHOLD
    themes: list[Theme] = []
    offset = 0
    for (area, category), members in ordered:
        rows = None if z is None else z[offset : offset + len(members)]
        offset += len(members)
        labels, x = cluster_texts(
            norm[(area, category)],
            distance_threshold,
            fragment_fraction=fragment_fraction,
            fragment_similarity=fragment_similarity,
            normalised=True,
            semantic=rows,
        )
        for cluster in sorted(set(labels.tolist())):
            idx = np.flatnonzero(labels == cluster)
            themes.append(_make_theme([members[i] for i in idx], x[idx], area, category, language))
    themes.sort(key=lambda t: (-t.size, t.label, t.product_area, t.category))
    return themes


def theme_of(themes: Iterable[Theme]) -> dict:
    """``{item id: theme label}`` for a list of themes."""
    return {mid: t.label for t in themes for mid in t.member_ids}
