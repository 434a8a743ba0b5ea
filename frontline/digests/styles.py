"""The digest's CSS inlined: the rules of the template's own ``<style>`` block written into each
element's ``style`` attribute, what ``css_inline.CSSInliner(keep_style_tags=False)`` does for this
stylesheet. frontline.digests.render applies it once to the template's source (every class attribute
there is a literal; a class or style set by Jinja raises :class:`UnsupportedSelector`), so rendering a
digest costs nothing for its CSS; it works the same on rendered HTML (tests compare both with css-inline).

The stylesheet is compiled once per distinct ``<style>`` text. Selectors are the small set the digest
template uses: compounds of a tag name and/or classes (``td``, ``.muted``, ``p.x``), optionally a
descendant chain (``.spark td``); anything else raises :class:`UnsupportedSelector` (extend this
module, and the oracle test in tests/test_digest_styles.py, before using it). The cascade is css-inline's:
rules in order of specificity (classes, then tags), then of source order; the element's own ``style``
declarations win over every rule. Inherited properties are not copied down (neither does css-inline).

The start tags are found with a regular expression (Jinja's autoescaped output has no ``<`` or ``>`` in
text or attribute values; the template has none inside its ``{{ }}``/``{% %}``, and each ``{% if %}``
branch opens and closes its own tags); the style of a tag depends only on its name, classes, own style and which
descendant-selector ancestors are open, so it is computed once per distinct combination."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>\s*", re.S | re.I)
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_COMPOUND = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)?((?:\.[a-zA-Z_][a-zA-Z0-9_-]*)*)$")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>")
_CLASS = re.compile(r"""\sclass\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]
)


class UnsupportedSelector(ValueError):
    pass


@dataclass(frozen=True)
class _Compound:
    tag: str | None
    classes: frozenset[str]

    def matches(self, tag: str, classes: frozenset[str]) -> bool:
        return (self.tag is None or self.tag == tag) and self.classes <= classes


@dataclass(frozen=True)
class _Rule:
    target: _Compound
    ancestors: tuple[_Compound, ...]  # outermost first: ``.a .b td`` -> (.a, .b)
    specificity: tuple[int, int]
    order: int
    declarations: tuple[tuple[str, str], ...]


