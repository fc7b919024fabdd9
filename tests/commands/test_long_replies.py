"""Every IM a person reads fits one message any client takes: long listings come a page at a
time ('more'), and any other reply too long is paged the same way (issue 14 item 14)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.commands.context import CommandContext
from bot.commands.registry import Registry, command
from bot.commands.replies import MAX_KEPT_BYTES, MAX_REPLY_BYTES, Paged, size
from bot.conferencing.services import NewConference
from bot.runtime import load_handlers

from .chat import ChatBot, chat_bot

LINE = re.compile(r"^(\d+)\. ", re.MULTILINE)


def subject(n: int) -> str:
    """Ordinary subjects, some long, some in scripts of 2-4 UTF-8 bytes a character."""
    if n % 10 == 3:
        return "Überprüfung der Quartalszahlen für Ägypten " * 20  # absurdly long
    if n % 10 == 7:
        return "週次定例会議 " + "🎉" * 30
    return f"Sync {n:02d}"


async def read_all(chat: ChatBot, text: str) -> list[str]:
    """Send ``text``, then 'more' while the bot offers more (a second apart, as a person)."""
    pages = [await chat.say("alice", text)]
    while "send 'more'" in pages[-1]:
        chat.clock.now += 1.0
        pages.append(await chat.say("alice", "more"))
    return pages


@pytest.fixture
async def busy(tmp_path: Path) -> AsyncIterator[ChatBot]:
    """alice with the 2 demo conferences and 38 more, one an hour from tomorrow."""
    chat = await chat_bot(tmp_path)
    start = datetime.now(UTC) + timedelta(days=10)
    for n in range(38):
        new = NewConference(
            subject=subject(n), start=start + timedelta(hours=n), duration=timedelta(hours=1)
        )
        await chat.store.schedule("alice@example.test", new)
    yield chat
    await chat.store.close()


async def test_forty_conferences_come_in_pages_under_the_byte_budget(busy: ChatBot) -> None:
    pages = await read_all(busy, "my meetings")
    assert len(pages) > 3
    assert all(size(page) <= MAX_REPLY_BYTES for page in pages), [size(p) for p in pages]
    numbers = [int(n) for page in pages for n in LINE.findall(page)]
    assert numbers == list(range(1, 41))  # all 40, each once, in order
    assert pages[0].startswith("Your conferences (40):\n1. Weekly sync - ")
    assert pages[1].startswith("Your conferences (40), continued:\n")
    shown = int(LINE.findall(pages[0])[-1])
    assert pages[0].endswith(f"… {40 - shown} more conferences: send 'more'")
    assert pages[-1].endswith("Send 'meeting <number>' for the details of one.")
    assert "39. Sync 36 - " in pages[-1]
    assert await busy.say("alice", "more") == "There is nothing more to show."


async def test_numbers_go_on_across_pages(busy: ChatBot) -> None:
    await busy.say("alice", "my meetings")
    assert (await busy.say("alice", "meeting 39")).startswith("Sync 36")  # not shown yet
    assert "Your last listing has 40 conferences." in await busy.say("alice", "meeting 41")
    page = await busy.say("alice", "more")
    assert LINE.findall(page)[0] != "1"


async def test_absurd_subjects_are_cut_in_listings_and_whole_in_details(busy: ChatBot) -> None:
    listing = "\n".join(await read_all(busy, "my meetings"))
    long_line = next(line for line in listing.splitlines() if "Überprüfung" in line)
    assert "… - " in long_line and size(long_line) < 300
    details = await read_all(busy, "meeting 6")  # the 4th of the 38: n == 3
    assert all(size(page) <= MAX_REPLY_BYTES for page in details)
    assert "".join(details).count("Quartalszahlen") == 20  # nothing lost, only paged


async def test_a_new_listing_or_a_change_starts_the_pages_again(busy: ChatBot) -> None:
    first = await busy.say("alice", "my meetings")
    await busy.say("alice", "more")
    assert await busy.say("alice", "my meetings") == first
    await busy.say("alice", "schedule Extra at tomorrow 10:00")
    assert await busy.say("alice", "more") == "There is nothing more to show."
    assert "Your conferences (41):" in await busy.say("alice", "my meetings")


async def test_the_same_listing_read_again_comes_in_the_same_pages(busy: ChatBot) -> None:
    """A reply's first page is kept (bot.commands.replies): reading it again, to the end,
    gives the same pages - what waits for 'more' is each reading's own."""
    first = await read_all(busy, "my meetings")
    half = await busy.say("alice", "my meetings")
    assert half == first[0] and await busy.say("alice", "more") == first[1]
    assert await read_all(busy, "my meetings") == first


def test_a_reply_weighs_its_utf8_bytes() -> None:
    assert [size(text) for text in ("", "help", "é", "€uro", "🎉", "a\nb")] == [0, 4, 2, 6, 4, 3]


async def test_any_reply_too_long_is_paged_by_the_dispatcher(tmp_path: Path) -> None:
    """The safety net: a plug-in's long answer, an error quoting what was sent."""
    registry = Registry()

    @command("report", usage="report", registry=registry)
    async def report(ctx: CommandContext) -> str:
        """A long report."""
        return "\n".join(f"row {n}: " + "é" * 40 for n in range(100)) + "\n" + "x" * 3000

    chat = await chat_bot(tmp_path)
    registry_with_more = load_handlers()
    for spec in registry_with_more:
        registry.add(spec)
    chat.dispatcher.registry = registry
    try:
        pages = await read_all(chat, "report")
        assert all(size(page) <= MAX_REPLY_BYTES for page in pages)
        text = "\n".join(pages)
        assert [int(n) for n in re.findall(r"row (\d+):", text)] == list(range(100))
        assert text.count("x") == 3000
        unknown = await chat.say("alice", "help " + "y" * 5000)
        assert size(unknown) <= MAX_REPLY_BYTES and "There is no command" in unknown
    finally:
        await chat.store.close()


async def test_what_waits_for_more_is_bounded(tmp_path: Path) -> None:
    """Issue 15 item 12: a sender cannot make the bot hold an unbounded reply for 'more'."""
    registry = Registry()

    @command("flood", usage="flood", registry=registry)
    async def flood(ctx: CommandContext) -> Paged:
        """Very many items."""
        return Paged(
            heading="Items:", items=tuple(f"item {n}" for n in range(100_000)), noun="item"
        )

    chat = await chat_bot(tmp_path)
    for spec in load_handlers():
        registry.add(spec)
    chat.dispatcher.registry = registry
    try:
        pages = await read_all(chat, "flood")
        assert size("".join(pages)) < 2 * MAX_KEPT_BYTES
        shown = re.findall(r"^item (\d+)$", "\n".join(pages), re.MULTILINE)
        assert [int(n) for n in shown] == list(range(len(shown)))
        assert pages[-1].endswith(
            f"({100_000 - len(shown)} more items not shown: too many for chat)"
        )
        assert size(await chat.say("alice", "help " + "y" * 5000)) < 200
    finally:
        await chat.store.close()
