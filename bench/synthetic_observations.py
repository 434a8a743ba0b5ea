"""Generated observations for load benchmarks (bench/digest.py): each of 16 themes has a product area,
a category and paraphrase templates with slots; every observation picks a template, fills the slots and
gets noise (a lead-in, a trailing clause, casing, a typo now and then). Not for measuring theme quality:
paraphrases of templates are far easier than real notes (bench/themes.py uses the hand-written set).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frontline.digests.themes import ThemeInput

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
