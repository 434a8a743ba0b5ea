"""Characters that must never reach a one-line field: control characters and line separators.

A name, title or department is one line of text. Control characters (Unicode category Cc: U+0000 to
U+001F, U+007F to U+009F, which include CR, LF, TAB and NEL U+0085) and the Unicode line and paragraph
separators (U+2028, U+2029) break mail headers (Python's email package splits header values on every one
of them and refuses the header), split CSV rows and calendar lines, and can smuggle extra headers.

* The roster refuses them (:mod:`frontline.people.roster_csv`), so they never reach the database.
* Every mail header and calendar parameter built from such data goes through :func:`one_line` anyway
  (data imported before the check, or typed elsewhere).
"""

from __future__ import annotations

import re

FORBIDDEN_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_NAMES = {0x09: "tab", 0x0A: "line feed", 0x0D: "carriage return", 0x85: "next line"}


def forbidden_character(value: str) -> str | None:
    """How to name the first control or line-separator character of ``value`` (``the control character
    U+000A (line feed)``, ``the line separator U+2028``), or None when it has none."""
    found = FORBIDDEN_IN_LINE.search(value)
    if found is None:
        return None
    code = ord(found.group())
    if code == 0x2028:
        return "the line separator U+2028"
    if code == 0x2029:
        return "the paragraph separator U+2029"
    name = _NAMES.get(code)
    return f"the control character U+{code:04X}" + (f" ({name})" if name else "")


def one_line(value: str) -> str:
    """``value`` with every control character and line separator replaced by a space, and runs of
    whitespace collapsed: safe for a mail header or a calendar parameter."""
    return " ".join(FORBIDDEN_IN_LINE.sub(" ", value or "").split())
