"""Themes: paraphrases of one pain land together, unrelated ones do not; labels are short; deterministic."""

from __future__ import annotations

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


def test_product_area_and_category_always_separate():
    items = (
        _items(EXPORT[:2])
        + _items(EXPORT[2:], area="billing", start=10)
        + _items(["Where is the export button?"], category="bug", start=20)
    )
    themes = find_themes(items)
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
        themes = find_themes(_items(texts))
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
    themes = find_themes(_items(texts))
    of = theme_of(themes)
    n_export = len(EXPORT) * len(tails)
    assert len({of[i] for i in range(n_export)}) == 1
    export_label = of[0]
    others = {of[i] for i in range(n_export, len(texts))}
    assert export_label not in others and len(others) >= 3
    assert [(t.label, t.member_ids) for t in themes] == [(t.label, t.member_ids) for t in find_themes(_items(texts))]
