"""Which command a message names (bot.commands.registry): a command word is the whole text or
the text up to a space, the longest such word wins, the rest are the arguments."""

from __future__ import annotations

from pathlib import Path

from bot.commands.context import CommandContext
from bot.commands.registry import Registry, command
from bot.runtime import load_handlers

from .chat import chat_bot


def registry() -> Registry:
    words = Registry()

    for name, aliases in (("my", ()), ("my meetings", ("meetings",)), ("help", ("?",))):

        @command(name, aliases=aliases, usage=name, takes_args=True, registry=words)
        async def handler(ctx: CommandContext) -> str:
            """A command."""
            return ""

    return words


def named(text: str) -> tuple[str, str] | None:
    found = registry().match(text)
    return None if found is None else (found[0].name, found[1])


def test_the_longest_command_word_wins() -> None:
    assert named("my meetings") == ("my meetings", "")
    assert named("my meetings tomorrow 10:00") == ("my meetings", "tomorrow 10:00")
    assert named("my meeting") == ("my", "meeting")
    assert named("meetings next week") == ("my meetings", "next week")


def test_a_command_word_ends_at_a_space_or_the_end() -> None:
    assert named("helpme") is None
    assert named("? x") == ("help", "x")
    assert named("?") == ("help", "")
    assert named("hel") is None
    assert named("") is None


def test_a_long_message_is_matched_by_its_first_words() -> None:
    """The words after the command are its arguments, however many (a pasted text)."""
    text = "help " + "word " * 20_000
    assert named(text) == ("help", text[len("help") :].strip())
    assert named("x" * 50_000) is None


def test_a_command_added_again_under_its_name_replaces_its_words() -> None:
    words = registry()

    @command("my meetings", usage="my meetings", registry=words)
    async def listing(ctx: CommandContext) -> str:
        """Without the alias now."""
        return ""

    assert words.match("meetings") is None
    found = words.match("my meetings")
    assert found is not None and found[0].handler is listing
    assert [spec.name for spec in words] == ["help", "my", "my meetings"]


async def test_a_command_added_later_answers_a_message_read_before(tmp_path: Path) -> None:
    """The dispatcher keeps how it read each short message (bot.commands.dispatcher), per
    version of the registry: a command added since is found."""
    chat = await chat_bot(tmp_path)
    own = Registry()  # not the bot's own (shared by the tests)
    for spec in load_handlers():
        own.add(spec)
    chat.dispatcher.registry = own
    try:
        assert (await chat.say("alice", "Frobnicate  now!")).startswith("I don't know")
        before = own.version

        @command("frobnicate", usage="frobnicate", takes_args=True, registry=own)
        async def frobnicate(ctx: CommandContext) -> str:
            """Frobnicate."""
            return f"Frobnicated {ctx.args}."

        assert own.version != before
        assert await chat.say("alice", "Frobnicate  now!") == "Frobnicated now."
        long = "frobnicate " + "x" * 300  # beyond what is kept: read each time, the same way
        assert await chat.say("alice", long) == f"Frobnicated {'x' * 300}."
    finally:
        await chat.store.close()
