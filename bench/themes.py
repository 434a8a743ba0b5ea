"""Theme quality and speed on a generated labelled set.

Each true theme has a product area, a category and a handful of paraphrase templates with slots
("{cust} can't find the export button" / "where is the {export_word} option?"); every generated
observation picks a template, fills the slots, and gets noise: a random lead-in ("Caller said"), an
optional unrelated trailing clause, casing changes and a typo now and then. Several themes share an
area and category, so the text clustering (not only the structured fields) has to separate them.

Prints ARI / NMI (sklearn.metrics) and seconds for:
  * frontline.digests.themes.find_themes (area+category, then normalised TF-IDF word+char, average linkage)
  * baseline A: area + category only
  * baseline B: plain TF-IDF + KMeans with the true number of themes (an oracle k)

usage: python bench/themes.py [--n 5000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from frontline.digests.themes import ThemeInput, find_themes

SLOTS = {
    "cust": ["customers", "the customer", "a caller", "users", "one client", "they"],
    "export_word": ["export", "CSV export", "export to Excel", "download as CSV"],
    "ctl": ["button", "menu", "option", "link", "tab"],
    "pay": ["card", "PayPal", "Apple Pay", "a credit card", "SEPA"],
    "device": ["iPhone", "Android phone", "iPad", "Pixel"],
    "days": ["three", "five", "ten", "two"],
}

THEMES = [
    (
        "export",
        "confusing_ux",
        [
            "{cust} can't find export",
            "where is the {export_word} {ctl}?",
            "{cust} could not locate the {export_word} {ctl}",
            "unable to find the {export_word} anywhere",
            "how do I export my data, no {ctl} for it",
            "{cust} looking for the export {ctl} for ages",
        ],
    ),
    (
        "export",
        "confusing_ux",
        [
            "the exported file has columns in a confusing order",
            "{cust} don't understand the date format in the export",
            "export file headers are unclear",
            "exported CSV mixes up decimal commas and points",
            "column names in the {export_word} make no sense",
        ],
    ),
    (
        "export",
        "bug",
        [
            "export times out for large accounts",
            "the {export_word} takes forever and then fails",
            "large exports never finish",
            "export spinner runs forever with big data sets",
            "{export_word} fails with a timeout error",
        ],
    ),
    (
        "checkout",
        "bug",
        [
            "checkout crashes when paying with {pay}",
            "payment page freezes after entering {pay} details",
            "app crashed during payment with {pay}",
            "checkout hangs on the pay step using {pay}",
            "blank screen after choosing {pay} at checkout",
        ],
    ),
    (
        "checkout",
        "bug",
        [
            "discount code is not applied at checkout",
            "coupon rejected although it is valid",
            "voucher code says invalid",
            "promo code does not reduce the total",
            "{cust} entered a valid coupon and it was ignored",
        ],
    ),
    (
        "billing",
        "policy_pricing",
        [
            "{cust} say the plan is too expensive",
            "price is too high compared to competitors",
            "the new pricing costs too much for small teams",
            "{cust} think we are overpriced",
            "monthly fee went up and they want to cancel",
        ],
    ),
    (
        "billing",
        "bug",
        [
            "{cust} were charged twice this month",
            "double charged on the last invoice",
            "duplicate charge on the card",
            "billed twice for the same subscription",
            "two identical payments taken from {cust}",
        ],
    ),
    (
        "billing",
        "confusing_ux",
        [
            "invoice does not show the VAT number",
            "VAT missing from invoices",
            "{cust} need the VAT id printed on the invoice",
            "invoices lack tax details for accounting",
            "no VAT breakdown on the invoice PDF",
        ],
    ),
    (
        "shipping",
        "delivery_fulfilment",
        [
            "order has not arrived after {days} days",
            "parcel delayed again",
            "delivery is {days} days late",
            "{cust} still waiting for their package",
            "tracking shows no movement for {days} days",
        ],
    ),
    (
        "shipping",
        "delivery_fulfilment",
        [
            "parcel arrived damaged",
            "box was crushed and the item broken",
            "item broken on arrival",
            "{cust} received a damaged product",
            "packaging too thin, product arrived dented",
        ],
    ),
    (
        "mobile app",
        "bug",
        [
            "app crashes on start on {device}",
            "mobile app closes immediately on {device}",
            "the app freezes at the splash screen on {device}",
            "{device} app crashes after the update",
            "app will not open on {device} since last release",
        ],
    ),
    (
        "mobile app",
        "missing_feature",
        [
            "{cust} want dark mode in the app",
            "please add a dark theme to the mobile app",
            "no dark mode on {device}",
            "night mode is missing in the app",
            "{cust} asked for dark mode again",
        ],
    ),
    (
        "account",
        "bug",
        [
            "password reset email never arrives",
            "{cust} did not get the reset password mail",
            "forgot password link not received",
            "reset link email missing",
            "password reset mail goes nowhere",
        ],
    ),
    (
        "account",
        "confusing_ux",
        [
            "{cust} cannot figure out how to add a second user",
            "adding team members is confusing",
            "where do I invite colleagues?",
            "inviting a new user is hard to find",
            "{cust} could not find how to add a teammate",
        ],
    ),
    (
        "onboarding",
        "documentation",
        [
            "setup guide is outdated",
            "the getting started docs show old screenshots",
            "documentation for setup does not match the product",
            "help article about onboarding is out of date",
            "install guide describes a menu that no longer exists",
        ],
    ),
    (
        "onboarding",
        "praise",
        [
            "{cust} love the new onboarding wizard",
            "great feedback on the setup flow",
            "onboarding was praised as very easy",
            "{cust} said setup took five minutes, fantastic",
            "happy with how simple onboarding is",
        ],
    ),
]
LEADS = ["", "", "", "Caller said: ", "Customer told me ", "FYI ", "On chat today: ", "Ticket: ", "Heard twice: "]
TAILS = [
    "",
    "",
    "",
    " They were polite about it.",
    " Happened on Tuesday.",
    " Second time this month.",
    " Not sure if related to the outage.",
    " They asked for a callback.",
]


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 10 or rng.random() > 0.25:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def generate(n: int, seed: int = 7) -> tuple[list[ThemeInput], list[int]]:
    rng = random.Random(seed)
    items, truth = [], []
    for i in range(n):
        t = rng.randrange(len(THEMES))
        area, cat, templates = THEMES[t]
        text = rng.choice(templates)
        for slot, values in SLOTS.items():
            while "{" + slot + "}" in text:
                text = text.replace("{" + slot + "}", rng.choice(values), 1)
        text = rng.choice(LEADS) + text + rng.choice(TAILS)
        if rng.random() < 0.3:
            text = text.capitalize()
        items.append(ThemeInput(i, _typo(text, rng), area, cat))
        truth.append(t)
    return items, truth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    items, truth = generate(args.n, args.seed)
    rows = []

    t0 = time.perf_counter()
    themes = find_themes(items)
    secs = time.perf_counter() - t0
    label = {}
    for k, th in enumerate(themes):
        for mid in th.member_ids:
            label[mid] = k
    pred = [label[i.id] for i in items]
    rows.append(
        ("frontline.digests.themes (area+category; TF-IDF word+char + LSA; avg linkage)", pred, secs, len(themes))
    )

    t0 = time.perf_counter()
    keys = {}
    pred_a = [keys.setdefault((i.product_area, i.category), len(keys)) for i in items]
    rows.append(("baseline A: area + category only", pred_a, time.perf_counter() - t0, len(keys)))

    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    t0 = time.perf_counter()
    x = TfidfVectorizer().fit_transform([i.text for i in items])
    pred_b = KMeans(n_clusters=len(THEMES), n_init=3, random_state=0).fit_predict(x)
    rows.append(("baseline B: TF-IDF + KMeans (true k)", list(pred_b), time.perf_counter() - t0, len(THEMES)))

    # Within the (area, category) groups that hold more than one true theme, only the text can separate
    # them: mean ARI over those groups (baseline A scores 0 there by construction).
    mixed: dict[tuple[str, str], list[int]] = {}
    for idx, item in enumerate(items):
        mixed.setdefault((item.product_area, item.category), []).append(idx)
    mixed = {k: v for k, v in mixed.items() if len({truth[i] for i in v}) > 1}

    def mixed_ari(p) -> float:
        scores = [adjusted_rand_score([truth[i] for i in v], [p[i] for i in v]) for v in mixed.values()]
        return sum(scores) / len(scores) if scores else float("nan")

    print(
        f"{args.n} generated observations, {len(THEMES)} true themes (seed {args.seed}); "
        f"{len(mixed)} area+category groups hold two true themes"
    )
    print(f"{'method':66} {'ARI':>6} {'NMI':>6} {'mixARI':>6} {'secs':>7} {'themes':>7}")
    for name, p, s, k in rows:
        print(
            f"{name:66} {adjusted_rand_score(truth, p):6.3f} {normalized_mutual_info_score(truth, p):6.3f} "
            f"{mixed_ari(p):6.3f} {s:7.2f} {k:7d}"
        )
    ours = adjusted_rand_score(truth, rows[0][1])
    for name, p, _s, _k in rows[1:]:
        other = adjusted_rand_score(truth, p)
        print(f"ARI ratio vs {name.split(':')[0]}: {ours / other if other else float('inf'):.2f}x")
    big = sorted(themes, key=lambda t: -t.size)[:5]
    print("largest themes:", "; ".join(f"{t.size} × {t.label!r}" for t in big))


if __name__ == "__main__":
    main()
