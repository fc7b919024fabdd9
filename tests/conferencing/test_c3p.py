"""The c3p backend against the focus-factory double over real SIP on loopback: C3P as
MS-CONFPRO / MS-CONFBAS specify it and real Lync / SfB servers speak it (issue 20), and the
whole UCMA surface - list, schedule, show, cancel - with failures and timeouts turned into
replies a person understands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from defusedxml import ElementTree

from bot.cli import main
from bot.conferencing import c3p_wire
from bot.conferencing.c3p import C3pBackend
from bot.conferencing.c3p_read import C3pError, conferences_in, parse_response
from bot.conferencing.services import ConferenceError, NewConference
from bot.conferencing.store import ConferenceStore
from bot.config import Config
from bot.runtime import Runtime
from bot.sender import Sender
from bot.sip import Response
from bot.sip.headers import Address
from bot.sip.message import new_request
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.uri import parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.doubles.focus_factory import FocusFactory

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
NOW = datetime.now(UTC)
CCCP, CI, MSCI = c3p_wire.CCCP, c3p_wire.CONFERENCE_INFO, c3p_wire.MSCI


def test_requests_follow_the_envelope_of_ms_confpro() -> None:
    factory, body = c3p_wire.build_request(ALICE, c3p_wire.get_conference("SDFBSD12"))
    assert factory == "sip:alice@contoso.com;gruu;opaque=app:conf:focusfactory"
    assert f'xmlns:mscp="{c3p_wire.MSCP}"'.encode() in body  # as pidgin-sipe sends it
    root = ElementTree.fromstring(body)
    assert root.tag == f"{{{CCCP}}}request"
    assert root.get("C3PVersion") == "1" and root.get("requestId", "").isdigit()
    assert root.get("from") == "sip:alice@contoso.com" and root.get("to") == factory
    [command] = list(root)  # exactly one command child (§2.2.2)
    keys = command.find(f"{{{CCCP}}}conferenceKeys")
    assert keys is not None and keys.get(f"{{{MSCI}}}conference-id") == "SDFBSD12"


def test_a_failure_reason_is_read_from_the_command_element() -> None:
    """MS-CONFPRO §3.1.5.3: "reading the reason attribute from the addConference element"."""
    failure = parse_response(
        b'<response xmlns="urn:ietf:params:xml:ns:cccp" requestId="3" code="failure">'
        b'<getConference reason="conferenceDoesNotExist"/></response>'
    )
    assert (failure.code, failure.reason) == ("failure", "conferenceDoesNotExist")
    for bad in (b"<html/>", b"nonsense", b'<response xmlns="urn:ietf:params:xml:ns:cccp"/>'):
        with pytest.raises(C3pError):
            parse_response(bad)


def test_conference_info_is_read_wherever_it_is_and_whatever_else_is_there() -> None:
    body = (
        b'<response xmlns="urn:ietf:params:xml:ns:cccp" code="success"><getConferences>'
        b'<wrapper xmlns="urn:example:unknown"><x/>'
        b'<ci:conference-info xmlns:ci="urn:ietf:params:xml:ns:conference-info" '
        b'xmlns:msci="http://schemas.microsoft.com/rtc/2005/08/confinfoextensions" '
        b'xmlns:msci2="http://schemas.microsoft.com/rtc/2008/12/confinfoextensions" '
        b'entity="sip:alice@contoso.com;gruu;opaque=app:conf:focus:id:ABCD1234">'
        b"<ci:conference-description><ci:subject>Weekly sync</ci:subject>"
        b"<msci:expiry-time>2030-01-01T00:00:00</msci:expiry-time>"
        b"<msci:admission-policy>closedAuthenticated</msci:admission-policy>"
        b"<msci2:something-new>yes</msci2:something-new>"
        b"</ci:conference-description></ci:conference-info>"
        b'<ci:conference-info xmlns:ci="urn:ietf:params:xml:ns:conference-info" entity=""/>'
        b"</wrapper></getConferences></response>"
    )
    answer = parse_response(body)
    assert answer.command is not None
    # no msci:conference-id: it comes from the focus URI; the empty entry has neither
    [conference] = conferences_in(answer.command, ALICE)
    assert conference.conference_id == "ABCD1234" and conference.subject == "Weekly sync"
    assert conference.access_level == "invited" and conference.start is None
    assert conference.expiry == datetime(2030, 1, 1, tzinfo=UTC)  # no zone written: UTC


@pytest.fixture
async def served() -> AsyncIterator[tuple[C3pBackend, FocusFactory]]:
    factory = FocusFactory()
    server = await factory.start(FAST)
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as endpoint:
        yield C3pBackend(endpoint, server, timeout=2.0), factory
    await factory.close()


def new(subject: str, access_level: str = "everyone") -> NewConference:
    return NewConference(
        subject=subject,
        start=NOW + timedelta(days=1),
        duration=timedelta(hours=1),
        access_level=access_level,
    )


async def test_list_schedule_show_and_cancel_over_sip(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, factory = served
    assert await backend.summaries(ALICE, NOW) == []
    made = await backend.schedule(ALICE, new("Budget review"))
    assert 8 <= len(made.conference_id) <= 32 and made.subject == "Budget review"
    assert made.uri == f"sip:{ALICE};gruu;opaque=app:conf:focus:id:{made.conference_id}"
    [listed] = await backend.summaries(ALICE, NOW)  # a summary without msci:conference-id
    assert (listed.conference_id, listed.uri, listed.subject) == (
        made.conference_id, made.uri, "Budget review"
    )  # fmt: skip
    assert (listed.start, listed.end) == (made.start, made.end)  # kept by the bot
    shown = await backend.details(ALICE, made.conference_id)  # entity="" (§4.5)
    assert shown is not None and shown.subject == "Budget review" and shown.uri == made.uri
    assert shown.start == made.start
    assert await backend.cancel(ALICE, made.conference_id)
    assert not await backend.cancel(ALICE, made.conference_id)  # already gone
    assert await backend.summaries(ALICE, NOW) == []
    assert await backend.details(ALICE, made.conference_id) is None
    assert [command for _, command in factory.requests] == [
        "getConferences", "getAvailableMcuTypes", "addConference", "getConferences",
        "getConference", "deleteConference", "getConferences", "getConference",
    ]  # fmt: skip


async def test_add_conference_sends_only_what_the_schema_has_and_views_for_the_mcus(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    """Items 2 and 3: no start or end time; a conference-view with chat and audio-video,
    from the MCU types the server lists (asked once)."""
    backend, factory = served
    await backend.schedule(ALICE, new("One"))
    await backend.schedule(ALICE, new("Two"))
    [add, _] = [r for r in factory.services if b"<addConference>" in r.body]
    info = ElementTree.fromstring(add.body).find(f".//{{{CI}}}conference-info")
    assert info is not None and info.get("entity") == ""
    names = {e.tag.rpartition("}")[2] for e in info.iter()}
    assert not names & {"start-time", "end-time"}
    views = [v.get("entity") for v in info.iter(f"{{{MSCI}}}entity-view")]
    assert views == ["chat", "audio-video"]
    commands = [command for _, command in factory.requests]
    assert commands.count("getAvailableMcuTypes") == 1


async def test_only_the_mcus_the_server_has_get_views(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, factory = served
    factory.mcu_types = ("chat", "meeting")
    await backend.schedule(ALICE, new("Chat only"))
    [stored] = factory.conferences[ALICE].values()
    assert stored.mcus == ("chat",)


async def test_access_levels_map_to_admission_policies_and_lock(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    """Item 4: UCMA's three policies; "locked" is conference-state/locked on a closed one."""
    backend, factory = served
    for level in ("everyone", "same-enterprise", "invited", "locked"):
        made = await backend.schedule(ALICE, new(level, level))
        shown = await backend.details(ALICE, made.conference_id)
        assert shown is not None and shown.access_level == level
    policies = {(c.policy, c.locked) for c in factory.conferences[ALICE].values()}
    assert policies == {
        ("anonymous", False), ("openAuthenticated", False),
        ("closedAuthenticated", False), ("closedAuthenticated", True),
    }  # fmt: skip


