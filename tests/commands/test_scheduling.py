"""schedule, cancel (with 'yes'), and one user's conferences out of everyone else's reach."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.conferencing.endpoints import UserEndpoint, UserEndpointPool

from .chat import ChatServices, chat_bot


async def test_schedule_then_list_show_and_cancel_with_yes(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        done = await chat.say("alice", "schedule Budget review at tomorrow 14:00 for 45m")
        assert done.startswith("Scheduled: Budget review - ") and "for 45 min" in done
        listing = await chat.say("alice", "my meetings")
        assert "Budget review" in listing and "Your conferences (3)" in listing
        number = next(
            line.split(".")[0] for line in listing.splitlines() if "Budget review" in line
        )
        assert "Budget review" in await chat.say("alice", f"meeting {number}")
        ask = await chat.say("alice", f"cancel {number}")
        assert ask.startswith("Cancel 'Budget review'") and "Send 'yes'" in ask
        assert (await chat.say("alice", "yes")).startswith("Cancelled conference")
        assert "Budget review" not in await chat.say("alice", "my meetings")
    finally:
        await chat.store.close()


async def test_anything_but_yes_keeps_the_conference(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        await chat.say("alice", "my meetings")
        assert (await chat.say("alice", "cancel 1")).startswith("Cancel 'Weekly sync'")
        await chat.say("alice", "help")
        assert await chat.say("alice", "yes") == "There is nothing waiting for a 'yes'."
        assert "Weekly sync" in await chat.say("alice", "my meetings")
    finally:
        await chat.store.close()


async def test_alice_can_neither_see_nor_cancel_bobs_conference(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        # DEMO0003 is bob's "Design review"
        assert "no conference 'DEMO0003'" in await chat.say("alice", "meeting DEMO0003")
        assert "no conference 'DEMO0003'" in await chat.say("alice", "cancel DEMO0003")
        assert await chat.say("alice", "yes") == "There is nothing waiting for a 'yes'."
        assert "Design review" in await chat.say("bob", "my meetings")
    finally:
        await chat.store.close()


async def test_schedule_mistakes_get_the_usage_line(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        for text, hint in [
            ("schedule", "Usage: schedule <subject> [at <when>] [for <duration>]"),
            ("schedule Sync at someday", "'someday' is not a time"),
            ("schedule Sync at 25:00", "'25:00' is not a time of day"),
            ("schedule Sync for forever", "'forever' is not a duration"),
            ("schedule Sync at 2020-01-01T10:00", "That time has passed."),
        ]:
            reply = await chat.say("alice", text)
            assert hint in reply and "Usage: schedule" in reply, reply
    finally:
        await chat.store.close()


async def test_fifty_users_asking_at_once_get_fifty_endpoints(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    established: list[str] = []

    async def establish(endpoint: UserEndpoint) -> None:
        established.append(endpoint.user.address)
        await asyncio.sleep(0)  # let the others pile up behind it

    pool = UserEndpointPool(chat.store, establish=establish)
    chat.dispatcher.services.endpoints = pool
    try:
        users = ["alice", "bob", *(f"user{n}" for n in range(48))]
        replies = await asyncio.gather(*(chat.say(u, "my meetings") for u in users * 3))
        assert len(established) == 50 and len(pool) == 50
        assert sum("Weekly sync" in r for r in replies) == 3  # alice's, three times
        assert sum("Design review" in r for r in replies) == 3  # bob's, and nobody else's
        await chat.say("alice", "my meetings")
        assert len(established) == 50  # reused
    finally:
        await chat.store.close()


async def test_schedule_without_a_subject_gets_the_usage_line(tmp_path: Path) -> None:
    """Issue 14 item 6: 'schedule at 10:00' created a conference titled "at 10:00"."""
    chat = await chat_bot(tmp_path)
    try:
        for text in (
            "schedule at 10:00",
            "schedule at tomorrow 9:00 for 30m",
            "schedule for 1h",
            "schedule at",
        ):
            reply = await chat.say("alice", text)
            assert reply.startswith("Say what the conference is about"), reply
            assert "Usage: schedule <subject> [at <when>] [for <duration>]" in reply
        assert "Your conferences (2)" in await chat.say("alice", "my meetings")  # none made
        done = await chat.say("alice", "schedule At risk review at 10:00")  # a subject
        assert done.startswith("Scheduled: At risk review - ")
    finally:
        await chat.store.close()


async def test_no_after_cancel_says_the_conference_was_kept(tmp_path: Path) -> None:
    """Issue 14 item 6: 'no' was answered "I don't know 'no'"."""
    chat = await chat_bot(tmp_path)
    try:
        await chat.say("alice", "my meetings")
        assert (await chat.say("alice", "cancel 1")).startswith("Cancel 'Weekly sync'")
        assert await chat.say("alice", "No.") == (
            "Kept 'Weekly sync' (id DEMO0001): nothing was cancelled."
        )
        assert await chat.say("alice", "yes") == "There is nothing waiting for a 'yes'."
        assert await chat.say("alice", "no") == "There is nothing waiting for a 'no'."
        assert "Weekly sync" in await chat.say("alice", "my meetings")
    finally:
        await chat.store.close()


async def test_counts_say_one_conference_and_two_conferences(tmp_path: Path) -> None:
    """Issue 14 item 6: "Your last listing has 1 conferences"."""
    chat = await chat_bot(tmp_path)
    try:
        await chat.say("bob", "my meetings")  # bob organises one
        assert "Your last listing has 1 conference." in await chat.say("bob", "meeting 5")
        await chat.say("alice", "my meetings")
        assert "Your last listing has 2 conferences." in await chat.say("alice", "meeting 5")
    finally:
        await chat.store.close()


async def test_an_unknown_or_refused_message_drops_the_question_too(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        # a word no command has; a command refused (it takes nothing after it)
        for other in ("frobnicate", "my meetings please"):
            await chat.say("alice", "my meetings")
            assert (await chat.say("alice", "cancel 1")).startswith("Cancel 'Weekly sync'")
            await chat.say("alice", other)
            assert await chat.say("alice", "yes") == "There is nothing waiting for a 'yes'."
        assert "Weekly sync" in await chat.say("alice", "my meetings")
    finally:
        await chat.store.close()


async def test_a_new_time_zone_shows_in_the_next_listing(tmp_path: Path) -> None:
    """A listing's lines are kept (handlers.meetings), per time zone: a reload's new zone
    shows at once."""
    chat = await chat_bot(tmp_path)
    try:
        services = chat.dispatcher.services
        assert isinstance(services, ChatServices)
        services.zone = ZoneInfo("UTC")
        assert " UTC - " in await chat.say("alice", "my meetings")
        services.zone = ZoneInfo("Asia/Tokyo")
        listing = await chat.say("alice", "my meetings")
        assert " JST - " in listing and " UTC - " not in listing
    finally:
        await chat.store.close()
