"""The email policy every message Frontline builds is written with: the standard library's
``email.policy.default``, with the work it repeats for every message done once.

Building a message spends most of its time on headers: the standard :class:`HeaderRegistry` creates a
new class (``type(...)``) for every header it parses, parses the same values again for every message
(``MIME-Version: 1.0``, ``Content-Type: text/plain; charset="utf-8"``, the sender, ...), and the
generator folds every header again. Here each header class is made once, a header with the same name
and value is parsed once (header objects are immutable) and folded once per policy. The results are the
same objects the standard library would build, so the bytes are the same (``tests/test_bulk_mail.py``
compares messages built with this policy and with ``email.policy.default``).

Text bodies (:func:`set_text_content`) are encoded as the standard library encodes them, with a faster
quoted-printable step: the standard ``quoprimime.body_encode`` maps every character through a
256-entry table (``str.translate``, ~20-40 ns a character, most of the cost of a 60 kB HTML digest) and
encodes the first ten lines twice (once to choose between quoted-printable and base64); here the
characters to quote are found and replaced in C, and the first ten lines are encoded once (``tests/test_mail_policy.py``
compares the bytes with the standard library's on many bodies).
"""

from __future__ import annotations

import binascii
import email.charset
import sys
from email import contentmanager, headerregistry
from email.contentmanager import ContentManager, raw_data_manager
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any

HEADERS_KEPT = 4096  # parsed headers kept for reuse (the cache is emptied when full)


