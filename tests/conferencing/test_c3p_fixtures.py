"""C3P answers as published (tests/data/c3p, sources in its README.md) reach the bot over SIP
from the focus-factory double and become the right conferences or the right sentences: empty
``entity``, summaries with and without conference ids, reasons on the command element."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.conferencing.c3p import C3pBackend
from bot.conferencing.models import Conference
from bot.conferencing.services import ConferenceError, NewConference
from bot.sip.transaction import TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.doubles.focus_factory import FocusFactory, Stored

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
DATA = Path(__file__).parent.parent / "data" / "c3p"
ALICE = "alice@contoso.com"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
FOCUS = f"sip:{ALICE};gruu;opaque=app:conf:focus:id:"
NEW = NewConference(subject="Planning", start=NOW, duration=timedelta(minutes=30))


@pytest.fixture
async def served() -> AsyncIterator[tuple[C3pBackend, FocusFactory]]:
    factory = FocusFactory()
    server = await factory.start(FAST)
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as endpoint:
        yield C3pBackend(endpoint, server, timeout=2.0), factory
    await factory.close()


def canned(factory: FocusFactory, command: str, name: str) -> None:
    factory.canned[command] = (DATA / name).read_bytes()


def shown(conference: Conference) -> tuple[str, str, str, str]:
    return conference.conference_id, conference.subject, conference.uri, conference.access_level


async def test_summaries_with_and_without_conference_ids(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, factory = served
    canned(factory, "getConferences", "get_conferences_with_ids.xml")
    assert [shown(c) for c in await backend.summaries(ALICE, NOW)] == [
        ("SDFBSD12", "Budget review", FOCUS + "SDFBSD12", "invited"),
    ]
    canned(factory, "getConferences", "get_conferences_without_ids.xml")
    assert [shown(c) for c in await backend.summaries(ALICE, NOW)] == [
        ("JL3GPNYP", "Weekly sync", FOCUS + "JL3GPNYP", "same-enterprise"),
        ("8386E6AEAAA41E4AA6627BA76D43B6D1", "(no subject)",
         FOCUS + "8386E6AEAAA41E4AA6627BA76D43B6D1", "locked"),
    ]  # fmt: skip


async def test_details_with_an_empty_entity(served: tuple[C3pBackend, FocusFactory]) -> None:
    backend, factory = served
    canned(factory, "getConference", "get_conference_entity_empty.xml")
    found = await backend.details(ALICE, "SDFBSD12")
    assert found is not None
    assert shown(found) == ("SDFBSD12", "Budget review", FOCUS + "SDFBSD12", "invited")
    assert found.expiry == datetime(2030, 6, 1, 17, tzinfo=UTC)


async def test_schedule_reads_the_new_focus_uri_and_the_mcu_types(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, factory = served
    canned(factory, "getAvailableMcuTypes", "get_available_mcu_types.xml")
    canned(factory, "addConference", "add_conference_success.xml")
    made = await backend.schedule(ALICE, NEW)
    assert made.uri == FOCUS + "8386E6AEAAA41E4AA6627BA76D43B6D1"
    add = factory.services[-1].body
    assert b'<msci:entity-view entity="chat"/><msci:entity-view entity="audio-video"/>' in add


async def test_cancel_with_the_ms_confbas_answer(served: tuple[C3pBackend, FocusFactory]) -> None:
    backend, factory = served
    canned(factory, "deleteConference", "delete_conference_success.xml")
    organizer = "alice@fabrikam.com"  # the MS-CONFBAS example's
    factory.conferences[organizer] = {"5D3747C": Stored("5D3747C", "", "anonymous", "", False, ())}
    assert await backend.cancel(organizer, "5D3747C")


async def test_does_not_exist_is_no_conference_not_an_error(
    served: tuple[C3pBackend, FocusFactory],
) -> None:
    backend, factory = served
    canned(factory, "getConference", "failure_get_conference_does_not_exist.xml")
    assert await backend.details(ALICE, "SDFBSD12") is None


async def test_failure_reasons_become_sentences(served: tuple[C3pBackend, FocusFactory]) -> None:
    backend, factory = served
    made = await backend.schedule(ALICE, NEW)
    canned(factory, "addConference", "failure_add_conference_maximum_exceeded.xml")
    canned(factory, "deleteConference", "failure_delete_conference_other.xml")
    with pytest.raises(ConferenceError) as refused:
        await backend.schedule(ALICE, NEW)
    assert str(refused.value) == (
        "You have as many conferences as the server allows; cancel one first."
    )
    with pytest.raises(ConferenceError) as failed:
        await backend.cancel(ALICE, made.conference_id)
    assert str(failed.value) == "The conference server could not cancel it (otherFailure)."
