"""The one Jinja2 environment. Autoescape is on for every template, whatever its extension
(``.html``, ``.txt``, ``.j2``, ``.ics``...), so user content is escaped unless a template marks it safe.
Plain-text templates are rendered with :func:`render_text`, which turns escaping off for that call
only (a text/plain mail part must not show ``&amp;``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@lru_cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # for every template name, including .j2 (select_autoescape would skip them)
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def render_html(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


@lru_cache
def _text_environment() -> Environment:
    env = environment().overlay(autoescape=False)
    return env


def render_text(name: str, **context: Any) -> str:
    """Render a plain-text template (no HTML escaping: the output is never interpreted as HTML)."""
    return _text_environment().get_template(name).render(**context)
