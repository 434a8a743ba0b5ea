"""Rendering a digest for one recipient: HTML with its CSS inlined and a plain-text twin, tightened
step by step (:data:`LIMIT_STEPS`) until the HTML fits the mail size budget; the subject line."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from frontline.digests.content import ACK_LABELS, DigestContent, Issue, Quote, UrgentItem
from frontline.digests.styles import inline_styles

MAX_HTML_BYTES = 100_000
SIZE_BUDGET = 95_000  # re-render with tighter limits above this (headers and MIME add a little)


@dataclass(frozen=True)
class Limits:
    themes: int = 8
    quotes: int = 3
    quote_chars: int = 300
    urgent: int = 10
    acted: int = 10


LIMIT_STEPS = [Limits(), Limits(6, 2, 220, 8, 8), Limits(4, 1, 160, 5, 5), Limits(3, 1, 100, 3, 3)]


@dataclass
class RenderedDigest:
    subject: str
    html: str
    text: str
    unsubscribe_url: str
    limits: Limits


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


@dataclass(slots=True)
class _Quote:
    """A quote as the templates show it: its text trimmed, the quote itself (an object, not a dict: Jinja
    reads ``q.text`` as an attribute first, and a dict's missing attribute costs an exception)."""

    text: str
    q: Quote


@dataclass(slots=True)
class _Urgent:
    u: UrgentItem
    text: str


@dataclass(slots=True)
class _IssueEntry:
    t: Issue
    quotes: list[_Quote]
    more_quotes: int
    actions: list[tuple[str, str | None]]
    counts: list[str]  # observations per week of the 8-week trend, oldest first
    bars: list[int]  # the sparkline's bar heights (px) of the weeks before this one
    bar_now: int | None  # this week's bar height


def _bar_height(value: int, top: int) -> int:
    """A sparkline bar: 2 px, plus up to 14 px in proportion to the largest week (what the template
    computed, ``2 + (14 * value / top)|round|int``, per bar)."""
    return 2 + int(round(14 * value / top, 0))


def _issue_entry(content: DigestContent, t: Issue, recipient: str, limits: Limits, preview: bool) -> _IssueEntry:
    """One issue as the templates show it: trimmed quotes, its 8-week counts and sparkline bars (computed
    here, once, rather than by filters for every bar of every issue: most of the template's time) and,
    when the department can act on it, one action link per state (one signed token per theme; the
    pre-selected action rides in the query). In a preview the actions are listed without links (a
    preview's themes are not stored, so a link would change nothing)."""
    from frontline.core.links import THEME_ACTIONS, theme_action_url

    actions: list[tuple[str, str | None]] = []
    if t.actionable:
        if preview:
            actions = [(ACK_LABELS[a], None) for a in THEME_ACTIONS]
        else:
            base = theme_action_url(content.department_id, content.week, t.product_area, t.category, t.label, recipient)
            actions = [(ACK_LABELS[a], f"{base}?action={a}") for a in THEME_ACTIONS]
    top = max((p.value for p in t.trend8), default=0) or 1
    return _IssueEntry(
        t,
        [_Quote(_trim(q.text, limits.quote_chars), q) for q in t.quotes[: limits.quotes]],
        max(0, t.count - min(len(t.quotes), limits.quotes)),
        actions,
        [str(p.value) for p in t.trend8],
        [_bar_height(p.value, top) for p in t.trend8[:-1]],
        _bar_height(t.trend8[-1].value, top) if t.trend8 else None,
    )


def urgent_line(content: DigestContent) -> str:
    """ "3 urgent (1 still open)": the one urgent count of the digest (headline, section, text, preview)."""
    n = len(content.urgent)
    if not n:
        return "no urgent items"
    return f"{n} urgent ({content.urgent_open} still open)"


def _preheader(content: DigestContent) -> str:
    """The inbox preview line: how many, how many urgent (the same count as the text and the HTML), the
    top issue."""
    preheader = f"{content.observations} observation{'s' if content.observations != 1 else ''}"
    if content.urgent:
        preheader += f", {urgent_line(content)}"
    if content.issues:
        top = content.issues[0]
        preheader += f"; top issue: {top.label} ({top.count})"
    return preheader


def _context(content: DigestContent, recipient: str, limits: Limits, preview: bool = False) -> dict[str, Any]:
    from frontline.core.links import digest_unsubscribe_url
    from frontline.core.settings import get_settings

    base_url = get_settings().base_url
    return {
        "c": content,
        "issues": [_issue_entry(content, t, recipient, limits, preview) for t in content.issues[: limits.themes]],
        "more_issues": max(0, len(content.issues) - limits.themes),
        "more_issues_count": sum(t.count for t in content.issues[limits.themes :]),
        "urgent": [_Urgent(u, _trim(u.text, limits.quote_chars)) for u in content.urgent[: limits.urgent]],
        "more_urgent": max(0, len(content.urgent) - limits.urgent),
        "urgent_line": urgent_line(content),
        "acted": content.acted[: limits.acted],
        "more_acted": max(0, len(content.acted) - limits.acted),
        "ack_labels": ACK_LABELS,
        "preheader": _preheader(content),
        "recipient": recipient,
        "preview": preview,
        "unsubscribe_url": digest_unsubscribe_url(content.department_id, recipient),
        "app_url": base_url,
        "console_url": f"{base_url}/console/observations?department={content.department_id}",
    }


def subject_for(content: DigestContent) -> str:
    n = content.observations
    return (
        f"{content.department_name}: customer observations, week {content.week} "
        f"({content.first_day:%d %b}–{content.last_day:%d %b %Y}), {n} observation{'s' if n != 1 else ''}"
    )


@cache
def _inlined_template() -> Any:
    """email/digest.html with its CSS inlined into the template source, once (its class attributes are
    literals, so every start tag's style is known before rendering): rendering it gives the HTML that
    inlining each rendered digest would (tests/test_digest_styles.py checks against css-inline)."""
    from frontline.core.templating import environment

    env = environment()
    assert env.loader is not None
    source = env.loader.get_source(env, "email/digest.html")[0]
    return env.from_string(inline_styles(source))


def render_digest(
    content: DigestContent, recipient: str, *, inline: bool = True, preview: bool = False
) -> RenderedDigest:
    """HTML (CSS inlined) and plain text for one recipient, tightened until the HTML fits the budget.
    ``preview``: response links shown disabled (a preview is not sent; its themes are not stored)."""
    from frontline.core.templating import render_html, render_text

    for limits in LIMIT_STEPS:
        ctx = _context(content, recipient, limits, preview)
        html = _inlined_template().render(**ctx) if inline else render_html("email/digest.html", **ctx)
        if len(html.encode()) <= SIZE_BUDGET or limits is LIMIT_STEPS[-1]:
            break
    text = render_text("email/digest.txt", **ctx)
    return RenderedDigest(subject_for(content), html, text, ctx["unsubscribe_url"], limits)
