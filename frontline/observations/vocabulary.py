"""The words of the observation domain: categories, sources, acknowledgement states and their labels.

One copy each: intake validates against them, the acknowledgement mails, the console and the digests
show them.
"""

from __future__ import annotations

ACK_STATES = ("acknowledged", "planned", "fixed", "wont_fix")  # what someone can answer to an observation
STATES = ("new", *ACK_STATES)  # every state an observation can be in, in workflow order
ACK_STATE_LABELS = {
    "new": "new",
    "acknowledged": "acknowledged",
    "planned": "planned: a fix or change is scheduled",
    "fixed": "fixed",
    "wont_fix": "won't fix",
}
# the same labels without their explanation ("planned", "won't fix"): mail subjects and digests
ACK_STATE_SHORT_LABELS = {state: label.split(":")[0] for state, label in ACK_STATE_LABELS.items()}

SOURCES = ("web", "api", "cli", "import", "demo")

CATEGORY_LABELS = {
    "bug": "Bug",
    "confusing_ux": "Confusing UX",
    "missing_feature": "Missing feature",
    "policy_pricing": "Policy / pricing",
    "delivery_fulfilment": "Delivery / fulfilment",
    "documentation": "Documentation",
    "praise": "Praise",
    "other": "Other",
}


def category_label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category.replace("_", " ").capitalize())
