"""frontline.digests.vectors computes what scikit-learn computes, bit for bit (issue 14: the digest job no
longer imports scikit-learn, which stays the oracle here)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from frontline.digests import themes, vectors

ROOT = Path(__file__).resolve().parents[1]
TRICKY = ["Ärger  mit\tdem   EXPORT", "ab", "x", "_", "a b c", "", "  ", "a a a b a", "x\u00a0y z\x1cw", "ÉCRAN bloqué"]


def _week(n: int, seed: int):
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic_observations import generate

    return generate(n, seed=seed)[0]


def _identical(a, b) -> bool:
    if hasattr(b, "indptr"):
        return (
            type(a) is type(b)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices)  # the storage order too: sums over a row follow it
            and np.array_equal(a.data, b.data)
        )
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def test_counts_are_scikit_learns_in_its_storage_order():
    from sklearn.feature_extraction.text import CountVectorizer

    week = [i.text for i in _week(3000, seed=5)]
    norm = list(dict.fromkeys(themes._normalised(week)))
    for texts in (norm, norm + TRICKY, TRICKY, week[:400]):
        words = CountVectorizer(ngram_range=(1, 2), token_pattern=r"\S+", dtype=np.float64).fit_transform(texts)
        assert _identical(vectors.word_counts(texts), words)
        grams = CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), dtype=np.float64).fit_transform(texts)
        assert _identical(vectors.char_counts(texts), grams)
    for count in (vectors.word_counts, vectors.char_counts):
        with pytest.raises(ValueError):
            count(["", "  "])


def test_tfidf_is_scikit_learns():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = list(dict.fromkeys(themes._normalised([i.text for i in _week(2000, seed=7)]))) + TRICKY
    ones = np.ones(len(texts), dtype=int)
    for options, analyzer in (
        ({"ngram_range": (1, 2), "token_pattern": r"\S+"}, "word"),
        ({"analyzer": "char_wb", "ngram_range": (3, 5)}, "char_wb"),
    ):
        for min_df in (1, 2, 3):
            plain = TfidfVectorizer(sublinear_tf=True, min_df=min_df, **options).fit_transform(texts)
            assert _identical(themes._tfidf(texts, ones, min_df=min_df, analyzer=analyzer), plain)


def test_normalize_is_scikit_learns():
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(1)
    for shape in ((60, 7), (3, 500)):
        for dtype in (np.float32, np.float64):
            a = (rng.standard_normal(shape) ** 3).astype(dtype)
            a[1] = 0.0
            a[2] = 1e-20  # a norm below 10 eps: left as it is
            before = a.copy()
            assert _identical(vectors.normalize(a), normalize(a))
            assert _identical(vectors.normalize(csr_matrix(a)), normalize(csr_matrix(a)))
            assert np.array_equal(a, before)  # a copy, as scikit-learn's
    x = themes._vectorise(list(dict.fromkeys(themes._normalised([i.text for i in _week(1500, seed=2)]))))
    assert _identical(vectors.normalize(x * 3.0), normalize(x * 3.0))


def test_truncated_svd_is_scikit_learns():
    from sklearn.decomposition import TruncatedSVD

    texts = list(dict.fromkeys(themes._normalised([i.text for i in _week(6000, seed=5)])))
    w = themes._tfidf(texts, np.ones(len(texts), dtype=int), min_df=2)
    for m in (w, w[:, :300].tocsr(), w[:40].tocsr()):  # tall, tall and narrow, wide (transposed)
        dims = min(60, m.shape[1] - 1, m.shape[0] - 1)
        ref = TruncatedSVD(dims, algorithm="randomized", n_iter=5, random_state=0).fit_transform(m)
        assert _identical(vectors.truncated_svd(m, dims, n_iter=5, seed=0), ref)


def test_average_linkage_is_scikit_learns():
    from scipy.spatial.distance import cdist
    from sklearn.cluster import AgglomerativeClustering

    rng = np.random.default_rng(4)
    for n, decimals in ((2, 3), (150, 2), (600, 12)):
        points = rng.random((n, 6)) ** 3
        dist = np.round(cdist(points, points, "cosine"), decimals)  # ties when rounded
        for threshold in (0.0, 0.02, 0.1, 0.3, 3.0):
            ref = AgglomerativeClustering(
                n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
            ).fit_predict(dist)
            assert _identical(vectors.average_linkage(dist, threshold), ref)


def _sklearn_tfidf(texts, counts, *, min_df=1, analyzer="word"):
    """``themes._tfidf`` as it was, on scikit-learn."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    options = {"analyzer": "char_wb", "ngram_range": (3, 5)} if analyzer == "char_wb" else {}
    if analyzer == "word":
        options = {"ngram_range": (1, 2), "token_pattern": r"\S+"}
    tf = CountVectorizer(dtype=np.float64, **options).fit_transform(texts).tocsr()
    df = np.bincount(tf.indices, weights=np.repeat(counts.astype(float), np.diff(tf.indptr)), minlength=tf.shape[1])
    if min_df > 1:
        keep = np.flatnonzero(df >= min_df)
        if not len(keep):
            raise ValueError("no terms remain")
        tf, df = tf[:, keep], df[keep]
    transformer = TfidfTransformer(sublinear_tf=True).fit(tf)
    transformer.idf_ = np.log(np.full_like(df, int(counts.sum()) + 1, dtype=float) / (df + 1.0)) + 1.0
    return transformer.transform(tf, copy=False)


