"""schedule, cancel (with 'yes'), and one user's conferences out of everyone else's reach."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.conferencing.endpoints import UserEndpoint, UserEndpointPool

from .chat import chat_bot


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
