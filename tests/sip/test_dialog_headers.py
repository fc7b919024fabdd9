"""Issue 19 item 1: a dialog writes From and To of its requests once, and writes them again
when its local or remote address is replaced (RFC 3261 §12.2.1.1)."""

from __future__ import annotations

from bot.sip import Address
from bot.sip.dialog import Dialog
from bot.sip.headers import Headers, Via
from tests.sip.test_dialog import invite, ok


def test_from_and_to_follow_a_replaced_address() -> None:
    request = invite()
    dialog = Dialog.as_uac(request, ok(request))
    first = dialog.create_request("MESSAGE")
    assert first.headers.get("from") == '"Alice" <sip:alice@example.test>;tag=a1'
    assert first.headers.get("to") == "<sip:bob@example.test>;tag=b1"
    assert dialog.create_request("MESSAGE").headers.get("to") == "<sip:bob@example.test>;tag=b1"
    dialog.remote = Address.parse('"Bob" <sip:bob@example.test>;tag=b1')
    dialog.local = Address.parse("<sip:alice@example.test>;tag=a1")
    later = dialog.create_request("MESSAGE")
    assert later.headers.get("to") == '"Bob" <sip:bob@example.test>;tag=b1'
    assert later.headers.get("from") == "<sip:alice@example.test>;tag=a1"


def test_every_row_of_a_dialog_request_is_keyed_as_the_header_names_are() -> None:
    """The rows a dialog writes with their keys (issue 19: no look-up per name) read as the
    same request written name by name, through every header a request of a dialog can have."""
    request = invite()
    dialog = Dialog.as_uac(request, ok(request))
    dialog.route_set = ["<sip:proxy.example.test;lr>"]
    built = dialog.create_request(
        "INVITE",
        via=Via(transport="UDP", host="192.0.2.1", port=5060, params=(("branch", "z9hG4bK1"),)),
        contact=Address.parse("<sip:alice@192.0.2.1>"),
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    written = Headers.of(*built.headers)
    assert [name for name, _ in built.headers] == [
        "Via", "Max-Forwards", "Route", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type"
    ]  # fmt: skip
    assert built.headers == written and built.headers.first_values() == written.first_values()
    assert built.cseq.seq == dialog.local_seq and built.via.branch == "z9hG4bK1"
    assert built.content_type == "application/sdp" and built.headers.get("max-forwards") == "70"
