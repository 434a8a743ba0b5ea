"""Themes: group observations that describe the same customer pain.

Two stages, both deterministic (same input, same themes, same labels):

1. **Structure**: observations are first split by ``(product_area, category)``; a billing bug and an
   export UX complaint are never one theme.
2. **Free text**: within each group the texts are normalised (lower case, contractions expanded, a small
   synonym table maps "where is", "can't find", "unable to locate" ... to one token, domain stop words
   such as "customer" dropped, light suffix stemming) and vectorised with TF-IDF over word 1-2 grams
   *and* character 3-5 grams (robust to typos and inflections). Cosine distances are clustered with
   average-linkage agglomerative clustering cut at ``distance_threshold``. With enough observations
   (``LSA_MIN_DOCS``) an LSA component (truncated SVD of word TF-IDF over *all* observations, so words
   used in the same contexts come close) is added to the vectors. Groups too large for a dense
   distance matrix are clustered from an evenly spaced sample, the rest assigned to the nearest theme.

Each theme gets a short readable label: the first clause of its most central observation (highest mean
similarity to the other members), shortened on a word boundary. Labels are what
:attr:`models.Observation.theme` stores.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_DISTANCE_THRESHOLD = 0.95  # with the LSA component (tuned on bench/themes.py, two seeds)
LEXICAL_ONLY_THRESHOLD = 0.93  # small inputs (no LSA): TF-IDF alone
LSA_MIN_DOCS = 50  # below this many observations there is too little co-occurrence to learn from
LSA_DIMS = 60
LEXICAL_WEIGHT = 0.3  # share of the TF-IDF part in the combined vector (the rest: LSA)
DENSE_GROUP_LIMIT = 2500  # above this, a group is clustered from a sample (memory stays bounded)
ASSIGN_SIMILARITY = 0.15  # large groups: an item joins a sample theme at this centroid cosine
LABEL_CHARS = 70
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
_COMPILED_SYN = [(re.compile(p), r) for p, r in _SYNONYMS]
_COMPILED_CON = [(re.compile(p), r) for p, r in _CONTRACTIONS]
_TOKEN = re.compile(r"[a-z0-9]+")


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
    for pattern, repl in _COMPILED_CON:
        t = pattern.sub(repl, t)
    for pattern, repl in _COMPILED_SYN:
        t = pattern.sub(repl, t)
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
    m = re.search(r"[.!?;\n](\s|$)", t)
    if m and m.start() >= 12:
        t = t[: m.start() + 1] if t[m.start()] in "?!" else t[: m.start()]
    if len(t) <= limit:
        return t
    cut = t[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–—")
    return cut + "…"


def _normalised(texts: Sequence[str]) -> list[str]:
    return [normalise(t) or t.lower() for t in texts]


def _semantic(norm: list[str]) -> np.ndarray | None:
    """LSA (truncated SVD of word TF-IDF over *all* the texts): words that occur in the same contexts
    ("coupon" / "voucher" next to "code", "invalid", "checkout") get close, which plain TF-IDF cannot
    see. ``None`` when the input is too small to learn co-occurrence from. Deterministic (fixed seed)."""
    if len(norm) < LSA_MIN_DOCS:  # before importing scikit-learn (~1 s): a quiet week needs none of it
        return None
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    try:
        w = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=r"\S+").fit_transform(norm)
    except ValueError:
        return None
    dims = min(LSA_DIMS, w.shape[1] - 1, w.shape[0] - 1)
    if dims < 10:
        return None
    z = TruncatedSVD(dims, algorithm="randomized", n_iter=5, random_state=0).fit_transform(w)
    return normalize(z)


def _vectorise(texts: list[str], *, normalised: bool = False, semantic: np.ndarray | None = None):
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    norm = texts if normalised else _normalised(texts)
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1, token_pattern=r"\S+")
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=1)
    try:
        w = words.fit_transform(norm)
    except ValueError:  # empty vocabulary (all texts empty after normalising)
        w = None
    c = chars.fit_transform([t if t.strip() else "_" for t in norm])
    # Words carry the meaning; character grams bridge inflections and typos.
    x = normalize(c if w is None else hstack([w * np.sqrt(0.6), c * np.sqrt(0.4)]).tocsr())
    if semantic is not None:
        x = normalize(hstack([x * np.sqrt(LEXICAL_WEIGHT), csr_matrix(semantic) * np.sqrt(1 - LEXICAL_WEIGHT)]).tocsr())
    return x


def _cluster_dense(x, threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    n = x.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    sim = (x @ x.T).toarray()
    dist = np.clip(1.0 - sim, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    )
    return model.fit_predict(dist)


def _cluster_large(x, threshold: float, sample: int) -> np.ndarray:
    """Groups too big for one dense distance matrix: cluster an evenly spaced sample densely, assign
    every other item to the most similar sample theme (centroid cosine >= ``ASSIGN_SIMILARITY``), and
    cluster what is left the same way (recursively). Memory O(sample^2 + n * themes); deterministic."""
    from sklearn.preprocessing import normalize

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
    from sklearn.preprocessing import normalize

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
    """Cluster labels (ints) and the feature matrix of ``texts`` (TF-IDF, plus ``semantic`` rows when given)."""
    x = _vectorise(list(texts), normalised=normalised, semantic=semantic)
    if x.shape[0] <= DENSE_GROUP_LIMIT:
        labels = _cluster_dense(x, distance_threshold)
    else:
        labels = _cluster_large(x, distance_threshold, DENSE_GROUP_LIMIT)
    if fragment_fraction > 0 and x.shape[0] >= 10:
        labels = _absorb_fragments(x, labels, fragment_fraction, fragment_similarity)
    return labels, x


def _sort_key(value: object):
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def find_themes(
    items: Iterable[ThemeInput],
    *,
    distance_threshold: float | None = None,
    fragment_fraction: float = FRAGMENT_FRACTION,
    fragment_similarity: float = FRAGMENT_SIMILARITY,
    semantic: bool = True,
) -> list[Theme]:
    """Group ``items`` into themes, largest first (ties: label). Every item is in exactly one theme.

    With ``semantic`` (default) and at least ``LSA_MIN_DOCS`` items, an LSA component learnt from all
    the items joins the TF-IDF features; ``distance_threshold`` defaults to the cut tuned for the
    features in use."""
    groups: dict[tuple[str, str], list[ThemeInput]] = defaultdict(list)
    for item in items:
        groups[(item.product_area.strip().lower(), item.category.strip().lower())].append(item)
    ordered = sorted(groups.items())
    for _key, members in ordered:
        members.sort(key=lambda i: _sort_key(i.id))
    norm = {key: _normalised([m.text for m in members]) for key, members in ordered}
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
            if len(idx) == 1:
                order = idx
            else:
                sub = x[idx]
                # sum of similarities to all members = similarity to the members' sum (O(nnz))
                centrality = np.asarray(sub @ np.asarray(sub.sum(axis=0)).ravel()).ravel()
                # most central first; ties broken by the earlier id (stable sort over id order)
                order = idx[np.argsort(-np.round(centrality, 9), kind="stable")]
            ids = [members[i].id for i in order]
            central = members[order[0]]
            themes.append(
                Theme(
                    label=shorten(central.text),
                    product_area=area,
                    category=category,
                    member_ids=ids,
                    central_id=central.id,
                )
            )
    themes.sort(key=lambda t: (-t.size, t.label, t.product_area, t.category))
    return themes


def theme_of(themes: Iterable[Theme]) -> dict:
    """``{item id: theme label}`` for a list of themes."""
    return {mid: t.label for t in themes for mid in t.member_ids}
