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

from frontline.mail.policy import MAIL_POLICY, qp_body_encode

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
            expected = email.quoprimime.body_encode(body, width)
            assert qp_body_encode(body, width) == expected, (body, width)
            assert qp_body_encode(body, width) == expected, (body, width)  # its lines encoded before
    assert qp_body_encode("") == ""
    with pytest.raises(ValueError, match="maxlinelen"):
        qp_body_encode("x", 3)


def test_text_bodies_are_encoded_as_the_standard_library_encodes_them() -> None:
    """``set_content``'s choice of transfer encoding and its payload, with the lines quoted-printable
    encodes kept for reuse (:func:`frontline.mail.policy.qp_encode_lines`): the same on a first and a
    second encoding of the same body, and for lines first seen in another body."""
    from email import contentmanager

    from frontline.mail.policy import _encode_text

    rng = random.Random(15)
    for _ in range(1500):
        body = _body(rng).replace("\r", "") if rng.random() < 0.7 else _body(rng)
        body += rng.choice(["", "\n" + "é" * 90, "\n" + "=x" * 45])
        for cte in (None, "quoted-printable"):
            expected = contentmanager._encode_text(body, "utf-8", cte, email.policy.default)  # type: ignore[attr-defined]
            assert _encode_text(body, "utf-8", cte, MAIL_POLICY) == expected, (body, cte)
            assert _encode_text(body, "utf-8", cte, MAIL_POLICY) == expected, (body, cte)


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


# --- messages written without the generator, built by copying, headers folded on one line -------------

HEADER_PIECES = [
    "a",
    "Zoë",
    "=?utf-8?q?x?=",
    '"',
    "\\",
    ",",
    ";",
    ":",
    "<",
    ">",
    "(",
    ")",
    "@",
    " ",
    "  ",
    "\t",
    "x" * 20,
    "\r",
    "\n",
    "\r\n",
    "é",
    "\x00",
]


def _value(rng: random.Random) -> str:
    value = "".join(rng.choice(HEADER_PIECES) for _ in range(rng.randint(1, 14)))
    if rng.random() < 0.2:  # leading and trailing spaces, tabs and line breaks kept
        return value
    return value.strip() or "x"


def test_headers_fold_as_the_standard_library_folds_them() -> None:
    """Headers that fit on one line are written without the standard folder (``_on_one_line``): the
    same text for every kind of header, at and around the 78-character limit."""
    from email.headerregistry import Address

    rng = random.Random(7)
    default = email.policy.default
    kinds = ["Subject", "To", "From", "Cc", "Message-ID", "X-Note", "Content-Type"]
    kinds += ["Content-Transfer-Encoding", "MIME-Version", "Content-Disposition", "Auto-Submitted"]
    for _ in range(6000):
        name = rng.choice(kinds)
        value: object = _value(rng)
        if name in ("Subject", "Message-ID", "X-Note", "Auto-Submitted") and rng.random() < 0.5:
            # lines of 76 to 81 characters: at, under and over the 78-character limit
            room = 78 - len(name) - 2
            value = "s" * rng.randint(room - 8, room + 3) + str(value)[: rng.randint(0, 5)]
        if name == "Message-ID" and rng.random() < 0.5:
            value = f"<{'0123456789abcdef' * rng.randint(1, 4)}@{_value(rng)}>"
        if name in ("To", "From") and rng.random() < 0.5:
            value = Address(
                display_name=_value(rng).replace("\r", " ").replace("\n", " "),
                addr_spec=f"p{rng.randint(0, 9)}@example.com",
            )
        if name == "Content-Type" and rng.random() < 0.5:
            value = rng.choice(["text/plain", 'text/plain; charset="utf-8"', "multipart/mixed"])
        if name == "Content-Disposition" and rng.random() < 0.5:
            value = f'attachment; filename="{_value(rng)}"'
        try:
            ours = MAIL_POLICY.fold_binary(*MAIL_POLICY.header_store_parse(name, value))
        except Exception as error:  # noqa: BLE001  # the standard library refuses the same values (checked below)
            with pytest.raises(type(error)):
                default.fold_binary(*default.header_store_parse(name, value))
            continue
        assert ours == default.fold_binary(*default.header_store_parse(name, value)), (name, value)


def _compose_like(policy: email.policy.EmailPolicy, rng: random.Random) -> EmailMessage:
    from frontline.mail import outbox

    saved = outbox._POLICY
    outbox._POLICY = policy
    try:
        html = _body(rng) if rng.random() < 0.7 else None
        cc = ["boss@example.com"] if rng.random() < 0.2 else None
        headers = rng.choice(
            [
                None,
                None,
                {"List-Unsubscribe": "<https://x.example/u>"},
                {  # a digest's: literal headers and a List-Id that is one only when ASCII
                    "List-Unsubscribe": f"<https://x.example/digest/unsubscribe/{'t' * rng.randint(0, 150)}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                    "List-Id": f"{rng.choice(['Sales', 'Zoë Ångström'])} digest <digest-{rng.randint(0, 9)}.frontline>",
                },
            ]
        )
        to = rng.choice(["a@example.com", "Zoë Ångström <z@example.com>", 'Doe, "J" <d@example.com>'])
        message = outbox.compose(
            to=to, subject=_value(rng) * rng.randint(1, 6), text=_body(rng), html=html, cc=cc, headers=headers
        )
        return message
    finally:
        outbox._POLICY = saved


