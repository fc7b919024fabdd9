"""Who may announce into what: the sender's own conference, a SIP URI; announcements.who and
announcements.uris; refusals that say how to do it right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.announcements.targets import NotATarget, described, is_conference_uri, resolve
from bot.conferencing.models import Conference
from bot.config.announcing import AnnouncementsConfig
from bot.errors import Refusal
from bot.sender import Sender

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def conference(organizer: str, subject: str) -> Conference:
    return Conference(
        conference_id="C1",
        organizer=organizer,
        subject=subject,
        uri=f"sip:{organizer};gruu;opaque=app:conf:focus:id:C1",
        access_level="everyone",
        start=START,
        end=START + timedelta(hours=1),
        expiry=START + timedelta(days=14),
    )


SYNC = conference("bob@example.test", "Weekly sync")
CAROLS = conference("carol@example.test", "Carol's review")


async def target(word: str, *, admin: bool = False, found: Conference = SYNC, **acl: Any) -> Any:
    async def choose(_: str) -> Conference:
        return found

    return await resolve(
        word,
        sender=Sender("bob", "example.test"),
        is_admin=admin,
        settings=AnnouncementsConfig(**acl),
        choose=choose,
    )


async def test_a_number_or_id_is_the_conference_choose_finds() -> None:
    chosen = await target("1")
    assert chosen == SYNC and described(chosen) == "'Weekly sync'"


async def test_organizers_announce_only_into_their_own_unless_everyone_may() -> None:
    with pytest.raises(Refusal, match="only into conferences you organise"):
        await target("C1", found=CAROLS)
    assert await target("C1", found=CAROLS, who="everyone") == CAROLS
    assert await target("C1", found=CAROLS, admin=True) == CAROLS


async def test_who_admins_refuses_everyone_else_even_their_own() -> None:
    with pytest.raises(Refusal, match="^Sorry, only administrators may make announcements here"):
        await target("1", who="admins")
    with pytest.raises(Refusal, match="only administrators may make announcements"):
        await target("sip:carol@example.test", who="admins", uris="everyone")
    assert await target("1", who="admins", admin=True) == SYNC


async def test_sip_uris_are_for_admins_unless_configured_for_everyone() -> None:
    with pytest.raises(Refusal, match="only administrators may name a SIP URI. Name one of your"):
        await target("sip:carol@example.test")
    assert await target("sip:carol@example.test", admin=True) == "sip:carol@example.test"
    assert await target("SIP:carol@Example.TEST", uris="everyone") == "sip:carol@example.test"
    focus = "sip:carol@example.test;gruu;opaque=app:conf:focus:id:C1"
    assert await target(focus, admin=True) == focus and is_conference_uri(focus)
    assert not is_conference_uri("sip:carol@example.test")


async def test_a_malformed_uri_gets_an_example() -> None:
    for word in ("sip:", "sip:bob@example.test?subject=x", "sip:bob@exa%mple"):
        with pytest.raises(NotATarget, match=r"is not a SIP URI I can call \(e.g. sip:"):
            await target(word, admin=True)
