"""The c3p backend: C3P envelopes as MS-CONFPRO specifies them, and the whole UCMA surface -
list, schedule, show, cancel - against the focus-factory double over real SIP on loopback,
with failures and timeouts turned into replies a person understands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from defusedxml import ElementTree

from bot.conferencing import c3p
from bot.conferencing.c3p import C3pBackend
from bot.conferencing.services import ConferenceError, NewConference
from bot.config import Config
from bot.runtime import Runtime
from bot.sender import Sender
from bot.sip.transaction import TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.doubles.focus_factory import FocusFactory

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
NOW = datetime.now(UTC)

# MS-CONFPRO §4.7 (getAvailableMcuTypes), verbatim apart from line breaks
MCU_TYPES_RESPONSE = (
    b'<response C3PVersion="1" requestId="7" '
    b'from="sip:alice@contoso.com;gruu;opaque=app:conf:focusfactory" to="sip:alice@contoso.com" '
    b'code="success" xmlns="urn:ietf:params:xml:ns:cccp"> <getAvailableMcuTypes> <mcu-types> '
    b"<mcuType>audio-video</mcuType> <mcuType>chat</mcuType> <mcuType>meeting</mcuType> "
    b"<mcuType>phone-conf</mcuType> </mcu-types> </getAvailableMcuTypes> </response>"
)


def test_requests_follow_the_envelope_of_ms_confpro() -> None:
    factory, body = c3p.build_request(ALICE, c3p.get_conference("SDFBSD12"))
    assert factory == "sip:alice@contoso.com;gruu;opaque=app:conf:focusfactory"
    root = ElementTree.fromstring(body)
    assert root.tag == "{urn:ietf:params:xml:ns:cccp}request"
    assert root.get("C3PVersion") == "1" and root.get("requestId", "").isdigit()
    assert root.get("from") == "sip:alice@contoso.com" and root.get("to") == factory
    [command] = list(root)  # exactly one command child (§2.2.2)
    keys = command.find("{urn:ietf:params:xml:ns:cccp}conferenceKeys")
    assert keys is not None and keys.get(f"{{{c3p.MSCI}}}conference-id") == "SDFBSD12"


def test_responses_parse_including_the_specs_example() -> None:
    answer = c3p.parse_response(MCU_TYPES_RESPONSE)
    assert answer.code == "success" and answer.command is not None
    assert answer.command.tag.endswith("getAvailableMcuTypes")
    failure = c3p.parse_response(
        b'<response xmlns="urn:ietf:params:xml:ns:cccp" code="failure" '
        b'reason="conferenceDoesNotExist"><getConference/></response>'
    )
    assert (failure.code, failure.reason) == ("failure", "conferenceDoesNotExist")
    for bad in (b"<html/>", b"nonsense", b'<response xmlns="urn:ietf:params:xml:ns:cccp"/>'):
        with pytest.raises(c3p.C3pError):
            c3p.parse_response(bad)


def test_conference_info_is_read_wherever_it_is_and_whatever_else_is_there() -> None:
    body = (
        b'<response xmlns="urn:ietf:params:xml:ns:cccp" code="success"><getConferences>'
        b'<wrapper xmlns="urn:example:unknown"><x/>'
        b'<ci:conference-info xmlns:ci="urn:ietf:params:xml:ns:conference-info" '
        b'xmlns:msci="http://schemas.microsoft.com/rtc/2005/08/confinfoextensions" '
        b'xmlns:msci2="http://schemas.microsoft.com/rtc/2008/12/confinfoextensions" '
        b'entity="sip:alice@contoso.com;gruu;opaque=app:conf:focus:id:ABCD1234">'
        b"<ci:conference-description><ci:subject>Weekly sync</ci:subject>"
        b"<msci:conference-id>ABCD1234</msci:conference-id>"
        b"<msci:expiry-time>2030-01-01T00:00:00Z</msci:expiry-time>"
        b"<msci:admission-policy>closedAuthenticated</msci:admission-policy>"
        b"<msci2:something-new>yes</msci2:something-new>"
        b"</ci:conference-description></ci:conference-info>"
        b'<ci:conference-info xmlns:ci="urn:ietf:params:xml:ns:conference-info" entity=""/>'
        b"</wrapper></getConferences></response>"
    )
    answer = c3p.parse_response(body)
    assert answer.command is not None
    [conference] = c3p.conferences_in(answer.command, ALICE)
    assert conference.conference_id == "ABCD1234" and conference.subject == "Weekly sync"
    assert conference.access_level == "invited" and conference.start is None
    assert conference.uri.endswith("opaque=app:conf:focus:id:ABCD1234")
    assert conference.expiry == datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
async def backend() -> AsyncIterator[tuple[C3pBackend, FocusFactory]]:
    factory = FocusFactory()
    server = await factory.start(FAST)
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as endpoint:
        yield C3pBackend(endpoint, server, timeout=2.0), factory
    await factory.close()


def new(subject: str) -> NewConference:
    return NewConference(
        subject=subject, start=NOW + timedelta(days=1), duration=timedelta(hours=1)
    )


async def test_list_schedule_show_and_cancel_over_sip(
    backend: tuple[C3pBackend, FocusFactory],
) -> None:
    c3p_backend, factory = backend
    assert await c3p_backend.summaries(ALICE, NOW) == []
    made = await c3p_backend.schedule(ALICE, new("Budget review"))
    assert 8 <= len(made.conference_id) <= 32 and made.subject == "Budget review"
    assert made.uri == f"sip:{ALICE};gruu;opaque=app:conf:focus:id:{made.conference_id}"
    [listed] = await c3p_backend.summaries(ALICE, NOW)
    assert listed.conference_id == made.conference_id and listed.start == made.start
    shown = await c3p_backend.details(ALICE, made.conference_id)
    assert shown is not None and shown.subject == "Budget review"
    assert await c3p_backend.cancel(ALICE, made.conference_id)
    assert not await c3p_backend.cancel(ALICE, made.conference_id)  # already gone
    assert await c3p_backend.summaries(ALICE, NOW) == []
    assert [command for _, command in factory.requests] == [
        "getConferences", "addConference", "getConferences", "getConference",
        "deleteConference", "deleteConference", "getConferences",
    ]  # fmt: skip


async def test_one_organizer_never_sees_or_cancels_anothers(
    backend: tuple[C3pBackend, FocusFactory],
) -> None:
    c3p_backend, _ = backend
    bobs = await c3p_backend.schedule(BOB, new("Design review"))
    assert await c3p_backend.summaries(ALICE, NOW) == []
    assert await c3p_backend.details(ALICE, bobs.conference_id) is None
    assert not await c3p_backend.cancel(ALICE, bobs.conference_id)
    assert len(await c3p_backend.summaries(BOB, NOW)) == 1


async def test_failures_and_silence_become_sentences(
    backend: tuple[C3pBackend, FocusFactory],
) -> None:
    c3p_backend, factory = backend
    with pytest.raises(ConferenceError, match="refused: Failed authorization"):
        factory.trusted = set()  # the bot's address is no longer a trusted application
        await c3p_backend.summaries(ALICE, NOW)
    factory.trusted = {"127.0.0.1"}
    factory.silent = True
    with pytest.raises(ConferenceError, match="did not answer in time"):
        await c3p_backend.summaries(ALICE, NOW)


async def test_my_meetings_with_the_c3p_backend_through_user_endpoints(
    backend: tuple[C3pBackend, FocusFactory], tmp_path: Path
) -> None:
    _, factory = backend
    assert factory.endpoint is not None
    host, port = factory.endpoint.address()
    config = Config.model_validate(
        {
            "sip": {"domain": "contoso.com", "listen": [{"transport": "udp", "port": 0}]},
            "acl": {"allowed_domains": ["contoso.com"]},
            "conferences": {
                "backend": "c3p",
                "c3p": {"server": f"sip:{host}:{port}"},
                "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}",
            },
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        alice = await runtime.endpoints.get(Sender("alice", "contoso.com"))
        await alice.conferences.schedule(new("Quarterly review"))
        reply = await runtime.dispatcher.dispatch(Sender("alice", "contoso.com"), "my meetings")
        assert "Quarterly review" in reply
        assert "no upcoming conferences" in await runtime.dispatcher.dispatch(
            Sender("bob", "contoso.com"), "my meetings"
        )
    finally:
        await runtime.stop()
