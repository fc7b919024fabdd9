"""new_request: the one factory for requests outside a dialog (RFC 3261 §8.1.1)."""

from __future__ import annotations

from bot.sip import parse_uri
from bot.sip.headers import Address
from bot.sip.message import new_request, parse_message


def test_a_request_has_what_8_1_1_asks_and_parses_back() -> None:
    request = new_request(
        "MESSAGE",
        parse_uri("sip:alice@example.test"),
        from_="<sip:bot@example.test>",
        to="<sip:alice@example.test>",
        contact="<sip:bot@127.0.0.1:5060>",
        headers=[("Auto-Submitted", "auto-replied")],
        content_type="text/plain",
        body=b"hello",
    )
    request.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx")
    parsed = parse_message(request.serialize())
    assert parsed == request
    assert request.from_.tag is not None  # §8.1.1.3: a fresh From tag
    assert request.to.tag is None  # §8.1.1.2: no To tag outside a dialog
    assert request.cseq.seq == 1 and request.cseq.method == "MESSAGE"  # §8.1.1.5
    assert request.call_id.endswith("@sipbot") and len(request.call_id) > len("@sipbot") + 16
    assert request.headers.get("auto-submitted") == "auto-replied"
    assert request.content_type == "text/plain" and request.body == b"hello"


def test_each_request_gets_its_own_call_id_and_tag_unless_kept() -> None:
    uri = parse_uri("sip:example.test")
    one = new_request("OPTIONS", uri, from_="<sip:a@example.test>", to="<sip:a@example.test>")
    two = new_request("OPTIONS", uri, from_="<sip:a@example.test>", to="<sip:a@example.test>")
    assert one.call_id != two.call_id and one.from_.tag != two.from_.tag
    kept = new_request(
        "REGISTER", uri, from_="<sip:a@example.test>;tag=t1", to="<sip:a@x>", call_id="c", cseq=7
    )
    assert kept.call_id == "c" and kept.cseq.seq == 7 and kept.from_.tag == "t1"


def test_an_address_object_gets_a_tag_parameter() -> None:
    bot = Address(uri=parse_uri("sip:bot@example.test"), display_name="Bot")
    request = new_request("MESSAGE", parse_uri("sip:a@example.test"), from_=bot, to=bot)
    assert request.from_.uri == bot.uri and request.from_.display_name == "Bot"
    assert request.from_.tag is not None and request.to.tag is None