class CachedHeaderRegistry(HeaderRegistry):
    """:class:`HeaderRegistry` that builds the class for each header kind once and parses each
    ``(name, value)`` once."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[type, type[BaseHeader]] = {}
        self._headers: dict[tuple[Any, ...], BaseHeader] = {}

    def __getitem__(self, name: str) -> Any:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._classes.get(kind)
        if made is None:
            made = self._classes[kind] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: Any) -> Any:
        if type(value) is str:
            key: tuple[Any, ...] = (name, value)
        elif type(value) is Address:  # one recipient: the same person is written to several times a batch
            key = (name, Address, value.display_name, value.username, value.domain)
        else:  # a Group, a list, ...: parsed as the standard registry does
            return self[name](name, value)
        header = self._headers.get(key)
        if header is None:
            header = self[name](name, value)
            if len(self._headers) >= HEADERS_KEPT:
                self._headers.clear()
            self._headers[key] = header
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
        folded = _on_one_line(value, self)
        if folded is None:
            folded = value.fold(policy=self)
        value.__dict__["_frontline_folded"] = (self, folded)
        return str(folded)


_DECODED_IS_TREE = {
    kind.parse.__func__  # type: ignore[attr-defined]
    for kind in (
        headerregistry.UnstructuredHeader,
        headerregistry.MessageIDHeader,
        headerregistry.ParameterizedMIMEHeader,
        headerregistry.ContentTransferEncodingHeader,
        headerregistry.MIMEVersionHeader,
    )
}


def _on_one_line(header: Any, policy: EmailPolicy) -> str | None:
    """``header.fold(policy=policy)`` for a header that fits on one line: the standard library's folder
    (``_header_value_parser._refold_parse_tree``) writes the name, ": " and the parsed value as they are
    when the value is ASCII without line breaks and the line fits ``max_line_length``; None otherwise
    (folded by the standard library then, encoded words and all)."""
    tree = getattr(header, "_parse_tree", None)
    if not tree:
        return None
    # str(tree) walks the whole parse tree; these kinds of header are the text str(tree) (their ``parse``
    # sets ``decoded = str(parse_tree)``, changed only when it holds surrogates, which is not ASCII).
    text = str.__str__(header) if getattr(type(header).parse, "__func__", None) in _DECODED_IS_TREE else str(tree)
    room = (policy.max_line_length or sys.maxsize) - len(header.name) - 2
    if len(text) > room or not text.isascii() or "\n" in text or "\r" in text:
        return None
    return f"{header.name}: {text}{policy.linesep}"


# Bytes quoted-printable writes as they are (``email.quoprimime``'s body map plus CR and LF): the rest,
# "=", controls and every byte above 126, become "=XX".
_QP_SAFE = bytes(c for c in range(256) if c in (9, 10, 13) or (32 <= c <= 126 and c != ord("=")))
_QP_QUOTED = [f"={c:02X}" for c in range(256)]


def _qp_quote(body: str) -> str:
    """``body.translate(quoprimime._QUOPRI_BODY_ENCODE_MAP)``: the bytes to quote are found in C
    (``bytes.translate`` deleting the safe ones), then each one present is replaced ("=" first, so the
    "=" of the other replacements stays)."""
    present = set(body.encode("latin-1").translate(None, _QP_SAFE))
    if ord("=") in present:
        body = body.replace("=", "=3D")
        present.discard(ord("="))
    for c in present:
        body = body.replace(chr(c), _QP_QUOTED[c])
    return body


def qp_body_encode(body: str, maxlinelen: int = 76, eol: str = "\n") -> str:
    """``email.quoprimime.body_encode`` with the same output, faster: only the characters that need quoting
    are mapped. ``body`` is text decoded as Latin-1 (each character one byte), as the standard library
    passes it."""
    if maxlinelen < 4:
        raise ValueError("maxlinelen must be at least 4")
    if not body:
        return body
    encoded = _qp_lines(_qp_quote(body).splitlines(), maxlinelen, eol)
    if body[-1] in "\r\n":
        encoded.append("")
    return eol.join(encoded)


QP_LINES_KEPT = 8192  # encoded lines kept for reuse, per line length (emptied when full)
_qp_kept: dict[int, dict[bytes, str]] = {}


def qp_encode_lines(lines: list[bytes], maxlinelen: int = 76) -> str:
    """``qp_body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), maxlinelen)`` for the lines of
    ``bytes.splitlines()`` (none holds a line break), each line encoded once per process: quoted-printable
    encodes every line on its own (a line's quoting and soft breaks depend on that line alone; after
    quoting, every character ``splitlines`` would break at other than those is an ``=XX``), and the
    template lines of a message recur in every message of its kind (half the bytes of a digest's HTML)."""
    if maxlinelen < 4:
        raise ValueError("maxlinelen must be at least 4")
    kept = _qp_kept.setdefault(maxlinelen, {})
    out = []
    for line in lines:
        encoded = kept.get(line)
        if encoded is None:
            encoded = "\n".join(_qp_lines([_qp_quote(line.decode("latin-1"))], maxlinelen, "\n"))
            if len(kept) >= QP_LINES_KEPT:
                kept.clear()
            kept[line] = encoded
        out.append(encoded)
    out.append("")  # the body's final line end
    return "\n".join(out)


def _qp_lines(quoted_lines: list[str], maxlinelen: int, eol: str) -> list[str]:
    """The standard library's line-wrapping loop over already quoted lines, kept as it is: the output
    lines (soft line breaks included)."""
    soft_break = "=" + eol
    maxlinelen1 = maxlinelen - 1
    encoded_body: list[str] = []
    append = encoded_body.append
    for line in quoted_lines:
        start = 0
        laststart = len(line) - 1 - maxlinelen
        while start <= laststart:
            stop = start + maxlinelen1
            if line[stop - 2] == "=":  # do not break up an escape sequence
                append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # whitespace at the end of a line is quoted
            room = start - laststart
            if room >= 3:
                q = _QP_QUOTED[ord(line[-1])]
            elif room == 2:
                q = line[-1] + soft_break
            else:
                q = soft_break + _QP_QUOTED[ord(line[-1])]
            append(line[start:-1] + q)
        else:
            append(line[start:])
    return encoded_body


def _encode_text(string: str, charset: str, cte: str | None, policy: Any) -> tuple[str, str]:
    """``email.contentmanager._encode_text`` (the same choice of encoding and the same payload) with
    :func:`qp_encode_lines` (:func:`qp_body_encode` for other line ends)."""
    lines = string.encode(charset).splitlines()
    linesep = policy.linesep.encode("ascii")

    def embedded_body(lines: list[bytes]) -> bytes:
        return linesep.join(lines) + linesep

    def normal_body(lines: list[bytes]) -> bytes:
        return b"\n".join(lines) + b"\n"

    if cte is None:  # the standard library's heuristics for the "best" encoding
        if max((len(x) for x in lines), default=0) <= policy.max_line_length:
            try:
                return "7bit", normal_body(lines).decode("ascii")
            except UnicodeDecodeError:
                pass
            if policy.cte_type == "8bit":
                return "8bit", normal_body(lines).decode("ascii", "surrogateescape")
        sniff = embedded_body(lines[:10])
        if linesep == b"\n":  # (lines is not empty: an empty string is 7bit above)
            sniff_qp = qp_encode_lines(lines[:10], policy.max_line_length)
        else:
            sniff_qp = qp_body_encode(sniff.decode("latin-1"), policy.max_line_length)
        sniff_base64 = binascii.b2a_base64(sniff)
        if len(sniff_qp) > len(sniff_base64):
            cte = "base64"
        else:
            cte = "quoted-printable"
            if len(lines) <= 10:
                return cte, sniff_qp
            if linesep == b"\n":  # the sniffed lines are the body's first ten: encode only the rest
                return cte, sniff_qp + qp_encode_lines(lines[10:], policy.max_line_length)
    if cte == "quoted-printable":
        if not lines:
            return cte, qp_body_encode(normal_body(lines).decode("latin-1"), policy.max_line_length)
        return cte, qp_encode_lines(lines, policy.max_line_length)
    return contentmanager._encode_text(string, charset, cte, policy)  # type: ignore[attr-defined]  # private


def encode_text(string: str, policy: Any, charset: str = "utf-8") -> tuple[str, str]:
    """The transfer encoding and payload ``message.set_content(string)`` stores under ``policy`` (this
    module's content manager): what :func:`frontline.mail.mime.shaped` needs to build a message by copying."""
    return _encode_text(string, charset, None, policy)


def encode_base64(data: bytes, policy: Any) -> str:
    """The payload ``message.set_content(data, ..., cte="base64")`` stores for bytes."""
    return contentmanager._encode_base64(data, max_line_length=policy.max_line_length)  # type: ignore[attr-defined]


def set_text_content(
    msg: EmailMessage,
    string: str,
    subtype: str = "plain",
    charset: str = "utf-8",
    cte: str | None = None,
    disposition: str | None = None,
    filename: str | None = None,
    cid: str | None = None,
    params: dict[str, Any] | None = None,
    headers: Any = None,
) -> None:
    """``email.contentmanager.set_text_content`` with :func:`_encode_text` above."""
    cm: Any = contentmanager  # private helpers of the standard library
    cm._prepare_set(msg, "text", subtype, headers)
    cte, payload = _encode_text(string, charset, cte, msg.policy)
    msg.set_payload(payload)
    msg.set_param("charset", email.charset.ALIASES.get(charset, charset), replace=True)
    msg["Content-Transfer-Encoding"] = cte
    cm._finalize_set(msg, disposition, filename, cid, params)


CONTENT_MANAGER = ContentManager()
CONTENT_MANAGER.get_handlers = dict(raw_data_manager.get_handlers)  # type: ignore[attr-defined]
CONTENT_MANAGER.set_handlers = dict(raw_data_manager.set_handlers)  # type: ignore[attr-defined]
CONTENT_MANAGER.add_set_handler(str, set_text_content)

MAIL_POLICY = MailPolicy(header_factory=CachedHeaderRegistry(), content_manager=CONTENT_MANAGER)
