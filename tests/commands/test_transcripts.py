"""Every command as a chat transcript: what a person sends, what the bot answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from bot.commands.context import CommandContext
from bot.commands.registry import Registry, command
from bot.conferencing.models import Conference
from bot.config import (
    AclConfig,
    CommandsConfig,
    Config,
    ConfigError,
    FeaturesConfig,
    ImConfig,
    RateLimitConfig,
)
from bot.runtime import load_handlers

from .chat import ChatBot, chat_bot

SUMMARY = "List the conferences you organise."


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[ChatBot]:
    chat = await chat_bot(tmp_path)
    yield chat
    await chat.store.close()


async def test_my_meetings_lists_only_the_senders_own(bot: ChatBot) -> None:
    reply = await bot.say("alice", "my meetings")
    assert "Weekly sync" in reply and "Quarterly review" in reply
    assert "Design review" not in reply
    assert reply.index("Weekly sync") < reply.index("Quarterly review")  # soonest first
    assert "1. Weekly sync" in reply and "id DEMO0001" in reply and "everyone" in reply
    bob = await bot.say("bob", "my meetings")
    assert "Design review" in bob and "Weekly sync" not in bob


async def test_my_meetings_again_follows_the_conferences_and_the_time_zone(bot: ChatBot) -> None:
    """The last listing is kept in the sender's memory: asked for again it is the same reply,
    and it follows a conference added elsewhere (not through this sender's commands) and a
    new time zone (a reload) at once."""
    first = await bot.say("alice", "my meetings")
    assert await bot.say("alice", "my meetings") == first
    start = datetime.now(UTC) + timedelta(days=3)
    await bot.store.add(
        Conference(
            conference_id="ADDED001",
            organizer="alice@example.test",
            subject="Offsite planning",
            uri="sip:alice@example.test;gruu;opaque=app:conf:focus:id:ADDED001",
            access_level="invited",
            start=start,
            end=start + timedelta(hours=1),
            expiry=start + timedelta(days=1),
        )
    )
    added = await bot.say("alice", "my meetings")
    assert "Offsite planning" in added and "Your conferences (3)" in added
    number = next(line.split(".")[0] for line in added.splitlines() if "Offsite" in line)
    assert (await bot.say("alice", f"meeting {number}")).startswith("Offsite planning")
    bot.dispatcher.services.zone = ZoneInfo("Asia/Tokyo")  # as a reload sets it
    tokyo = await bot.say("alice", "my meetings")
    assert "JST" in tokyo and "UTC" not in tokyo and "UTC" in added


async def test_someone_without_conferences_is_told_plainly(bot: ChatBot) -> None:
    assert await bot.say("carol", "my meetings") == "You have no upcoming conferences."


async def test_meeting_by_number_and_by_id(bot: ChatBot) -> None:
    await bot.say("alice", "my meetings")
    details = await bot.say("alice", "meeting 2")
    assert details.startswith("Quarterly review")
    assert "Dial-in: +1 555 0100" in details and "Join: sip:alice@example.test" in details
    assert (await bot.say("alice", "meeting DEMO0001")).startswith("Weekly sync")


async def test_meeting_mistakes_get_the_usage_line(bot: ChatBot) -> None:
    first = await bot.say("alice", "meeting 1")
    assert "Send 'my meetings' first" in first and "Usage: meeting <number|id>" in first
    await bot.say("alice", "my meetings")
    assert "has 2 conferences" in await bot.say("alice", "meeting 7")
    assert "Usage: meeting <number|id>" in await bot.say("alice", "meeting")
    # nobody sees another organizer's conference, even by id
    assert "no conference 'DEMO0003'" in await bot.say("alice", "meeting DEMO0003")
    # "²".isdigit() is true and int("²") raises: a digit is an ASCII digit (issue 15 item 5)
    assert "no conference '²'" in await bot.say("alice", "meeting ²")
    assert "Usage: schedule" in await bot.say("alice", "schedule review for ²")


async def test_matching_ignores_case_spaces_and_end_punctuation(bot: ChatBot) -> None:
    assert "Weekly sync" in await bot.say("alice", "  My   MEETINGS?! ")
    assert "Weekly sync" in await bot.say("alice", "meetings.")


async def test_help_lists_what_the_sender_may_use(bot: ChatBot) -> None:
    reply = await bot.say("bob", "help")
    assert "my meetings" in reply and "meeting <number|id>" in reply
    assert "status" not in reply  # admin-only: hidden from others (alice is the demo's admin)
    detail = await bot.say("alice", "help meeting")
    assert "Usage: meeting <number|id>" in detail and "Example: meeting 1" in detail
    assert "There is no command 'dance'" in await bot.say("alice", "help dance")


async def test_unknown_input_suggests_the_closest_command(bot: ChatBot) -> None:
    reply = await bot.say("alice", "my meetngs")
    assert reply == (
        "I don't know 'my meetngs'. Did you mean 'my meetings'? Send 'help' to see what I can do."
    )
    assert "Send 'help'" in await bot.say("alice", "xyzzy")
    assert "Send 'help'" in await bot.say("alice", "   ")
    assert "takes nothing after it" in await bot.say("alice", "my meetings please")


async def test_senders_from_other_domains_are_refused(bot: ChatBot) -> None:
    assert await bot.say("mallory@evil.test", "my meetings") == (
        "Sorry, I only answer users of example.test."
    )


async def test_admin_only_commands(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path, acl=AclConfig(admins=("alice@example.test",)))
    try:
        assert "uptime: 42 s" in await chat.say("alice", "status")
        listing = await chat.say("alice", "help") + await chat.say("alice", "more")  # two pages
        assert "status" in listing
        assert await chat.say("bob", "status") == "Sorry, 'status' is for administrators only."
    finally:
        await chat.store.close()


async def test_disabled_feature_is_announced_or_hidden(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path, features=FeaturesConfig(my_meetings=False))
    try:
        assert await chat.say("alice", "my meetings") == "'my meetings' is turned off here."
        assert "(turned off)" in await chat.say("alice", "help")
    finally:
        await chat.store.close()
    hidden = await chat_bot(
        tmp_path, features=FeaturesConfig(my_meetings=False, hide_disabled=True)
    )
    try:
        assert (await hidden.say("alice", "my meetings")).startswith("I don't know")
        assert "my meetings" not in await hidden.say("alice", "help")
    finally:
        await hidden.store.close()


async def test_a_reload_changes_help_at_once(tmp_path: Path) -> None:
    """help's listing is kept between messages, never past a change of what it shows: the
    features a reload brings, or a command added to the registry."""
    chat = await chat_bot(tmp_path)
    registry = Registry()  # of its own: a command is added below
    for spec in load_handlers():
        registry.add(spec)
    chat.dispatcher.registry = registry

    def listed(reply: str) -> list[str]:
        return [line for line in reply.splitlines() if line.startswith("  my meetings")]

    try:
        assert listed(await chat.say("bob", "help")) == ["  my meetings - " + SUMMARY]
        chat.dispatcher.reconfigure(Config(features=FeaturesConfig(my_meetings=False)))
        off = listed(await chat.say("bob", "help"))
        assert off == ["  my meetings - " + SUMMARY + " (turned off)"]
        hidden = FeaturesConfig(my_meetings=False, hide_disabled=True)
        chat.dispatcher.reconfigure(Config(features=hidden))
        assert listed(await chat.say("bob", "help")) == []
        assert "There is no command" in await chat.say("bob", "help my meetings")
        chat.dispatcher.reconfigure(Config())
        assert listed(await chat.say("bob", "help")) == ["  my meetings - " + SUMMARY]

        @command("dance", usage="dance", registry=registry)
        async def dance(ctx: CommandContext) -> str:
            """Dance a little."""
            return "*dances*"

        assert "  dance - Dance a little." in await chat.say("bob", "help")
        assert "Usage: dance" in await chat.say("bob", "help dance")
    finally:
        await chat.store.close()


async def test_rate_limit_says_slow_down_and_recovers(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path, im=ImConfig(rate_limit=RateLimitConfig(rate=1.0, burst=3)))
    try:
        replies = [await chat.say("alice", "help") for _ in range(4)]
        assert all(r.startswith("Commands:") for r in replies[:3])
        assert "faster than I can answer" in replies[3]
        assert (await chat.say("bob", "help")).startswith("Commands:")  # per sender
        chat.clock.now += 1.0
        assert (await chat.say("alice", "help")).startswith("Commands:")
    finally:
        await chat.store.close()


async def test_a_crashing_handler_gets_an_apology_and_a_log_line(tmp_path: Path) -> None:
    registry = Registry()

    @command("explode", usage="explode", registry=registry)
    async def explode(ctx: CommandContext) -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    chat = await chat_bot(tmp_path)
    chat.dispatcher.registry = registry
    try:
        with capture_logs() as logs:
            reply = await chat.say("alice", "explode")
        assert reply.startswith("Sorry, something went wrong while running 'explode'")
        assert "kaboom" not in reply and "Traceback" not in reply
        [failed] = [e for e in logs if e["event"] == "im.command.failed"]
        assert failed["command"] == "explode" and failed["sender"] == "alice@example.test"
        assert failed["exc_info"] is True and failed["log_level"] == "error"
    finally:
        await chat.store.close()


async def test_third_party_commands_plug_in_without_touching_sipbot(tmp_path: Path) -> None:
    registry = Registry()

    @command("ping", usage="ping", registry=registry)
    async def ping(ctx: CommandContext) -> str:
        """Answer pong."""
        return f"pong, {ctx.sender.user}"

    chat = await chat_bot(tmp_path, config=Config())
    chat.dispatcher.registry = registry
    try:
        assert await chat.say("alice", "PING!") == "pong, alice"
    finally:
        await chat.store.close()


def test_a_command_word_cannot_be_claimed_twice() -> None:
    registry = Registry()

    @command("hello", registry=registry)
    async def first(ctx: CommandContext) -> str:
        """One."""
        return "1"

    with pytest.raises(ValueError, match="already belongs"):

        @command("hi", aliases=("hello",), registry=registry)
        async def second(ctx: CommandContext) -> str:
            """Two."""
            return "2"


async def test_modules_listed_in_config_add_commands(tmp_path: Path) -> None:
    config = Config(commands=CommandsConfig(modules=("tests.commands.plugin_example",)))
    chat = await chat_bot(tmp_path, config=config)
    chat.dispatcher.registry = load_handlers(config)
    try:
        assert await chat.say("alice", "weather") == "Sunny, alice."
        listing = await chat.say("alice", "help") + await chat.say("alice", "more")  # two pages
        assert "weather - Tell the weather" in listing
    finally:
        await chat.store.close()


def test_a_module_that_cannot_be_imported_is_a_config_error() -> None:
    # the schema refuses such a module (tests/test_config.py); this is the start-up's own check
    config = Config(commands=CommandsConfig.model_construct(modules=("no_such_module_here",)))
    with pytest.raises(ConfigError, match="commands.modules: cannot import 'no_such_module_here'"):
        load_handlers(config)
