"""Issue 19 item 1: a dialog writes From and To of its requests once, and writes them again
when its local or remote address is replaced (RFC 3261 §12.2.1.1)."""

from __future__ import annotations

from bot.sip import Address
from bot.sip.dialog import Dialog
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