async def test_the_bots_schedule_outlives_the_backend_in_the_store(
    served: tuple[C3pBackend, FocusFactory], tmp_path: Path
) -> None:
    """Item 2: start and end live in the bot's store, keyed by organizer and id."""
    backend, _ = served
    store = ConferenceStore(f"sqlite+aiosqlite:///{tmp_path / 'db'}")
    await store.open()
    try:
        first = C3pBackend(backend.endpoint, backend.server, timeout=2.0, schedules=store)
        made = await first.schedule(ALICE, new("Kept"))
        again = C3pBackend(backend.endpoint, backend.server, timeout=2.0, schedules=store)
        [listed] = await again.summaries(ALICE, NOW)
        assert (listed.start, listed.end) == (made.start, made.end)
        assert await store.schedules_of(BOB) == {}
        assert await again.cancel(ALICE, made.conference_id)
        assert await store.schedules_of(ALICE) == {}
    finally:
        await store.close()


async def test_cancel_goes_to_the_focus_keyed_by_its_uri(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    """Item 6: MS-CONFBAS §2.2.3.14, deleteConference to the focus with confEntity."""
    backend, factory = served
    made = await backend.schedule(ALICE, new("Gone soon"))
    assert await backend.cancel(ALICE, made.conference_id)
    delete = factory.services[-1]
    assert str(delete.uri) == made.uri
    assert str(Address.parse(delete.headers.get("to") or "").uri) == made.uri
    keys = ElementTree.fromstring(delete.body).find(f".//{{{CCCP}}}conferenceKeys")
    assert keys is not None and keys.get("confEntity") == made.uri


async def test_requests_carry_what_pidgin_sipe_sends(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    """Item 8: Supported: ms-sender, a Contact, ;epid= on From (and xmlns:mscp, above)."""
    backend, factory = served
    await backend.summaries(ALICE, NOW)
    [request] = factory.services
    assert "ms-sender" in (request.headers.get("supported") or "")
    assert request.headers.get("contact")
    sender = Address.parse(request.headers.get("from") or "")
    assert dict(sender.params).get("epid") == backend.epid and sender.tag


async def test_one_organizer_never_sees_or_cancels_anothers(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, _ = served
    bobs = await backend.schedule(BOB, new("Design review"))
    assert await backend.summaries(ALICE, NOW) == []
    assert await backend.details(ALICE, bobs.conference_id) is None
    assert not await backend.cancel(ALICE, bobs.conference_id)
    assert len(await backend.summaries(BOB, NOW)) == 1


async def test_failures_and_silence_become_sentences(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, factory = served
    factory.trusted = set()  # the bot's address is no longer a trusted application
    with pytest.raises(ConferenceError) as refused:
        await backend.summaries(ALICE, NOW)
    assert str(refused.value) == (
        "The conference server refused: Failed authorization. I could not list your conferences."
    )
    factory.trusted = {"127.0.0.1"}
    factory.canned["getAvailableMcuTypes"] = (
        b'<response xmlns="urn:ietf:params:xml:ns:cccp" code="success"><getAvailableMcuTypes>'
        b"<mcu-types><mcuType>pinball</mcuType></mcu-types></getAvailableMcuTypes></response>"
    )
    made = await backend.schedule(ALICE, new("No MCU asked for"))  # no views: none wanted
    assert made.subject == "No MCU asked for"
    factory.silent = True
    with pytest.raises(ConferenceError, match="did not answer in time"):
        await backend.summaries(ALICE, NOW)


async def send(
    backend: C3pBackend, server: Peer, organizer: str, command: str, to: str | None = None
) -> Response:
    """One C3P SERVICE as a trusted application sends it, with any ``command``."""
    target, body = c3p_wire.build_request(organizer, command, to)
    request = new_request(
        "SERVICE",
        parse_uri(target),
        from_=f"<sip:{organizer}>",
        to=f"<{target}>",
        content_type=c3p_wire.CONTENT_TYPE,
        body=body,
        headers=(("P-Asserted-Identity", f"<sip:{organizer}>"),),
    )
    return await backend.endpoint.request(request, destination=server)


ADD = (
    '<addConference><ci:conference-info xmlns:ci="urn:ietf:params:xml:ns:conference-info" '
    'entity=""><ci:conference-description><ci:subject>S</ci:subject>'
    "<msci:conference-id>ABCDEFGH12</msci:conference-id>"
    "<msci:expiry-time>2030-01-01T00:00:00Z</msci:expiry-time>"
    "<msci:admission-policy>{policy}</msci:admission-policy>{extra}"
    "</ci:conference-description></ci:conference-info></addConference>"
)


@pytest.mark.parametrize(
    "extra",
    [
        "<msci:start-time>2030-01-01T00:00:00Z</msci:start-time>",  # what the bot sent before
        "<msci:end-time>2030-01-01T01:00:00Z</msci:end-time>",
        "<ci:conference-id>X</ci:conference-id>",  # right name, wrong namespace
    ],
)
async def test_the_double_refuses_what_the_schema_does_not_have(
    served: tuple[C3pBackend, FocusFactory], extra: str
) -> None:
    backend, factory = served
    response = await send(
        backend, backend.server, ALICE, ADD.format(policy="anonymous", extra=extra)
    )
    assert response.status == 400
    assert (response.headers.get("ms-diagnostics") or "").startswith("3006;")
    assert factory.conferences.get(ALICE, {}) == {}


async def test_the_double_puts_reasons_on_the_command_element(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, _ = served
    response = await send(backend, backend.server, ALICE, ADD.format(policy="locked", extra=""))
    root = ElementTree.fromstring(response.body)
    [command] = list(root)
    assert (root.get("code"), root.get("reason")) == ("failure", None)
    assert command.get("reason") == "invalidAdmissionPolicy"


async def test_the_double_refuses_a_focus_key_that_is_not_the_focus(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, factory = served
    made = await backend.schedule(ALICE, new("Mine"))
    other = c3p_wire.focus_uri(ALICE, "OTHER123")
    response = await send(
        backend, backend.server, ALICE, c3p_wire.delete_conference(other), to=made.uri
    )
    assert (response.headers.get("ms-diagnostics") or "").startswith("3003;")
    assert made.conference_id in factory.conferences[ALICE]
    missing = await send(
        backend, backend.server, ALICE, c3p_wire.delete_conference(other), to=other
    )
    assert missing.status == 404


async def test_my_meetings_with_the_c3p_backend_through_user_endpoints(
    served: tuple[C3pBackend, FocusFactory], tmp_path: Path
) -> None:
    _, factory = served
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


REGISTERED_C3P = """\
sip: {{domain: contoso.com}}
conferences:
  backend: c3p
  c3p: {{server: "sip:192.0.2.1:5061;transport=tls"{digest}}}
  endpoints: {{mode: registered, credentials: {{alice: secret}}}}
"""


def test_check_config_refuses_registered_endpoints_with_a_lync_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 7: Lync / SfB never take Digest (MS-SIPAE); registered mode needs c3p.digest."""
    path = tmp_path / "config.yaml"
    path.write_text(REGISTERED_C3P.format(digest=""), encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"{path}:4: conferences.c3p.digest:" in error and "Digest" in error
    path.write_text(REGISTERED_C3P.format(digest=", digest: true"), encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 0