def _declarations(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.split(";"):
        name, sep, value = part.partition(":")
        if sep and name.strip():
            out.append((name.strip().lower(), value.strip()))
    return out


def _compound(text: str, selector: str) -> _Compound:
    m = _COMPOUND.match(text)
    if not m or not text:
        raise UnsupportedSelector(f"selector {selector!r} is not supported by frontline.digests.styles")
    classes = frozenset(c for c in m.group(2).split(".") if c)
    return _Compound(m.group(1).lower() if m.group(1) else None, classes)


@dataclass(frozen=True)
class _Sheet:
    rules: tuple[_Rule, ...]
    ancestor_compounds: tuple[_Compound, ...]  # every compound used left of a descendant combinator
    # start tag (name, attributes, open descendant-selector ancestors) -> (the tag rewritten, or None
    # when no rule applies, and its classes): the same for every digest rendered from this stylesheet
    tags: dict[tuple[str, str, tuple[tuple[str, frozenset[str]], ...]], tuple[str | None, frozenset[str]]]


@cache
def _sheet(css: str) -> _Sheet:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules: list[_Rule] = []
    for m in _RULE.finditer(css):
        declarations = tuple(_declarations(m.group(2)))
        for selector in m.group(1).split(","):
            parts = [_compound(p, selector) for p in selector.split()]
            if not parts:
                raise UnsupportedSelector(f"empty selector in {m.group(1)!r}")
            specificity = (sum(len(p.classes) for p in parts), sum(p.tag is not None for p in parts))
            rules.append(_Rule(parts[-1], tuple(parts[:-1]), specificity, len(rules), declarations))
    rules.sort(key=lambda r: (r.specificity, r.order))
    ancestors = tuple(dict.fromkeys(a for r in rules for a in r.ancestors))
    return _Sheet(tuple(rules), ancestors, {})


def _ancestors_match(chain: tuple[_Compound, ...], open_path: list[tuple[str, frozenset[str]]]) -> bool:
    """``chain`` (outermost first) matches some subsequence of the open elements, in order."""
    i = len(chain) - 1
    for tag, classes in reversed(open_path):
        if i < 0:
            break
        if chain[i].matches(tag, classes):
            i -= 1
    return i < 0


def _style_for(
    sheet: _Sheet, tag: str, classes: frozenset[str], own: str, open_path: list[tuple[str, frozenset[str]]]
) -> str | None:
    declared: dict[str, str] = {}
    for rule in sheet.rules:
        if rule.target.matches(tag, classes) and (not rule.ancestors or _ancestors_match(rule.ancestors, open_path)):
            for name, value in rule.declarations:
                declared.pop(name, None)
                declared[name] = value
    if not declared:
        return None
    for name, value in _declarations(own):
        declared.pop(name, None)  # the element's own declarations win, in their order, after the rules'
        declared[name] = value
    return ";".join(f"{name}: {value}" for name, value in declared.items())


def inline_styles(html: str) -> str:
    """``html`` with its ``<style>`` block removed and the block's rules written into the elements'
    ``style`` attributes (see the module docstring)."""
    block = _STYLE_BLOCK.search(html)
    if block is None:
        return html
    sheet = _sheet(block.group(1))
    html = html[: block.start()] + html[block.end() :]
    # the open elements that some descendant selector looks at (only those decide a style)
    open_path: list[tuple[str, frozenset[str]]] = []
    stack: list[tuple[str, bool]] = []  # every open element: (tag, is it on open_path)
    cache = sheet.tags
    if len(cache) > 100_000:  # unique link targets make most keys; keep the memory bounded
        cache.clear()
    out: list[str] = []
    pos = 0
    for m in _TAG.finditer(html):
        closing, tag, attrs = m.group(1), m.group(2).lower(), m.group(3)
        if closing:
            while stack:  # close up to the matching tag (tolerates an unclosed <p> or <li>)
                open_tag, on_path = stack.pop()
                if on_path:
                    open_path.pop()
                if open_tag == tag:
                    break
            continue
        key = (tag, attrs, tuple(open_path))
        hit = cache.get(key)
        if hit is None:
            cm = _CLASS.search(attrs)
            sm = _STYLE_ATTR.search(attrs)
            if "{" in (cm.group(0) if cm else "") + (sm.group(0) if sm else ""):
                raise UnsupportedSelector(
                    f"a class or style set by Jinja ({m.group(0)}): write one start tag per branch"
                )
            classes = frozenset((cm.group(1) or cm.group(2) or "").split()) if cm else frozenset()
            style = _style_for(sheet, tag, classes, (sm.group(1) or sm.group(2) or "") if sm else "", open_path)
            new_tag: str | None
            if style is None:
                new_tag = None
            elif sm:
                new_tag = f'<{m.group(2)}{attrs[: sm.start()]} style="{style}"{attrs[sm.end() :]}>'
            else:
                end = len(attrs) - 1 if attrs.endswith("/") else len(attrs)
                new_tag = f'<{m.group(2)}{attrs[:end].rstrip()} style="{style}"{attrs[end:]}>'
            hit = cache[key] = (new_tag, classes)
        new_tag, classes = hit
        if new_tag is not None:
            out.append(html[pos : m.start()])
            out.append(new_tag)
            pos = m.end()
        if tag in _VOID or attrs.endswith("/"):
            continue
        on_path = any(a.matches(tag, classes) for a in sheet.ancestor_compounds)
        stack.append((tag, on_path))
        if on_path:
            open_path.append((tag, classes))
    out.append(html[pos:])
    return "".join(out)
