"""The bytes of a message: what ``message.as_bytes()`` writes (the standard library's ``BytesGenerator``),
written directly for the messages Frontline builds.

The generator spent about half of an invite's time: it clones its policy for every MIME part (so the
header folds :class:`frontline.mail.policy.MailPolicy` keeps per policy were never reused below the top
level), compiles a regular expression for every new boundary, and parses and folds the ``Content-Type``
header again after setting the boundary. Here the parts are written in the same order with the same
bytes: each header folded with the message's own policy (so a header seen before is folded once), the
boundary drawn as the generator draws it (``random.randrange``, the same format, the same check that no
line of the parts is that boundary), and the ``Content-Type`` with a boundary folded once per kind of
header and filled in. ``tests/test_bulk_mail.py`` compares whole outboxes written this way with the
generator's, and ``tests/test_mail_policy.py`` single messages of every shape Frontline builds.

What this writer does not cover (a preamble or epilogue, ``message/*`` parts, a 7-bit policy, a
payload that is not text, ...) is written by ``message.as_bytes()`` itself.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable, Iterator
from email import generator
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import _has_surrogates  # type: ignore[attr-defined]  # private in the stubs
from typing import Any

_NLCRE = re.compile(r"\r\n|\r|\n")  # email.generator.NLCRE: every line ending becomes the policy's linesep
_BOUNDARY_FORMAT: str = generator._fmt  # type: ignore[attr-defined]  # "%019d" on 64-bit builds
_PLACEHOLDER = "=" * 15 + _BOUNDARY_FORMAT % 0 + "=="  # the shape of every boundary the generator draws


class _NotCovered(Exception):
    """A message this writer leaves to the standard library's generator."""


def message_bytes(message: EmailMessage | Message) -> bytes:
    """``message.as_bytes()``, the same bytes (boundaries aside, which are random in both), written
    without the generator for the messages Frontline builds. Unlike the generator it does not store the
    boundary it draws in the message."""
    policy = message.policy
    if not isinstance(policy, EmailPolicy) or policy.cte_type != "8bit" or policy.linesep != "\n":
        return message.as_bytes()
    try:
        return _part(message, policy)
    except _NotCovered:
        return message.as_bytes()


def _part(part: Message, policy: EmailPolicy) -> bytes:
    """One part, headers then body, as ``BytesGenerator._write`` writes it."""
    payload = part._payload  # type: ignore[attr-defined]  # the generator reads it the same way
    maintype = part.get_content_maintype()
    if maintype == "multipart":
        if not isinstance(payload, list) or part.preamble is not None or part.epilogue is not None:
            raise _NotCovered
        return _multipart(part, payload, policy)
    if maintype == "message" or not (payload is None or isinstance(payload, str)):
        raise _NotCovered
    head = b"".join([_header(policy, name, value) for name, value in part._headers])  # type: ignore[attr-defined]
    if not payload:
        return head + b"\n"
    if not _has_surrogates(payload) and not payload.isascii():
        raise _NotCovered  # the generator's own error (or charset handling) for such a payload
    if "\r" in payload:  # every line ending becomes "\n"; without a CR they all are already (a 70 kB digest: 0.2 ms)
        payload = _NLCRE.sub("\n", payload)
    return head + b"\n" + payload.encode("ascii", "surrogateescape")


def _multipart(part: Message, subparts: list[Message], policy: EmailPolicy) -> bytes:
    """``Generator._handle_multipart`` without a preamble or epilogue: the parts, then the headers with
    the boundary the generator would have set."""
    texts = [_part(sub, policy) for sub in subparts]
    boundary = part.get_boundary()
    lines: list[bytes] = []
    if boundary:
        lines = [_header(policy, name, value) for name, value in part._headers]  # type: ignore[attr-defined]
    else:
        boundary = _new_boundary(b"\n".join(texts))
        for name, value in part._headers:  # type: ignore[attr-defined]
            if name.lower() == "content-type":
                lines.append(_with_boundary(policy, name, value, boundary))
            else:
                lines.append(_header(policy, name, value))
    mark = b"--" + boundary.encode("ascii")
    body = mark + b"\n" + (b"\n" + mark + b"\n").join(texts) + b"\n" + mark + b"--\n"
    return b"".join(lines) + b"\n" + body


def _new_boundary(text: bytes) -> str:
    """``Generator._make_boundary(text)``: a random boundary, with ``.0``, ``.1``, ... added while a line
    of ``text`` is that boundary (the regular expression is only compiled when the text holds it)."""
    boundary = "=" * 15 + _BOUNDARY_FORMAT % random.randrange(sys.maxsize) + "=="
    candidate, counter = boundary, 0
    while b"--" + candidate.encode("ascii") in text:
        pattern = re.compile(b"^--" + re.escape(candidate.encode("ascii")) + b"(--)?$", re.MULTILINE)
        if not pattern.search(text):
            break
        candidate = boundary + "." + str(counter)
        counter += 1
    return candidate


_folded_with_boundary: dict[tuple[int, str, str], tuple[EmailPolicy, bytes]] = {}


