"""CPIM (RFC 3862), IMDN (RFC 5438), Content-Encoding and what an IM body is, from the RFCs'
own examples."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime

import pytest

from bot.im import cpim, imdn
from bot.im.bodies import UnsupportedBody
from bot.im.content import read
from bot.im.encoding import MAX_INFLATED, BadEncoding, BodyTooLarge, decode

# RFC 3862 §6.1 (the example message), with the IMDN headers of RFC 5438 §6.1
RFC3862_EXAMPLE = (
    b"From: MR SANDERS <im:piglet@100akerwood.com>\r\n"
    b"To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n"
    b"DateTime: 2000-12-13T13:40:00-08:00\r\n"
    b"Subject: the weather will be fine today\r\n"
    b"Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n"
    b"NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
    b"Require: MyFeatures.VitalMessageOption\r\n"
    b"MyFeatures.VitalMessageOption: Confirmation-requested\r\n"
    b"MyFeatures.WackyMessageOption: Use-silly-font\r\n"
    b"NS: imdn <urn:ietf:params:imdn>\r\n"
    b"imdn.Message-ID: 34jk324j\r\n"
    b"imdn.Disposition-Notification: positive-delivery, display\r\n"
    b"\r\n"
    b"Content-type: text/xml; charset=utf-8\r\n"
    b"Content-ID: <1234567890@foo.com>\r\n"
    b"\r\n"
    b"<body>\r\nHere is the text of my message.\r\n</body>"
)

# RFC 5438 §7.2.1.1 and §7.2.1.2
DELIVERED = b"""<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
  <message-id>34jk324j</message-id>
  <datetime>2008-04-04T12:16:49-05:00</datetime>
  <recipient-uri>im:bob@example.com</recipient-uri>
  <original-recipient-uri>im:bob@example.com</original-recipient-uri>
  <delivery-notification>
    <status>
      <delivered/>
    </status>
  </delivery-notification>