def test_themes_are_the_ones_scikit_learn_gives(monkeypatch):
    """The whole grouping, lexical (with LSA; groups with and without repeated texts) and semantic (given
    vectors), gives the themes it gave on scikit-learn."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    items = [themes.ThemeInput(k, i.text, i.product_area, i.category) for k, i in enumerate(_week(3000, seed=11))]
    items += [themes.ThemeInput(5000 + k, t, "other", "other") for k, t in enumerate(TRICKY + ["crash on login"] * 3)]
    rng = np.random.default_rng(0)
    small = items[:400]
    given = {i.id: v / np.linalg.norm(v) for i, v in zip(small, rng.standard_normal((len(small), 384)), strict=True)}

    def run():
        lexical = themes.find_themes(items, embed=False, language="en")
        semantic = themes.find_themes(small, vectors=given, language="en")
        return [[(t.label, t.product_area, t.category, t.member_ids) for t in out] for out in (lexical, semantic)]

    ours = run()
    monkeypatch.setattr(themes, "_tfidf", _sklearn_tfidf)
    monkeypatch.setattr(vectors, "normalize", normalize)
    monkeypatch.setattr(
        vectors,
        "truncated_svd",
        lambda x, dims, n_iter, seed: TruncatedSVD(dims, n_iter=n_iter, random_state=seed).fit_transform(x),
    )
    monkeypatch.setattr(
        vectors,
        "average_linkage",
        lambda d, t: AgglomerativeClustering(
            n_clusters=None, metric="precomputed", linkage="average", distance_threshold=t
        ).fit_predict(d),
    )
    reference = run()
    assert len(ours[0]) > 10 and len(ours[1]) > 5
    assert ours == reference


def test_grouping_does_not_import_scikit_learn():
    """Importing scikit-learn costs ~1 s of the digest job: the themes (lexical with LSA, semantic, one
    group without repeats, one large enough to be sampled) run without it."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        sys.path.insert(0, "bench")
        from synthetic_observations import generate
        from frontline.digests import themes
        items = [themes.ThemeInput(k, i.text, i.product_area, i.category) for k, i in enumerate(generate(800, seed=3)[0])]
        items += [themes.ThemeInput(10**6 + k, f"note {k} about thing {k % 7}", "x", "y") for k in range(60)]
        themes.find_themes(items, embed=False, language="en")
        rng = np.random.default_rng(0)
        themes.find_themes(items[:300], vectors={i.id: rng.standard_normal(384) for i in items[:300]}, language="en")
        themes.cluster_texts([f"text {k} word{k % 13} other{k % 5}" for k in range(3000)])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "sklearn"))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout[-2000:]
