"""Dialogs (RFC 3261 §12): creation on both sides, route sets, refresh, CSeq, 481."""

from __future__ import annotations

from bot.sip import Headers, Request, Response, SipUri, make_response, parse_message, parse_uri
from bot.sip.dialog import Dialog, DialogTable
from bot.sip.headers import Via

VIA = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnew")


def invite() -> Request:
    return Request(
        "INVITE",
        parse_uri("sip:bob@example.test"),
        Headers.of(
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"),
            ("From", '"Alice" <sip:alice@example.test>;tag=a1'),
            ("To", "<sip:bob@example.test>"),
            ("Call-ID", "dlg-1"),
            ("CSeq", "10 INVITE"),
            ("Contact", "<sip:alice@192.0.2.1:5060>"),
            ("Record-Route", "<sip:p1.example.test;lr>, <sip:p2.example.test;lr>"),
        ),
    )


def ok(request: Request) -> Response:
    response = make_response(request, 200, to_tag="b1")
    response.headers.add("Contact", "<sip:bob@192.0.2.2:5070>")
    for value in request.headers.values("record-route"):
        response.headers.add("Record-Route", value)
    return response


def test_uac_dialog_reverses_record_route_and_builds_in_dialog_requests() -> None:
    request = invite()
    dialog = Dialog.as_uac(request, ok(request))
    assert dialog.id == ("dlg-1", "a1", "b1")
    assert dialog.route_set == ["<sip:p2.example.test;lr>", "<sip:p1.example.test;lr>"]
    bye = dialog.create_request("BYE", via=VIA)
    assert str(bye.uri) == "sip:bob@192.0.2.2:5070"  # the remote target
    assert bye.headers.values("route") == dialog.route_set
    assert bye.cseq.seq == 11 and bye.to.tag == "b1" and bye.from_.tag == "a1"
    ack = dialog.create_ack(10, via=VIA)
    assert ack.cseq.seq == 10 and ack.cseq.method == "ACK"
    assert dialog.create_request("INFO", via=VIA).cseq.seq == 12
    assert parse_message(bye.serialize()) == bye


def test_uas_dialog_keeps_record_route_order_and_remote_cseq() -> None:
    request = invite()
    dialog = Dialog.as_uas(request, "b1")
    assert dialog.id == ("dlg-1", "b1", "a1")
    assert dialog.route_set == ["<sip:p1.example.test;lr>", "<sip:p2.example.test;lr>"]
    assert dialog.remote_seq == 10
    assert dialog.local.tag == "b1" and dialog.remote.tag == "a1"
    bye = dialog.create_request("BYE", via=VIA)
    assert bye.from_.tag == "b1" and bye.to.tag == "a1"
    assert str(bye.uri) == "sip:alice@192.0.2.1:5060"


def test_strict_route_puts_the_remote_target_last() -> None:
    request = invite()
    request.headers.set("Record-Route", "<sip:strict.example.test>")
    dialog = Dialog.as_uas(request, "b1")
    bye = dialog.create_request("BYE", via=VIA)
    assert str(bye.uri) == "sip:strict.example.test"
    assert bye.headers.values("route") == ["<sip:alice@192.0.2.1:5060>"]


def in_dialog(method: str, seq: int, contact: str | None = None, to_tag: str = "b1") -> Request:
    headers = Headers.of(
        ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx"),
        ("From", "<sip:alice@example.test>;tag=a1"),
        ("To", f"<sip:bob@example.test>;tag={to_tag}"),
        ("Call-ID", "dlg-1"),
        ("CSeq", f"{seq} {method}"),
    )
    if contact:
        headers.add("Contact", contact)
    return Request(method, parse_uri("sip:bob@192.0.2.2:5070"), headers)


def test_table_routes_requests_refreshes_targets_and_refuses_old_cseq() -> None:
    table = DialogTable()
    dialog = Dialog.as_uas(invite(), "b1")
    table.add(dialog)
    found, error = table.route(in_dialog("INVITE", 11, "<sip:alice@192.0.2.99:5099>"))
    assert found is dialog and error is None
    assert isinstance(dialog.remote_target, SipUri) and dialog.remote_target.port == 5099
    found, error = table.route(in_dialog("INFO", 5))
    assert found is dialog and error is not None and error.status == 500
    _, error = table.route(in_dialog("BYE", 12, to_tag="nope"))
    assert error is not None and error.status == 481
    assert table.route(in_dialog("ACK", 12, to_tag="nope")) == (None, None)
    outside = in_dialog("MESSAGE", 1)
    outside.headers.set("To", "<sip:bob@example.test>")
    assert table.route(outside) == (None, None)


def test_subscribe_dialog_from_2xx_and_from_an_early_notify() -> None:
    subscribe = Request(
        "SUBSCRIBE",
        parse_uri("sip:conf@example.test"),
        Headers.of(
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs"),
            ("From", "<sip:bot@example.test>;tag=s1"),
            ("To", "<sip:conf@example.test>"),
            ("Call-ID", "sub-1"),
            ("CSeq", "1 SUBSCRIBE"),
            ("Event", "conference"),
            ("Contact", "<sip:bot@192.0.2.1>"),
        ),
    )
    accepted = make_response(subscribe, 202, to_tag="n1")
    accepted.headers.add("Contact", "<sip:focus@192.0.2.3>")
    dialog = Dialog.as_uac(subscribe, accepted)
    assert dialog.usage == "SUBSCRIBE" and dialog.id == ("sub-1", "s1", "n1")
    notify = Request(
        "NOTIFY",
        parse_uri("sip:bot@192.0.2.1"),
        Headers.of(
            ("Via", "SIP/2.0/UDP 192.0.2.3;branch=z9hG4bKn"),
            ("From", "<sip:conf@example.test>;tag=n1"),
            ("To", "<sip:bot@example.test>;tag=s1"),
            ("Call-ID", "sub-1"),
            ("CSeq", "1 NOTIFY"),
            ("Contact", "<sip:focus@192.0.2.3>"),
        ),
    )
    early = Dialog.from_notify(subscribe, notify)
    assert early.id == dialog.id and early.remote_seq == 1 and early.local_seq == 1


def test_2xx_to_a_re_invite_refreshes_the_remote_target() -> None:
    request = invite()
    dialog = Dialog.as_uac(request, ok(request))
    reinvite = dialog.create_request("INVITE", via=VIA)
    moved = make_response(reinvite, 200)
    moved.headers.add("Contact", "<sip:bob@192.0.2.77:5080>")
    dialog.receive_response(reinvite, moved)
    assert str(dialog.remote_target) == "sip:bob@192.0.2.77:5080"
    info = dialog.create_request("INFO", via=VIA)
    dialog.receive_response(info, make_response(info, 200))  # not a target refresh
    assert str(dialog.remote_target) == "sip:bob@192.0.2.77:5080"
