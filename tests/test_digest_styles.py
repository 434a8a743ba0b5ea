"""The digest's CSS inlined by frontline.digests.styles against css-inline as the oracle: what the
reader's mail client sees (per element: tag, attributes, text, the style declarations in effect) is the
same; the serialisation may differ (css-inline adds <tbody>, drops the trailing ';', writes void tags
as ``<br>``)."""

from __future__ import annotations

from datetime import UTC, timedelta
from html.parser import HTMLParser

import css_inline
import pytest
from sqlmodel import select
from test_digests import HOSTILE, MONDAY, WEEK, _dept, _emp, _make_company, _obs

from frontline.core.templating import render_html
from frontline.digests.content import build_digest
from frontline.digests.loading import load_week
from frontline.digests.queue import queue_digests
from frontline.digests.render import LIMIT_STEPS, _context, _inlined_template, render_digest
from frontline.digests.styles import UnsupportedSelector, inline_styles
from frontline.digests.weeks import shift_week
from models import Department, Observation, session_scope

ORACLE = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def _style(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, val = part.partition(":")
        if sep and name.strip():
            out.pop(name.strip().lower(), None)
            out[name.strip().lower()] = " ".join(val.split())
    return out


class _Dom(HTMLParser):
    """The document as a flat list of ("start", tag, attributes, style) and ("text", collapsed text)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":  # css-inline's parser adds it; mail clients do too
            return
        plain = sorted((k, v) for k, v in attrs if k != "style")
        style = next((v for k, v in attrs if k == "style"), None) or ""
        self.events.append(("start", tag, tuple(plain), tuple(sorted(_style(style).items()))))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag != "tbody":
            self.events.append(("end", tag))

    def handle_data(self, data):
        text = " ".join(data.split())
        if not text:
            return
        if self.events and self.events[-1][0] == "text":
            self.events[-1] = ("text", self.events[-1][1] + " " + text)
        else:
            self.events.append(("text", text))


def _void_ends_dropped(events):
    # css-inline writes <br> for <br/>; html.parser reports an end event only for the latter
    return [e for e in events if not (e[0] == "end" and e[1] in {"meta", "br", "img", "hr", "link", "input"})]


def assert_same_for_the_reader(raw: str, ours: str | None = None) -> None:
    """``ours`` (default: ``inline_styles(raw)``) shows the reader what css-inline makes of ``raw``."""
    expected = _void_ends_dropped(_Dom(str(ORACLE.inline(raw))).events)
    got = _void_ends_dropped(_Dom(inline_styles(raw) if ours is None else ours).events)
    assert got == expected
    assert any(e[0] == "start" and e[3] for e in got)  # styles were inlined at all


def _contexts(engine, ids) -> list[dict]:
    """Template contexts of varied digests: every department, sent and preview, every limit step,
    hostile text, acknowledged themes ("what your department did")."""
    with session_scope(engine) as s:
        queue_digests(s, WEEK)
        for o in s.exec(select(Observation)):
            if o.theme and "export" in o.text.lower() and o.created_at.replace(tzinfo=UTC) < MONDAY + timedelta(days=7):
                o.ack_state, o.ack_by, o.ack_at = "fixed", "cto@example.com", MONDAY + timedelta(days=9)
    with session_scope(engine) as s:
        sales = s.get(Department, ids["sales"])
        mallory = _emp(s, 'Mallory "><b>', _dept(s, "Hostile"))
        for i, text in enumerate(HOSTILE):
            _obs(s, mallory, sales, text, MONDAY + timedelta(hours=i + 1), urgent=(i == 0))
    out = []
    for week in (WEEK, shift_week(WEEK, 1)):
        with session_scope(engine) as s:
            data = load_week(s, week)
            contents = [build_digest(data, d) for d in data.departments.values()]
        for content in contents:
            for preview in (False, True):
                for limits in LIMIT_STEPS:
                    out.append(_context(content, "head@x.example", limits, preview))
    return out


def test_inlined_styles_match_css_inline(engine, settings):
    """The template inlined once (what render_digest uses) and each rendered digest inlined by
    inline_styles both show what css-inline makes of the plainly rendered digest."""
    contexts = _contexts(engine, _make_company(engine))
    assert len(contexts) >= 16
    seen = set()
    for ctx in contexts:
        raw = render_html("email/digest.html", **ctx)
        assert_same_for_the_reader(raw, _inlined_template().render(**ctx))
        assert_same_for_the_reader(raw)
        seen.update(c for e in _Dom(raw).events if e[0] == "start" for k, v in e[2] if k == "class" for c in v.split())
    # the digests above exercise the classes of the stylesheet (a rule never used would go untested)
    assert {"muted", "metric", "num", "quote", "tag", "tag-urgent", "actions", "disabled", "state", "spark"} <= seen


def test_rendered_digest_has_no_style_block_and_styles_inline(engine, settings):
    ids = _make_company(engine)
    with session_scope(engine) as s:
        data = load_week(s, WEEK)
        content = build_digest(data, data.departments[ids["eng"]])
    html = render_digest(content, "cto@example.com").html
    assert "<style" not in html  # as css-inline(keep_style_tags=False) wrote it
    assert '<p class="muted" style="margin: 4px 0;line-height: 20px;color: #6b7280;font-size: 12px">' in html


def test_cascade_details():
    sheet = (
        "<style>td { font-size: 14px; } .spark td { font-size: 1px; line-height: 1px; } .x { color: red }"
        " .x.y { color: green } p.x { margin: 0 } .a .b a { color: blue }</style>"
    )
    doc = (
        f"<html><head>{sheet}</head><body><table class='spark'><tr><td style='padding-right: 2px;'>"
        "<table><tr><td class='x y'>n</td></tr></table></td><td class='x' style='font-size: 11px; color: blue'>b</td>"
        "</tr></table><p class='x'>p<br/></p><div class='a'><p class='b'><span><a href='#'>l</a></span>"
        "</p></div><div class='b'><a href='#'>not</a></div></body></html>"
    )
    assert_same_for_the_reader(doc)
    with pytest.raises(UnsupportedSelector):
        inline_styles("<style>a:hover { color: red }</style><a>x</a>")
    with pytest.raises(UnsupportedSelector):
        inline_styles("<style>.a > b { color: red }</style><a>x</a>")
    with pytest.raises(UnsupportedSelector):  # a template's class set by Jinja: the style is not known yet
        inline_styles('<style>.a { color: red }</style><b class="{{ c }}">x</b>')