</imdn>"""
DISPLAYED = DELIVERED.replace(b"delivery-notification", b"display-notification").replace(
    b"<delivered/>", b"<displayed/>"
)


def test_cpim_example_headers_namespaces_and_content() -> None:
    message = cpim.parse(RFC3862_EXAMPLE)
    assert message.get("from") == "MR SANDERS <im:piglet@100akerwood.com>"
    assert message.namespaces == {
        "MyFeatures": "mid:MessageFeatures@id.foo.com",
        "imdn": "urn:ietf:params:imdn",
    }
    assert message.imdn("Message-ID") == "34jk324j"
    assert imdn.requested(message.imdn("Disposition-Notification")) == {
        "positive-delivery",
        "display",
    }
    assert message.content_type == "text/xml; charset=utf-8"
    assert message.content == b"<body>\r\nHere is the text of my message.\r\n</body>"


def test_cpim_imdn_prefix_is_whatever_the_sender_declared() -> None:
    body = b"NS: x <urn:ietf:params:imdn>\nx.Message-ID: abc\n\nContent-Type: text/plain\n\nhi"
    message = cpim.parse(body)
    assert message.imdn("Message-ID") == "abc" and message.content == b"hi"


@pytest.mark.parametrize(
    "bad", [b"no empty line at all", b"From <x>\r\n\r\nContent-Type: a\r\n\r\n"]
)
def test_cpim_that_is_not_cpim_is_refused(bad: bytes) -> None:
    with pytest.raises(cpim.CpimError):
        cpim.parse(bad)


def test_imdn_examples_parse() -> None:
    delivered = imdn.parse(DELIVERED)
    assert (delivered.message_id, delivered.kind, delivered.status) == (
        "34jk324j",
        "delivery",
        "delivered",
    )
    assert delivered.recipient == "im:bob@example.com"
    displayed = imdn.parse(DISPLAYED)
    assert (displayed.kind, displayed.status) == ("display", "displayed")


def test_imdn_we_write_is_what_we_read() -> None:
    when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    document = imdn.build("display", "displayed", "m<1>&", "sip:bot@example.test", when)
    parsed = imdn.parse(document)
    assert (parsed.message_id, parsed.kind, parsed.status) == ("m<1>&", "display", "displayed")
    assert b"<datetime>2026-11-25T12:00:00Z</datetime>" in document


@pytest.mark.parametrize(
    "bad",
    [
        b"not xml",
        b'<imdn xmlns="urn:other"><message-id>1</message-id></imdn>',
        b'<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>1</message-id></imdn>',
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><imdn xmlns="urn:ietf:params:xml:ns:imdn">&a;</imdn>',
        # issue 15 item 11: expat asks Python's codecs for the declared encoding
        b'<?xml version="1.0" encoding="base64"?><imdn/>',  # was LookupError
        b'<?xml version="1.0" encoding="nosuch"?><imdn/>',  # was LookupError
        b'<?xml version="1.0" encoding="idna"?><imdn/>',  # was UnicodeError
        b'<?xml version="1.0" encoding="undefined"?><imdn/>',  # was UnicodeError
    ],
)
def test_imdn_that_is_not_imdn_or_is_hostile_is_refused(bad: bytes) -> None:
    with pytest.raises(imdn.ImdnError):
        imdn.parse(bad)


def test_deflate_raw_deflate_and_gzip_are_undone() -> None:
    text = b"my meetings"
    raw = zlib.compressobj(wbits=-15)
    assert decode(zlib.compress(text), ["deflate"]) == text
    assert decode(raw.compress(text) + raw.flush(), ["deflate"]) == text
    assert decode(gzip.compress(text), ["gzip"]) == text
    assert decode(text, ["identity"]) == text


def test_a_compression_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib.compress(b"\0" * (50 * 1024 * 1024))  # 50 MiB of zeros in ~50 KiB
    with pytest.raises(BodyTooLarge):
        decode(bomb, ["deflate"])
    assert len(decode(zlib.compress(b"a" * MAX_INFLATED), ["deflate"])) == MAX_INFLATED


def test_garbage_or_unknown_encodings_are_refused() -> None:
    with pytest.raises(BadEncoding):
        decode(b"not compressed", ["deflate"])
    with pytest.raises(BadEncoding):
        decode(b"x", ["br"])


def test_what_a_body_is() -> None:
    typing = read(
        "application/im-iscomposing+xml",
        [],
        b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>'
        b"</isComposing>",
    )
    assert typing.kind == "typing" and typing.text is None
    receipt = read("message/imdn+xml", ["deflate"], zlib.compress(DELIVERED))
    assert receipt.kind == "receipt" and receipt.receipt is not None
    wrapped = read(
        "message/cpim",
        [],
        b"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: m1\r\n"
        b"imdn.Disposition-Notification: display\r\n\r\n"
        b"Content-Type: text/plain\r\n\r\nmy meetings",
    )
    assert (wrapped.kind, wrapped.text, wrapped.message_id) == ("text", "my meetings", "m1")
    assert wrapped.wants == {"display"} and wrapped.in_cpim
    receipt_in_cpim = read(
        "message/cpim",
        [],
        b"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: r1\r\n\r\n"
        b"Content-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n" + DISPLAYED,
    )
    assert receipt_in_cpim.kind == "receipt" and receipt_in_cpim.text is None


def _cpim(content_type: str, content: bytes, *mime: str) -> bytes:
    head = b"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: m1\r\n\r\n"
    lines = [f"Content-Type: {content_type}", *mime]
    return head + "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + content


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("message/cpim", _cpim("text/plain; charset=base64", b"aGVscA=="), UnsupportedBody),
        ("message/cpim", _cpim("text/plain; charset=idna", b"help"), UnsupportedBody),
        ("message/cpim", _cpim("message/cpim", _cpim("text/plain", b"help")), UnsupportedBody),
        ("message/cpim", _cpim("text/plain", b"help", "Content-Encoding: br"), BadEncoding),
        ("message/cpim", b"\xff\xfe\r\nno header line\r\n\r\n", UnsupportedBody),
        (
            "message/cpim",
            _cpim("text/plain", zlib.compress(b" " * 70_000), "Content-Encoding: deflate"),
            BodyTooLarge,
        ),
        ("text/plain; charset=rot13", b"uryc", UnsupportedBody),
    ],
)
def test_undecodable_cpim_raises_only_the_documented_errors(
    content_type: str, body: bytes, error: type[Exception]
) -> None:
    """Issue 15 item 11: reading a body raises UnsupportedBody, BadEncoding or BodyTooLarge
    (415, 415, 413 at the service), never anything else."""
    with pytest.raises(error):
        read(content_type, [], body)


@pytest.mark.parametrize("encoding", ["base64", "idna", "undefined", "nosuch", "utf-16"])
def test_an_unreadable_receipt_is_nothing_to_act_on(encoding: str) -> None:
    """Issue 15 item 11: a receipt whose XML cannot be read is accepted and ignored."""
    document = DELIVERED.replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode())
    assert read("message/imdn+xml", [], document).kind == "other"
    assert read("message/cpim", [], _cpim("message/imdn+xml", document)).kind == "other"
