"""Theme quality on the hand-written labelled set (tests/data/observations_eval.jsonl, described in
tests/data/observations_eval.md): 460 observations written as support agents write, 51 true themes of
3 to 33 items, 15% non-English, several themes per (area, category), some filed under the wrong area.

Prints ARI / NMI (sklearn.metrics), seconds and number of themes, overall, on the second half (ids
231-460, the half the defaults were *not* tuned on, see below) and per true department, for:

  * frontline.digests.themes.find_themes: the product's grouping (what the digest, the console and
    ``frontline observe themes`` use);
  * baseline A: (area, category) as the rotator picked them;
  * baseline B: plain TF-IDF + KMeans with the true number of themes (an oracle k);
  * (--lexical) the product's grouping without the embedding model (its fallback).

Honesty about tuning: the weights and the distance cut in frontline.digests.themes were chosen on the
first half (ids 1-230) only, then checked on the second half; ``--tune`` repeats that search (first half
-> second half and back) and prints both directions. Per-department ARI is computed over the items whose
true department is that department (how well its digest separates its own problems).

Embeddings are cached in .cache/embeddings (per text and model), so only the first run pays for them.

``--generated N`` instead groups N generated observations (bench/synthetic_observations.py, the texts
bench/digest.py queues: 16 template themes, many texts repeated word for word) with the lexical grouping
the bench's digests use, and prints ARI/NMI against the template each text came from: a check that the
large-group path (thousands of observations per area and category) keeps its quality, not a measure of
quality on real notes (paraphrases of templates are far easier).

usage: python bench/themes.py [--tune] [--lexical] [--labels] [--generated N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from frontline.digests.embeddings import FileEmbeddingCache, embedder
from frontline.digests.themes import ThemeInput, ThemeParams, find_themes

DATA = ROOT / "tests" / "data" / "observations_eval.jsonl"
FIRST_HALF = 230


def load() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def _labels_of(themes, ids) -> list[int]:
    label = {mid: k for k, t in enumerate(themes) for mid in t.member_ids}
    return [label[i] for i in ids]


def _scores(truth: list[str], pred: list[int], idx: list[int]) -> tuple[float, float]:
    t = [truth[i] for i in idx]
    p = [pred[i] for i in idx]
    return adjusted_rand_score(t, p), normalized_mutual_info_score(t, p)


def product(rows: list[dict], vectors: dict, params: ThemeParams | None = None, semantic: bool = True):
    items = [ThemeInput(r["id"], r["text"], r["product_area"], r["category"]) for r in rows]
    t0 = time.perf_counter()
    themes = find_themes(items, vectors=vectors, params=params, embed=bool(semantic))
    return themes, time.perf_counter() - t0


def tune(rows: list[dict], vectors: dict) -> None:
    """Grid over the distance cut and feature weights on one half, scored on the other (both ways)."""
    truth = [r["theme"] for r in rows]
    halves = [rows[:FIRST_HALF], rows[FIRST_HALF:]]
    grid = []
    for text_w in (0.2, 0.3, 0.5):
        for cat_w in (0.05, 0.1, 0.2):
            for area_w in (0.0, 0.1):
                for cut in np.arange(0.65, 0.86, 0.025):
                    grid.append(
                        ThemeParams(
                            text_weight=text_w,
                            category_weight=cat_w,
                            area_weight=area_w,
                            distance_threshold=round(float(cut), 3),
                        )
                    )
    for a, b in ((0, 1), (1, 0)):
        best = None
        for p in grid:
            themes, _ = product(halves[a], vectors, p)
            s = adjusted_rand_score([r["theme"] for r in halves[a]], _labels_of(themes, [r["id"] for r in halves[a]]))
            if best is None or s > best[0]:
                best = (s, p)
        assert best is not None
        themes, _ = product(halves[b], vectors, best[1])
        held = adjusted_rand_score([r["theme"] for r in halves[b]], _labels_of(themes, [r["id"] for r in halves[b]]))
        print(f"tuned on half {a + 1}: ARI {best[0]:.3f} with {best[1]}; on half {b + 1} (held out): {held:.3f}")
    del truth


def generated(n: int) -> None:
    """The lexical grouping of ``n`` generated observations (seed 11, as bench/digest.py) against their templates."""
    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic_observations import generate

    items, truth = generate(n, seed=11)
    t0, c0 = time.perf_counter(), time.process_time()
    themes = find_themes(items, embed=False, language="en")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    pred = _labels_of(themes, [i.id for i in items])
    every = list(range(n))
    ari, nmi = _scores(truth, pred, every)
    print(
        f"{n} generated observations, {len(set(truth))} template themes, {len({i.text for i in items})} distinct texts: "
        f"lexical grouping ARI {ari:.4f}, NMI {nmi:.4f}, {len(themes)} themes, {secs:.2f} s ({cpu:.2f} s CPU)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--generated", type=int, metavar="N", help="only: the lexical grouping of N generated observations")
    ap.add_argument("--tune", action="store_true", help="repeat the half/half parameter search")
    ap.add_argument("--lexical", action="store_true", help="also the product's grouping without embeddings")
    ap.add_argument("--labels", action="store_true", help="print every theme's label and size")
    args = ap.parse_args()
    if args.generated:
        generated(args.generated)
        return
    rows = load()
    ids = [r["id"] for r in rows]
    truth = [r["theme"] for r in rows]

    t0 = time.perf_counter()
    cache = FileEmbeddingCache(ROOT / ".cache" / "embeddings")
    embed = embedder()
    vectors = dict(zip(ids, cache.embed([r["text"] for r in rows], embed), strict=True))
    embed_secs = time.perf_counter() - t0

    if args.tune:
        tune(rows, vectors)

    methods: list[tuple[str, list[int], float, int]] = []
    themes, secs = product(rows, vectors)
    methods.append(("frontline find_themes (e5 + TF-IDF + category)", _labels_of(themes, ids), secs, len(themes)))
    if args.lexical:
        lex, lsecs = product(rows, vectors, semantic=False)
        methods.append(("frontline find_themes, no embeddings", _labels_of(lex, ids), lsecs, len(lex)))
    t0 = time.perf_counter()
    keys: dict[tuple[str, str], int] = {}
    pred_a = [keys.setdefault((r["product_area"], r["category"]), len(keys)) for r in rows]
    methods.append(("baseline A: (area, category)", pred_a, time.perf_counter() - t0, len(keys)))

    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    t0 = time.perf_counter()
    k = len(set(truth))
    x = TfidfVectorizer(sublinear_tf=True).fit_transform([r["text"] for r in rows])
    pred_b = [int(v) for v in KMeans(n_clusters=k, n_init=5, random_state=0).fit_predict(x)]
    methods.append(("baseline B: TF-IDF + KMeans (true k)", pred_b, time.perf_counter() - t0, k))

    everything = list(range(len(rows)))
    held_out = list(range(FIRST_HALF, len(rows)))
    non_en = [i for i, r in enumerate(rows) if r["language"] != "en"]
    print(
        f"{len(rows)} hand-written observations, {k} true themes, {len(non_en)} non-English; "
        f"embeddings {embed_secs:.1f}s (cached after the first run)"
    )
    print(f"{'method':50} {'ARI':>6} {'NMI':>6} {'ARI h2':>7} {'secs':>6} {'themes':>6}")
    for name, pred, s, n in methods:
        a, m = _scores(truth, pred, everything)
        h, _ = _scores(truth, pred, held_out)
        print(f"{name:50} {a:6.3f} {m:6.3f} {h:7.3f} {s:6.2f} {n:6d}")
    ours = _scores(truth, methods[0][1], everything)[0]
    base = _scores(truth, pred_a, everything)[0]
    print(f"ARI gain over (area, category): {ours - base:+.3f} (goal >= +0.10; goal ARI >= 0.80)")

    # Non-English items: how many share a theme with at least one English item of their true theme.
    pred = methods[0][1]
    english_themes = defaultdict(set)
    for i, r in enumerate(rows):
        if r["language"] == "en":
            english_themes[r["theme"]].add(pred[i])
    joined = sum(1 for i in non_en if pred[i] in english_themes[rows[i]["theme"]])
    sizes = defaultdict(int)
    for p in pred:
        sizes[p] += 1
    alone = sum(1 for i in non_en if sizes[pred[i]] == 1)
    print(
        f"non-English items grouped with English items of their true theme: {joined}/{len(non_en)}; singletons: {alone}"
    )

    by_dept: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_dept[r["department"]].append(i)
    print(
        f"\nper department (items whose true department it is){'':4}"
        + "".join(f"{n.split(':')[0][:10]:>12}" for n, *_ in methods)
    )
    for dept in sorted(by_dept, key=lambda d: -len(by_dept[d])):
        idx = by_dept[dept]
        cells = "".join(f"{_scores(truth, p, idx)[0]:12.3f}" for _n, p, _s, _k in methods)
        print(f"  {dept:22} {len(idx):4d} items {len({truth[i] for i in idx}):3d} themes{'':6}{cells}")

    if args.labels:
        print()
        for t in themes:
            print(f"{t.size:4d}  {t.label}")


if __name__ == "__main__":
    main()
