"""The themes' vector arithmetic on NumPy and SciPy alone: TF-IDF, row normalisation, truncated SVD and
the average-linkage cut. Importing scikit-learn costs ~1 s of CPU (it loads SciPy's statistics and
pandas), more than the digest job's whole clustering, so the job does without it.

Each function computes what the named scikit-learn call computes (scikit-learn 1.7-1.9), with the same
floating-point operations in the same order: the matrices are bit-identical, not merely close, so the
themes are the very ones scikit-learn's calls give (tests/test_vectors.py compares every function with
scikit-learn, which stays a test dependency as the oracle).

Counting n-grams needs no Python loop per n-gram: words are numbered once (one dictionary look-up per
word), word bigrams are pairs of word numbers, and a text's character grams are its words' grams, so the
text-by-gram counts are the product of the sparse text-by-word counts and the word-by-gram counts (each
distinct word's grams are made once).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from heapq import heappush, heappushpop
from itertools import chain

import numpy as np
from scipy.sparse import csr_matrix, issparse

_TOKEN = re.compile(r"\S+")  # the word analyzer's token_pattern


def _count_matrix(n_docs: int, docs: np.ndarray, feats: np.ndarray, keys: np.ndarray, names: list[str]) -> csr_matrix:
    """The document-term counts ``CountVectorizer.fit_transform`` returns, from the analyzer's output
    as arrays: occurrence ``k`` is feature ``feats[k]`` (named ``names[feats[k]]``) in document
    ``docs[k]`` at position ``keys[k]`` of the analyzer's output over the whole corpus.

    scikit-learn numbers features in order of first appearance, stores each row sorted by that number,
    then renumbers the columns alphabetically without re-sorting the rows: the same here, so each row's
    entries are stored in the same order (the order sums over a row are taken in)."""
    n_feats = len(names)
    if n_feats == 0:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    first = np.full(n_feats, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, feats, keys)
    order = np.argsort(first, kind="stable")  # features in order of first appearance
    seen = np.empty(n_feats, dtype=np.int64)
    seen[order] = np.arange(n_feats)
    # duplicates summed, each row sorted by first appearance
    counts = csr_matrix((np.ones(len(feats), dtype=np.float64), (docs, seen[feats])), shape=(n_docs, n_feats))
    return _renumber(counts, [names[f] for f in order])


def word_counts(texts: Sequence[str]) -> csr_matrix:
    """``CountVectorizer(ngram_range=(1, 2), token_pattern=r"\\S+", dtype=float64).fit_transform(texts)``:
    lower-cased words and word pairs."""
    tokens = [_TOKEN.findall(t.lower()) for t in texts]
    lens = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    index: dict[str, int] = {}
    total = int(lens.sum())
    uni = np.fromiter(
        (index.setdefault(w, len(index)) for w in chain.from_iterable(tokens)), dtype=np.int64, count=total
    )
    words = list(index)
    n_words = len(words)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
    pos = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    # the analyzer's output, document after document: the document's words, then its word pairs
    out_len = np.maximum(2 * lens - 1, 0)
    start = np.cumsum(out_len) - out_len
    pair_at = np.flatnonzero(pos[:-1] < lens[doc[:-1]] - 1)  # a word followed by one in the same document
    codes, bi = np.unique(uni[pair_at] * n_words + uni[pair_at + 1], return_inverse=True)
    names = words + [f"{words[a]} {words[b]}" for a, b in zip(codes // n_words, codes % n_words, strict=True)]
    pair_doc = doc[pair_at]
    return _count_matrix(
        len(texts),
        np.concatenate([doc, pair_doc]),
        np.concatenate([uni, n_words + bi.ravel()]),
        np.concatenate([start[doc] + pos, start[pair_doc] + lens[pair_doc] + pos[pair_at]]),
        names,
    )


def _char_wb(word: str) -> list[str]:
    """scikit-learn's ``char_wb`` 3-5 grams of one word (padded with a space; a short word once)."""
    w = f" {word} "
    out: list[str] = []
    for n in (3, 4, 5):
        if len(w) <= n:
            out.append(w)
            break
        out += [w[i : i + n] for i in range(len(w) - n + 1)]
    return out


def char_counts(texts: Sequence[str]) -> csr_matrix:
    """``CountVectorizer(analyzer="char_wb", ngram_range=(3, 5), dtype=float64).fit_transform(texts)``:
    character 3-5 grams inside each lower-cased, white-space separated word."""
    split = [t.lower().split() for t in texts]
    lens = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    index: dict[str, int] = {}
    total = int(lens.sum())
    word = np.fromiter(
        (index.setdefault(w, len(index)) for w in chain.from_iterable(split)), dtype=np.int64, count=total
    )
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
    by_doc = csr_matrix((np.ones(total), (doc, word)), shape=(len(texts), len(index)))
    # each distinct word's grams, words in order of first appearance: so are the grams' first appearances
    grams: dict[str, int] = {}
    rows = [[grams.setdefault(g, len(grams)) for g in _char_wb(w)] for w in index]
    gram_lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    of_word = csr_matrix(
        (
            np.ones(int(gram_lens.sum())),
            np.fromiter(chain.from_iterable(rows), dtype=np.int64),
            np.r_[0, np.cumsum(gram_lens)],
        ),
        shape=(len(index), len(grams)),
    )
    counts = by_doc @ of_word  # integer counts, exact in float64; columns in order of first appearance
    if counts.nnz == 0:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    return _renumber(counts, list(grams))


