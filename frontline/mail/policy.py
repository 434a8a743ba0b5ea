"""The email policy every message Frontline builds is written with: the standard library's
``email.policy.default``, with a header factory that creates each header class once.

The standard :class:`email.headerregistry.HeaderRegistry` creates a new class (``type(...)``) for every
header it parses: several per header set, a few dozen per invite, a sizeable share of the time a message
took. :class:`CachedHeaderRegistry` hands out the same class every time instead; the classes are
identical, so the headers parse, fold and serialise to the same bytes (``tests/test_bulk_mail.py``
compares messages built with both policies).
"""

from __future__ import annotations

from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry
from typing import Any


class CachedHeaderRegistry(HeaderRegistry):
    """:class:`HeaderRegistry` that builds the class for each header kind once."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[type, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> Any:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._classes.get(kind)
        if made is None:
            made = self._classes[kind] = super().__getitem__(name)
        return made


MAIL_POLICY = email_policy.default.clone(header_factory=CachedHeaderRegistry())
