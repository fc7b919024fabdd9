"""The C3P addUser of a Lync focus join (MS-CONFBAS §2.2.3.4; pidgin-sipe sipe-conf.c)."""

from __future__ import annotations

import re

import pytest
from defusedxml import ElementTree

from bot.conferencing.c3p_join import AddUser, AddUserError, new_endpoint, parse_add_user_response

FOCUS = "sip:alice@contoso.com;gruu;opaque=app:conf:focus:id:JL3GPNYP"
BOT = "sip:bot@contoso.com"
CCCP = "{urn:ietf:params:xml:ns:cccp}"
CI = "{urn:ietf:params:xml:ns:conference-info}"
MSCI = "{http://schemas.microsoft.com/rtc/2005/08/confinfoextensions}"


def request(**overrides: object) -> AddUser:
    fields: dict[str, object] = {
        "focus": FOCUS,
        "user": BOT,
        "request_id": 7,
        "endpoint": "{0E1F7A3C-9F2B-4C1D-8E5A-1234567890AB}",
    }
    fields.update(overrides)
    return AddUser(**fields)  # type: ignore[arg-type]


def response(code: str = "success", inner: str = "", request_id: str = "7", **attrs: str) -> bytes:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return (
        '<?xml version="1.0"?><response xmlns="urn:ietf:params:xml:ns:cccp" '
        'xmlns:ci="urn:ietf:params:xml:ns:conference-info" '
        'xmlns:msci="http://schemas.microsoft.com/rtc/2005/08/confinfoextensions" '
        f'C3PVersion="1" requestId="{request_id}" from="{FOCUS}" to="{BOT}" code="{code}">'
        f"<addUser{extra}>{inner}</addUser></response>"
    ).encode()


def granted_user(role: str, status: str = "connected") -> str:
    return (
        f'<conferenceKeys confEntity="{FOCUS}"/><ci:user entity="{BOT}">'
        f"<ci:roles><ci:entry>{role}</ci:entry></ci:roles>"
        '<ci:endpoint entity="{0E1F7A3C-9F2B-4C1D-8E5A-1234567890AB}">'
        f"<ci:status>{status}</ci:status></ci:endpoint></ci:user>"
    )


def test_the_request_is_the_one_pidgin_sipe_sends_with_clientinfo() -> None:
    sent = request().body()
    root = ElementTree.fromstring(sent)
    assert root.tag == f"{CCCP}request"
    assert (root.get("C3PVersion"), root.get("to"), root.get("from"), root.get("requestId")) == (
        "1",
        FOCUS,
        BOT,
        "7",
    )
    (command,) = list(root)
    assert command.tag == f"{CCCP}addUser"
    assert command.find(f"{CCCP}conferenceKeys").get("confEntity") == FOCUS  # type: ignore[union-attr]
    user = command.find(f"{CI}user")
    assert user is not None and user.get("entity") == BOT
    assert [e.text for e in user.iterfind(f"{CI}roles/{CI}entry")] == ["attendee"]
    endpoint = user.find(f"{CI}endpoint")
    assert endpoint is not None
    # the entity keeps its literal braces (LYNC.md §2.6)
    assert endpoint.get("entity") == "{0E1F7A3C-9F2B-4C1D-8E5A-1234567890AB}"
    assert endpoint.findtext(f"{MSCI}clientInfo/{MSCI}lobby-capable") == "true"


def test_fresh_endpoints_are_braced_guids() -> None:
    first, second = new_endpoint(), new_endpoint()
    assert first != second
    assert re.fullmatch(r"\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", first)


def test_uris_with_xml_specials_are_escaped() -> None:
    odd = 'sip:o"brien&co@contoso.com'
    root = ElementTree.fromstring(request(user=odd).body())
    assert root.get("from") == odd
    assert root.find(f"{CCCP}addUser/{CI}user").get("entity") == odd  # type: ignore[union-attr]


def test_the_granted_role_is_read_back_even_when_it_differs() -> None:
    granted = parse_add_user_response(response(inner=granted_user("presenter")), request())
    assert granted.success and granted.roles == ("presenter",) and not granted.in_lobby


def test_a_pending_endpoint_is_in_the_lobby() -> None:
    granted = parse_add_user_response(
        response(inner=granted_user("attendee", "pending")), request()
    )
    assert granted.success and granted.in_lobby


def test_a_failure_names_its_reason() -> None:
    granted = parse_add_user_response(
        response("failure", reason="conferenceDoesNotExist"), request()
    )
    assert not granted.success and granted.reason == "conferenceDoesNotExist"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<response", "not XML"),
        (b'<request xmlns="urn:ietf:params:xml:ns:cccp"/>', "not a C3P response"),
        (response(request_id="8"), "not ours"),
        (response(code="maybe"), "code"),
        (b"x" * 70_000, "bytes"),
    ],
)
def test_what_is_not_an_adduser_response_is_an_error(body: bytes, why: str) -> None:
    with pytest.raises(AddUserError, match=why):
        parse_add_user_response(body, request())
