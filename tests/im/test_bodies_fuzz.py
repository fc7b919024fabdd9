"""Property tests (hypothesis) over what an IM body may hold: reading it raises only the
documented errors, whatever the bytes (issue 15, fuzzing of CPIM/IMDN and HTML to text)."""

from __future__ import annotations

import codecs
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.im import cpim, imdn
from bot.im.bodies import UnsupportedBody, text_of
from bot.im.content import read
from bot.im.encoding import BadEncoding, BodyTooLarge
from bot.im.htmltext import html_to_text

MEDIA = [
    "text/plain",
    "text/html",
    "multipart/alternative",
    "multipart/mixed",
    "message/cpim",
    "message/imdn+xml",
    "application/im-iscomposing+xml",
    "image/png",
]
CHARSETS = [
    "utf-8",
    "iso-8859-1",
    "utf-16",
    "utf-7",
    "shift_jis",
    "base64",
    "rot13",
    "zlib",
    "idna",
    "punycode",
    "unicode_escape",
    "raw_unicode_escape",
    "undefined",
    "nosuch",
    "\udcff",
    "",
]
HTML = st.text(alphabet="<>!?/-=\"' abc&;#x0123[]\n\u00e9\U0001f389", max_size=400)
content_types = st.builds(
    lambda media, charset, boundary: f"{media}; charset={charset}; boundary={boundary}",
    st.sampled_from(MEDIA),
    st.sampled_from(CHARSETS),
    st.sampled_from(["b1", '"b1"', "", "\udcff"]),
)


def multipart(parts: list[tuple[str, bytes]]) -> bytes:
    return b"".join(
        b"--b1\r\nContent-Type: " + kind.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body
        + b"\r\n" for kind, body in parts
    ) + b"--b1--\r\n"  # fmt: skip


bodies = st.one_of(
    st.binary(max_size=400),
    HTML.map(lambda text: text.encode("utf-8")),
    st.lists(st.tuples(content_types, st.binary(max_size=60)), max_size=4).map(multipart),
)


@given(HTML)
@settings(max_examples=400)
def test_html_to_text_never_raises_nor_grows(markup: str) -> None:
    text = html_to_text(markup)
    assert len(text) <= len(markup)  # entities and markup only ever shrink


@given(st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=200))
@settings(max_examples=200)
def test_text_without_markup_is_kept_as_it_is(plain: str) -> None:
    assert html_to_text(plain) == plain.strip()


@given(st.lists(st.sampled_from(["<a", "<!--", "<![", "</", "<b>", '="', "'", "&amp;", "x"])))
@settings(max_examples=100)
def test_html_made_of_hostile_pieces_converts_fast(pieces: list[str]) -> None:
    markup = "".join(pieces) * (60_000 // max(1, len("".join(pieces))))
    started = time.perf_counter()
    html_to_text(markup)
    assert time.perf_counter() - started < 0.5


@given(content_types, bodies)
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_text_of_raises_only_unsupported_body(content_type: str, body: bytes) -> None:
    try:
        text = text_of(content_type, body)
    except UnsupportedBody:
        return
    assert text is None or isinstance(text, str)


@given(
    content_types,
    st.lists(st.sampled_from(["deflate", "gzip", "identity", "br", " "]), max_size=2),
    bodies,
)
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
def test_reading_a_body_raises_only_the_documented_errors(
    content_type: str, encodings: list[str], body: bytes
) -> None:
    try:
        read(content_type, encodings, body)
    except (UnsupportedBody, BadEncoding, BodyTooLarge):
        pass


@given(st.binary(max_size=400), content_types, bodies)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_cpim_wrapping_anything_raises_only_the_documented_errors(
    headers: bytes, content_type: str, body: bytes
) -> None:
    wrapped = (
        b"NS: imdn <urn:ietf:params:imdn>\r\n" + headers + b"\r\n\r\nContent-Type: "
        + content_type.encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body
    )  # fmt: skip
    try:
        cpim.parse(wrapped)
    except cpim.CpimError:
        pass
    try:
        read("message/cpim", [], wrapped)
    except (UnsupportedBody, BadEncoding, BodyTooLarge):
        pass


# expat decodes with the codec the declaration names: unicode_escape warns about "\]"
@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
@given(
    st.sampled_from([c for c in CHARSETS if c and c.isascii()] + ["UTF-8", "latin1"]),
    st.binary(max_size=200),
)
@settings(max_examples=300)
def test_imdn_raises_only_imdn_error(encoding: str, tail: bytes) -> None:
    document = (
        f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
        + b'<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>'
        + tail
        + b"</message-id><delivery-notification><status><delivered/></status>"
        b"</delivery-notification></imdn>"
    )
    try:
        parsed = imdn.parse(document)
    except imdn.ImdnError:
        return
    assert parsed.kind == "delivery" and parsed.status == "delivered"
    codecs.lookup(encoding)  # only a real encoding got this far
