"""announce / play as a chat: the reply when it is over, or why not; other senders answered
while an announcement plays. Calls, joins and sounds are the doubles of tests/announcements."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.announcements.service import Announcer
from bot.config import Config
from tests.announcements.doubles import FakeCalls, FakeJoiner, FakeSounds

from .chat import ChatBot, chat_bot

BOB = "sip:bob@example.test"


async def announcing(tmp_path: Path, config: Config | None = None) -> tuple[ChatBot, FakeCalls]:
    chat = await chat_bot(tmp_path, config)
    calls = FakeCalls()
    services = chat.dispatcher.services
    services.announcer = Announcer(FakeJoiner(calls), FakeSounds(), calls)  # type: ignore[misc]
    services.sounds = services.announcer.sounds  # type: ignore[misc]
    return chat, calls


async def test_announce_into_a_listed_conference_replies_when_done(tmp_path: Path) -> None:
    chat, calls = await announcing(tmp_path)
    try:
        await chat.say("alice", "my meetings")
        reply = await chat.say("alice", "announce 1 The review moves to room 4")
        assert reply == "Announced in 'Weekly sync' (2.6 s)."
        uri = "sip:alice@example.test;gruu;opaque=app:conf:focus:id:DEMO0001"
        assert calls.log == [
            f"joined {uri}",
            f"played speech:The review moves to room 4 to {uri}",
            f"left {uri}",
        ]
        assert (await chat.say("alice", "play DEMO0002 chime")).startswith(
            "Played 'chime' in 'Quarterly review' (1.5 s)."
        )
    finally:
        await chat.store.close()


async def test_an_admin_plays_a_clip_to_a_sip_uri(tmp_path: Path) -> None:
    chat, calls = await announcing(tmp_path)
    try:
        reply = await chat.say("alice", f"play {BOB} chime")
        assert reply == f"Played 'chime' to {BOB} (1.5 s)."
        assert calls.log == [f"called {BOB}", f"played clip:chime to {BOB}", f"hung up {BOB}"]
    finally:
        await chat.store.close()


async def test_why_not_in_a_sentence(tmp_path: Path) -> None:
    chat, calls = await announcing(tmp_path)
    calls.refuse[BOB] = f"{BOB} is busy."
    try:
        assert await chat.say("alice", f"announce {BOB} hello") == f"{BOB} is busy."
        assert (await chat.say("alice", f"play {BOB} fanfare")).startswith("There is no clip")
        assert (await chat.say("bob", "play sip:carol@example.test chime")).startswith(
            "Sorry, only administrators may name a SIP URI."
        )
        assert (await chat.say("bob", "announce 1 hello")).startswith(
            "Send 'my meetings' first to number your conferences. Usage: announce <number|"
        )
        assert (await chat.say("bob", "announce DEMO0001 hello")).startswith(
            "You have no conference 'DEMO0001'. Usage:"
        )
        assert "by its URI (sip:...;opaque=app:conf:focus" in await chat.say(
            "alice", "announce DEMO0003 hello"
        )
        assert (await chat.say("alice", "announce 1")).startswith(
            "Usage: announce <number|id|sip-uri> <text> (for example: announce 1 The review"
        )
        assert (await chat.say("alice", "announce sip:x@ hello")).startswith(
            "'sip:x@' is not a SIP URI I can call"
        )
        assert "at most 500 are spoken" in await chat.say("alice", f"announce {BOB} {'a' * 501}")
        assert calls.log == [f"called {BOB}"]  # the busy one: nobody else was called
    finally:
        await chat.store.close()


async def test_turned_off_or_not_set_up(tmp_path: Path) -> None:
    off = Config(features={"announce": False, "play": False})
    chat, _ = await announcing(tmp_path, off)
    try:
        assert await chat.say("alice", f"announce {BOB} hi") == "'announce' is turned off here."
        assert await chat.say("alice", f"play {BOB} chime") == "'play' is turned off here."
    finally:
        await chat.store.close()
    (tmp_path / "bare").mkdir()
    bare = await chat_bot(tmp_path / "bare")
    try:
        assert await bare.say("alice", f"play {BOB} chime") == (
            "Announcements are not set up on this bot."
        )
    finally:
        await bare.store.close()


async def test_others_are_answered_while_an_announcement_plays(tmp_path: Path) -> None:
    chat, calls = await announcing(tmp_path)
    calls.gate = asyncio.Event()
    try:
        await chat.say("alice", "my meetings")
        long = asyncio.ensure_future(chat.say("alice", "announce 1 a long one"))
        await asyncio.wait_for(calls.playing.wait(), 5)
        assert "Design review" in await asyncio.wait_for(chat.say("bob", "my meetings"), 5)
        assert (await chat.say("alice", "announce 1 again")).startswith(
            "An announcement is already playing in 'Weekly sync'"
        )
        assert not long.done()
        calls.gate.set()
        assert await asyncio.wait_for(long, 5) == "Announced in 'Weekly sync' (1.0 s)."
    finally:
        await chat.store.close()


async def test_help_lists_both(tmp_path: Path) -> None:
    chat, _ = await announcing(tmp_path)
    try:
        listing = await chat.say("bob", "help")
        assert "announce <number|id|sip-uri> <text> - Say a sentence" in listing
        assert "play <number|id|sip-uri> <clip> - Play a sound clip" in listing
        assert "name another organizer's conference by its\nURI." in await chat.say(
            "bob", "help announce"
        )
    finally:
        await chat.store.close()