def _with_boundary(policy: EmailPolicy, name: str, value: Any, boundary: str) -> bytes:
    """The folded ``Content-Type`` header after ``Message.set_boundary(boundary)``: set and folded once per
    (policy, header) on a scratch message with a boundary of the same shape, then filled in (every digit
    folds alike). A boundary of another shape is set and folded for itself."""
    if len(boundary) != len(_PLACEHOLDER):
        return _set_and_fold(policy, name, value, boundary)
    key = (id(policy), name, str(value))
    kept = _folded_with_boundary.get(key)
    if kept is None or kept[0] is not policy:
        if len(_folded_with_boundary) >= 1024:
            _folded_with_boundary.clear()
        kept = _folded_with_boundary[key] = (policy, _set_and_fold(policy, name, value, _PLACEHOLDER))
    return kept[1].replace(_PLACEHOLDER.encode("ascii"), boundary.encode("ascii"))


def _set_and_fold(policy: EmailPolicy, name: str, value: Any, boundary: str) -> bytes:
    scratch = Message(policy=policy)
    scratch._headers = [(name, value)]  # type: ignore[attr-defined]
    scratch.set_boundary(boundary)
    ((name, value),) = scratch._headers  # type: ignore[attr-defined]
    return _header(policy, name, value)


# What newer generators refuse to write (``policy.verify_generated_headers``, Python 3.11.10+/3.12.5+): a
# line break inside a folded header not followed by white space.
_UNFOLDED_BREAK = re.compile(rb"\r\n[^ \t]|\r[^ \n\t]|\n[^ \t]")


def _header(policy: EmailPolicy, name: str, value: Any) -> bytes:
    """One header as ``BytesGenerator._write_headers`` writes it; left to the generator (which raises its
    own error) when a policy that verifies generated headers would refuse it."""
    folded = policy.fold_binary(name, value)
    if getattr(policy, "verify_generated_headers", False) and (
        not folded.endswith(b"\n") or _UNFOLDED_BREAK.search(folded[:-1])
    ):
        raise _NotCovered
    return folded


# --- messages of a known shape, built by copying ------------------------------------------------------
# Building a message with ``set_content``/``add_alternative``/``make_mixed``/``add_attachment`` parses and
# sets the same content headers again for every message (a third of an invite's time once the generator
# was gone). Messages of one *shape* (the same kinds of parts, transfer encodings and parameters) differ
# only in a few leading headers (To, Subject, ...) and in the parts' payloads, so the first message of a
# shape is built by the standard library and kept, and the next ones copy its parts with their own
# headers and payloads. The payloads are computed by the same functions ``set_content`` calls, and the
# first message checks that they are the ones it stored.

_shapes: dict[tuple[Any, ...], EmailMessage] = {}
SHAPES_KEPT = 256


def shaped(
    policy: EmailPolicy,
    shape: tuple[Any, ...],
    leading: list[tuple[str, Any]],
    payloads: list[str],
    build: Callable[[], EmailMessage],
    raw: list[bool] | None = None,
) -> EmailMessage:
    """The message ``build()`` makes, built by copying the one it made for the same ``shape`` (which must
    name everything its content headers depend on), with ``leading`` headers first (set as
    ``message[name] = value`` sets them, or as ``message.set_raw(name, value)`` where ``raw`` says so)
    and the leaf parts' ``payloads`` in order (depth first)."""
    key = (policy, *shape)
    kept = _shapes.get(key)
    if kept is None:
        message = build()
        names = [name for name, _value in message._headers[: len(leading)]]  # type: ignore[attr-defined]
        if _leaf_payloads(message) != payloads or names != [name for name, _value in leading]:
            return message  # not the shape described (tests/test_mail_policy.py checks that they are): not kept
        if len(_shapes) >= SHAPES_KEPT:
            _shapes.clear()
        _shapes[key] = _copy(message, iter([""] * len(payloads)))  # kept apart: the caller adds headers to its own
        return message
    copy = _copy(kept, iter(payloads))
    copy._headers[: len(leading)] = [  # type: ignore[attr-defined]
        (name, value) if raw and raw[i] else policy.header_store_parse(name, value)
        for i, (name, value) in enumerate(leading)
    ]
    return copy


def _leaf_payloads(part: Message) -> list[Any]:
    payload = part._payload  # type: ignore[attr-defined]
    if isinstance(payload, list):
        return [p for sub in payload for p in _leaf_payloads(sub)]
    return [payload]


def _copy(part: EmailMessage, payloads: Iterator[str]) -> EmailMessage:
    """``part`` with its own header list (header objects are immutable and shared) and ``payloads``."""
    copy = part.__class__.__new__(part.__class__)
    copy.__dict__.update(part.__dict__)
    copy._headers = list(part._headers)  # type: ignore[attr-defined]
    copy.defects = list(part.defects)
    payload = part._payload  # type: ignore[attr-defined]
    copy._payload = [_copy(sub, payloads) for sub in payload] if isinstance(payload, list) else next(payloads)  # type: ignore[attr-defined]
    return copy
