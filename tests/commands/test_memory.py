"""What the bot remembers of each sender is bounded in count and in time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.commands.memory import KEEP_SECONDS, MAX_SENDERS, SWEEP_EVERY, SenderMemory

from .chat import ChatBot, chat_bot


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[ChatBot]:
    chat = await chat_bot(tmp_path)
    yield chat
    await chat.store.close()


def test_sender_memory_is_capped_least_recently_used_first() -> None:
    """Issue 15 item 12: Dispatcher._memory grew by one entry per sender, forever."""
    memory = SenderMemory()
    memory.get("alice@x", 0.0)["listing"] = ["A"]
    for n in range(MAX_SENDERS):
        memory.get(f"user{n}@x", 1.0)
        if n == MAX_SENDERS // 2:
            memory.get("bob@x", 1.0)["listing"] = ["B"]
    assert len(memory) == MAX_SENDERS
    assert memory.peek("alice@x", 2.0) is None
    assert memory.peek("bob@x", 2.0) == {"listing": ["B"]}  # used after alice: still here
    memory.get("carol@x", 3.0)["listing"] = ["C"]
    memory.get("user9999@x", 3.0)
    assert memory.peek("carol@x", 3.0) == {"listing": ["C"]}


def test_sender_memory_expires_an_hour_after_the_last_command() -> None:
    memory = SenderMemory()
    memory.get("alice@x", 0.0)["listing"] = ["A"]
    memory.get("bob@x", 100.0)
    assert memory.get("alice@x", KEEP_SECONDS - 1) == {"listing": ["A"]}  # used: an hour more
    assert memory.peek("alice@x", 2 * KEEP_SECONDS - 2) == {"listing": ["A"]}
    assert memory.peek("bob@x", 100.0 + KEEP_SECONDS) is None
    assert len(memory) == 1
    assert memory.get("alice@x", 2 * KEEP_SECONDS) == {}
    assert len(memory) == 1


def test_an_expired_memory_is_never_handed_out_even_between_sweeps() -> None:
    """Expired entries are swept at most every SWEEP_EVERY seconds: one asked for in between
    is checked itself."""
    memory = SenderMemory()
    memory.get("alice@x", 0.0)["listing"] = ["A"]
    memory.get("bob@x", KEEP_SECONDS - SWEEP_EVERY / 2)  # a sweep: alice is not due yet
    due = KEEP_SECONDS + SWEEP_EVERY / 4  # alice is due, and no sweep since
    assert memory.peek("alice@x", due) is None
    assert memory.get("alice@x", due) == {}
    assert len(memory) == 2  # alice's memory is a new one, at the end
    assert memory.peek("bob@x", due) == {}


async def test_a_listing_is_forgotten_an_hour_later(bot: ChatBot) -> None:
    """Issue 15 item 12, seen from a chat: memory expires, and a thousand passers-by cost
    one entry each at most."""
    await bot.say("alice", "my meetings")
    assert (await bot.say("alice", "meeting 1")).startswith("Weekly sync")
    bot.clock.now += KEEP_SECONDS
    assert "Send 'my meetings' first" in await bot.say("alice", "meeting 1")
    for n in range(1_000):
        await bot.say(f"user{n}", "meeting 1")
    assert len(bot.dispatcher.memory) == 1_001
    bot.clock.now += KEEP_SECONDS
    await bot.say("alice", "help")
    assert len(bot.dispatcher.memory) == 1
