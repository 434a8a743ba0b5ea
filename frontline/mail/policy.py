"""The email policy every message Frontline builds is written with: the standard library's
``email.policy.default``, with the work it repeats for every message done once.

Building a message spends most of its time on headers: the standard :class:`HeaderRegistry` creates a
new class (``type(...)``) for every header it parses, parses the same values again for every message
(``MIME-Version: 1.0``, ``Content-Type: text/plain; charset="utf-8"``, the sender, ...), and the
generator folds every header again. Here each header class is made once, a header with the same name
and value is parsed once (header objects are immutable) and folded once per policy. The results are the
same objects the standard library would build, so the bytes are the same (``tests/test_bulk_mail.py``
compares messages built with this policy and with ``email.policy.default``).
"""

from __future__ import annotations

from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import EmailPolicy
from typing import Any

HEADERS_KEPT = 4096  # parsed headers kept for reuse (the cache is emptied when full)


class CachedHeaderRegistry(HeaderRegistry):
    """:class:`HeaderRegistry` that builds the class for each header kind once and parses each
    ``(name, value)`` once."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[type, type[BaseHeader]] = {}
        self._headers: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> Any:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._classes.get(kind)
        if made is None:
            made = self._classes[kind] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: Any) -> Any:
        if type(value) is not str:  # an Address, a Group, ...: parsed as the standard registry does
            return self[name](name, value)
        header = self._headers.get((name, value))
        if header is None:
            header = self[name](name, value)
            if len(self._headers) >= HEADERS_KEPT:
                self._headers.clear()
            self._headers[(name, value)] = header
        return header


class MailPolicy(EmailPolicy):
    """``email.policy.default`` that folds a header object once per policy (the folded text is kept on
    the header, which is immutable)."""

    def _fold(self, name: str, value: Any, refold_binary: bool = False) -> str:
        if not hasattr(value, "name"):
            return super()._fold(name, value, refold_binary)  # type: ignore[misc]  # private in the stubs
        kept = value.__dict__.get("_frontline_folded")
        if kept is not None and kept[0] is self:
            return str(kept[1])
        folded = value.fold(policy=self)
        value.__dict__["_frontline_folded"] = (self, folded)
        return str(folded)


MAIL_POLICY = MailPolicy(header_factory=CachedHeaderRegistry())
