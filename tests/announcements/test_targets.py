"""Who may announce into what: a number of the sender's last listing, one of their ids, a SIP
URI; announcements.who and announcements.uris; refusals that say how to do it right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.announcements.targets import described, resolve
from bot.commands import CommandContext, UsageError
from bot.conferencing.models import Conference
from bot.config import Config
from bot.errors import Refusal
from bot.sender import Sender
from tests.commands.chat import ChatBot, chat_bot


def context(chat: ChatBot, user: str, **announcements: Any) -> CommandContext:
    config = Config(announcements=announcements) if announcements else chat.dispatcher.config
    sender = Sender(user, "example.test")
    return CommandContext(
        sender=sender,
        args="",
        config=config,
        registry=chat.dispatcher.registry,
        services=chat.dispatcher.services,
        memory=chat.dispatcher.memory.get(sender.address, chat.clock()),
        is_admin=sender.address in config.acl.admins,
    )


async def test_a_number_of_the_last_listing_and_an_id_name_the_senders_conference(
    tmp_path: Path,
) -> None:
    chat = await chat_bot(tmp_path)
    try:
        ctx = context(chat, "bob")
        with pytest.raises(UsageError, match="Send 'my meetings' first"):
            await resolve(ctx, "1")
        await chat.say("bob", "my meetings")
        first = await resolve(ctx, "1")
        assert isinstance(first, Conference) and described(first) == "'Design review'"
        assert await resolve(ctx, "DEMO0003") == first
        with pytest.raises(UsageError, match="Your last listing has 1 conference"):
            await resolve(ctx, "2")
    finally:
        await chat.store.close()


async def test_nobody_names_another_organizers_conference_by_id(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        with pytest.raises(UsageError, match="You have no conference 'DEMO0001'.$"):
            await resolve(context(chat, "bob"), "DEMO0001")
        # alice is an admin: she is told how to name bob's conference instead
        with pytest.raises(UsageError, match=r"by its URI \(sip:...;opaque=app:conf:focus"):
            await resolve(context(chat, "alice"), "DEMO0003")
    finally:
        await chat.store.close()


async def test_sip_uris_are_for_admins_unless_configured_for_everyone(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        with pytest.raises(Refusal, match="only administrators may name a SIP URI. Name one"):
            await resolve(context(chat, "bob"), "sip:carol@example.test")
        assert await resolve(context(chat, "alice"), "sip:carol@example.test") == (
            "sip:carol@example.test"
        )
        everyone = context(chat, "bob", uris="everyone")
        assert await resolve(everyone, "SIP:carol@Example.TEST") == "sip:carol@example.test"
        focus = "sip:bob@example.test;gruu;opaque=app:conf:focus:id:DEMO0003"
        assert await resolve(context(chat, "alice"), focus) == focus
    finally:
        await chat.store.close()


async def test_a_malformed_uri_gets_an_example(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        for word in ("sip:", "sip:bob@example.test?subject=x", "sip:bob@exa mple"):
            with pytest.raises(UsageError, match=r"is not a SIP URI I can call \(e.g. sip:"):
                await resolve(context(chat, "alice"), word)
    finally:
        await chat.store.close()


async def test_who_admins_refuses_everyone_else_even_their_own(tmp_path: Path) -> None:
    chat = await chat_bot(tmp_path)
    try:
        await chat.say("bob", "my meetings")
        with pytest.raises(Refusal, match="only administrators may make announcements"):
            await resolve(context(chat, "bob", who="admins"), "1")
        await chat.say("alice", "my meetings")
        chosen = await resolve(context(chat, "alice", who="admins"), "1")
        assert described(chosen) == "'Weekly sync'"
    finally:
        await chat.store.close()