def _invite_like(policy: email.policy.EmailPolicy, rng: random.Random) -> EmailMessage:
    from datetime import UTC, date, datetime

    from frontline.calendar import ics

    saved = ics.MAIL_POLICY
    ics.MAIL_POLICY = policy
    try:
        event = ics.AllDayEvent("rotation-1@example.com", _value(rng), date(2026, 3, 2), date(2026, 3, 29))
        person = ics.Person(rng.choice(["Zoë Ångström", "Bob", 'Doe, "Jane"; x' * 3]), "p@example.com")
        obj = ics.ItipObject(
            rng.choice(["REQUEST", "CANCEL"]), event, 1, ics.Person("Frontline", "f@example.com"), [person]
        )
        stamp = datetime(2026, 3, 2, tzinfo=UTC)
        return ics.invite_message(
            obj, to=person, subject=_value(rng) * 3, text=_body(rng), html=_body(rng), stamp=stamp
        )
    finally:
        ics.MAIL_POLICY = saved


@pytest.mark.parametrize("build", [_compose_like, _invite_like])
def test_messages_built_by_copying_and_written_directly_are_the_standard_librarys(build) -> None:
    """``compose`` and ``invite_message`` build the messages of a shape seen before by copying it
    (``frontline.mail.mime.shaped``), and ``message_bytes`` writes them without the generator: the
    bytes are the standard library's (built with ``email.policy.default``, written by ``as_bytes``), the
    same random boundaries included."""
    import random as random_module

    from frontline.mail import mime

    for seed in range(120):
        ours = build(MAIL_POLICY, random.Random(seed))
        again = build(MAIL_POLICY, random.Random(seed))  # built by copying now
        plain = build(email.policy.default, random.Random(seed))
        random_module.seed(seed)
        written = mime.message_bytes(again)
        random_module.seed(seed)
        assert written == plain.as_bytes(), seed
        random_module.seed(seed)
        assert mime.message_bytes(ours) == written
    assert any(key[1] in ("invite", "text", "alternative") for key in mime._shapes)


def test_a_boundary_found_in_the_text_is_drawn_as_the_generator_draws_it() -> None:
    import random as random_module
    from email.generator import BytesGenerator

    from frontline.mail import mime

    random_module.seed(3)
    first = mime._new_boundary(b"")
    text = b"x\n--" + first.encode() + b"\ny\n--" + first.encode() + b".0--\n"
    random_module.seed(3)
    ours = mime._new_boundary(text)
    random_module.seed(3)
    assert ours == BytesGenerator._make_boundary(text) == first + ".1"  # type: ignore[attr-defined]


def test_line_endings_of_a_raw_payload_are_written_as_the_generator_writes_them() -> None:
    import random as random_module

    from frontline.mail import mime

    for policy in (MAIL_POLICY, email.policy.default):
        message = EmailMessage(policy=policy)
        message["Subject"] = "raw"
        message.set_content("x\n")
        message.add_alternative("<p>y</p>\n", subtype="html")
        message.get_payload()[0].set_payload("a\r\nb\rc\n\nd")
        random_module.seed(1)
        ours = mime.message_bytes(message)
        random_module.seed(1)
        assert ours == message.as_bytes() and b"a\nb\nc\n\nd" in ours


def test_a_plain_message_id_stored_raw_is_written_and_read_as_the_parsed_one() -> None:
    """``_row_values`` stores a Message-ID that ``plain_message_id`` accepts raw (not parsed): it must fold
    to the bytes the parsed header folds to, with this policy and the standard one, and read back as the
    same text; hostile domains (specials, spaces, CR/LF, non-ASCII, too long) are refused."""
    from frontline.mail.outbox import message_id_for, plain_message_id

    rng = random.Random(21)
    default = email.policy.default
    accepted = 0
    for _ in range(3000):
        domain = (
            _value(rng)
            if rng.random() < 0.5
            else rng.choice(["example.com", "a-b.example", "x" * rng.randint(28, 36), "c"])
        )
        value = message_id_for(str(rng.random()), f"Frontline <f@{domain}>")
        if rng.random() < 0.2:
            value = f"<{'ab' * 16}@{domain}>"
        if not plain_message_id(value):
            continue
        accepted += 1
        parsed = default.fold_binary(*default.header_store_parse("Message-ID", value))
        assert MAIL_POLICY.fold_binary("Message-ID", value) == parsed, value
        assert default.fold_binary("Message-ID", value) == parsed, value
        assert str(default.header_store_parse("Message-ID", value)[1]) == value
        msg = EmailMessage(policy=MAIL_POLICY)
        msg.set_raw("Message-ID", value)
        assert str(msg["Message-ID"]) == value
    assert accepted > 500
    for domain in ["exa mple.com", "example.com>\r\nBcc: e@example.com", "é.com", "a..b", "(c)", 'x"y', "x\\y", ""]:
        assert not plain_message_id(f"<{'0' * 32}@{domain}>"), domain