def _renumber(counts: csr_matrix, names: list[str]) -> csr_matrix:
    """``counts`` whose columns are numbered in order of first appearance: rows sorted by that number,
    then the columns renumbered alphabetically (scikit-learn's storage order, see :func:`_count_matrix`)."""
    counts.sort_indices()
    n_feats = len(names)
    alphabetical = np.empty(n_feats, dtype=counts.indices.dtype)
    alphabetical[sorted(range(n_feats), key=names.__getitem__)] = np.arange(n_feats)
    counts.indices = alphabetical[counts.indices]
    counts.has_sorted_indices = False
    return counts


def tfidf(counts: csr_matrix, df: np.ndarray, n_docs: float) -> csr_matrix:
    """``TfidfTransformer(sublinear_tf=True)`` (smooth idf, l2 rows) of the float counts, with the document
    frequencies ``df`` over ``n_docs`` documents, in place: ``1 + log(tf)`` times ``1 + log((1 + n) / (1 + df))``."""
    idf = np.full_like(df, fill_value=n_docs + 1, dtype=np.float64)
    idf /= df + 1.0
    np.log(idf, out=idf)
    idf += 1.0
    np.log(counts.data, out=counts.data)
    counts.data += 1.0
    counts.data *= idf[counts.indices]
    return _normalize_csr(counts)


def _normalize_csr(x: csr_matrix) -> csr_matrix:
    """scikit-learn's in-place l2 row normalisation of a CSR matrix: each row's sum of squares taken in
    stored order (a CSR product with ones sums in that order), rows of zeros left alone."""
    squares = x.data * x.data
    sums = csr_matrix((squares.astype(np.float64, copy=False), x.indices, x.indptr), shape=x.shape) @ np.ones(
        x.shape[1]
    )
    sums[sums == 0.0] = 1.0
    np.sqrt(sums, out=sums)
    x.data /= np.repeat(sums, np.diff(x.indptr))
    return x


def normalize(x):
    """``sklearn.preprocessing.normalize(x)`` (l2 rows, a copy): a CSR matrix for a sparse ``x``, else
    an array (floating point kept, anything else float64)."""
    if issparse(x):
        x = csr_matrix(x, copy=True)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        return _normalize_csr(x)
    a = np.asarray(x)
    a = np.array(a, dtype=a.dtype if a.dtype.kind == "f" else np.float64, copy=True)
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    norms[norms < 10 * np.finfo(norms.dtype).eps] = 1.0
    a /= norms[:, None]
    return a


def truncated_svd(x: csr_matrix, dims: int, *, n_iter: int = 5, seed: int = 0) -> np.ndarray:
    """``TruncatedSVD(dims, algorithm="randomized", n_iter=n_iter, random_state=seed).fit_transform(x)``:
    Halko et al.'s randomized range finder (10 extra columns, LU-normalised power iterations, the input
    transposed when it is wider than tall), the SVD of the small projection, signs fixed so the largest
    entry of each component is positive, and the rows projected on the components."""
    import scipy.linalg as la

    rng = np.random.RandomState(seed)
    transpose = x.shape[0] < x.shape[1]
    m = x.T if transpose else x
    q = rng.normal(size=(m.shape[1], dims + 10))
    for _ in range(n_iter):
        q, _u = la.lu(m @ q, permute_l=True, check_finite=False)
        q, _u = la.lu(m.T @ q, permute_l=True, check_finite=False)
    q, _r = la.qr(m @ q, mode="economic", check_finite=False)
    uhat, _s, vt = la.svd(q.T @ m, full_matrices=False, lapack_driver="gesdd")
    components = (q @ uhat)[:, :dims].T if transpose else vt[:dims, :]
    biggest = np.argmax(np.abs(components), axis=1)
    components *= np.sign(components[np.arange(len(components)), biggest])[:, np.newaxis]
    return np.asarray(x @ components.T)


def average_linkage(dist: np.ndarray, threshold: float) -> np.ndarray:
    """``AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
    distance_threshold=threshold).fit_predict(dist)``: SciPy's average linkage over the distances, cut
    where merges reach ``threshold``, clusters numbered as scikit-learn numbers them."""
    from scipy.cluster import hierarchy

    n = len(dist)
    upper = np.triu_indices(n, k=1)
    tree = hierarchy.linkage(dist[upper], method="average", metric="precomputed")
    children = tree[:, :2].astype(int)
    n_clusters = int(np.count_nonzero(tree[:, 2] >= threshold)) + 1
    # the n_clusters - 1 last merges undone, the largest node first (a heap of negated node numbers)
    nodes = [-(int(max(children[-1])) + 1)]
    for _ in range(n_clusters - 1):
        these = children[-nodes[0] - n]
        heappush(nodes, -int(these[0]))
        heappushpop(nodes, -int(these[1]))
    labels = np.zeros(n, dtype=np.intp)
    for k, node in enumerate(nodes):
        stack = [-node]
        while stack:
            top = stack.pop()
            if top < n:
                labels[top] = k
            else:
                stack.extend(children[top - n].tolist())
    return labels
