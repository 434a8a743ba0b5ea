"""The mail policy's text bodies (issue 14): :func:`frontline.mail.policy.set_text_content` encodes a body
byte for byte as the standard library does (same Content-Transfer-Encoding, same quoted-printable
payload), only faster. Compared on bodies made to hit every branch: "=" at the wrap points, trailing
spaces and tabs, non-ASCII text, control characters, CR, short and long lines, fewer and more than the
ten lines the standard library sniffs to choose between quoted-printable and base64."""

from __future__ import annotations

import email.policy
import email.quoprimime
import random
from email.message import EmailMessage

import pytest

from frontline.mail.policy import MAIL_POLICY, as_bytes, qp_body_encode

ALPHABET = [
    " ",
    "\t",
    "=",
    "a",
    "b",
    "<",
    ">",
    "~",
    "é",
    "€",
    "ü",
    "\r",
    "\n",
    "\x00",
    "\x0b",
    "\x7f",
    "\x1c",
    "\u2028",
]


def _body(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.choice([1, 3, 9, 10, 11, 14, 40])):
        width = rng.choice([0, 1, 70, 74, 75, 76, 77, 78, 79, 150, 400])
        lines.append("".join(rng.choice(ALPHABET) if rng.random() < 0.3 else "x" for _ in range(width)))
    return "\n".join(lines) + rng.choice(["", "\n", " ", "\t", "="])


def test_quoted_printable_matches_the_standard_library() -> None:
    rng = random.Random(14)
    for _ in range(3000):
        body = _body(rng).encode("utf-8", "surrogatepass").decode("latin-1")
        for width in (4, 5, 20, 76):
            assert qp_body_encode(body, width) == email.quoprimime.body_encode(body, width), (body, width)
    assert qp_body_encode("") == ""
    with pytest.raises(ValueError, match="maxlinelen"):
        qp_body_encode("x", 3)


def _message(policy: email.policy.EmailPolicy, text: str, html: str) -> bytes:
    msg = EmailMessage(policy=policy)
    msg["Subject"] = "Digest"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes().replace(msg.get_boundary().encode(), b"BOUNDARY")


@pytest.mark.parametrize("seed", range(40))
def test_messages_are_byte_identical_to_the_standard_librarys(seed: int) -> None:
    rng = random.Random(seed)
    text, html = _body(rng), _body(rng)
    if seed % 4 == 0:  # plain ASCII short lines: 7bit
        text = "Hello,\nthree observations this week.\n"
    if seed % 4 == 1:  # a digest-like HTML body: long inlined-style lines after ten short ones
        html = "\n".join(["<p>x</p>"] * 10) + '\n<td style="color: #333; padding: 4px">Kunde – “Rabatt”</td>' * 300
    ours = _message(MAIL_POLICY, text, html)
    assert ours == _message(email.policy.default, text, html)
    assert b"Content-Transfer-Encoding" in ours


@pytest.mark.parametrize("seed", range(40))
def test_messages_are_written_as_the_standard_generator_writes_them(seed: int) -> None:
    """:func:`frontline.mail.policy.as_bytes` (bodies written in one piece) gives the bytes of
    ``message.as_bytes()``: bodies with and without CR, in the policy's ``\\n`` and in CRLF line endings."""
    rng = random.Random(1000 + seed)
    text, html = _body(rng), _body(rng)
    if seed % 2:
        text, html = text.replace("\r", ""), html.replace("\r", "")
    for policy in (MAIL_POLICY, MAIL_POLICY.clone(linesep="\r\n")):
        msg = EmailMessage(policy=policy)
        msg["Subject"] = "Digest"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        standard = msg.as_bytes()  # sets the boundary: both sides write the same one
        assert as_bytes(msg) == standard
        raw = EmailMessage(policy=policy)  # a payload set as it is keeps its CRs until written
        raw["Content-Type"] = "text/calendar; charset=utf-8"
        raw.set_payload(text.encode("ascii", "replace").decode("ascii") + "\r\nEND:X\rY\n")
        assert as_bytes(raw) == raw.as_bytes()
