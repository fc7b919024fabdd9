"""A long command (an announcement lasts up to ``calls.max_duration``) keeps its IM session
open: the idle sweep does not close a session whose command is still running, so the reply
arrives inside it; once answered, the session is idle from the reply on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.config import ImConfig
from bot.runtime import Runtime
from bot.sender import Sender
from bot.sip.dialog import Dialog
from bot.sip.message import Request
from bot.sip.transaction import Peer
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint

from .test_sessions import FAST, Alice, open_session, running

TIMEOUT = 300.0
REPLY = "Announced in 'Weekly sync' (42.0 s)."


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async for bot in running(tmp_path, ImConfig(session_idle_timeout=TIMEOUT)):
        yield bot


async def next_message(user: Alice) -> Request:
    """The next MESSAGE the bot sends alice (typing notices are INFO)."""
    while (request := await asyncio.wait_for(user.received.get(), 5)).method != "MESSAGE":
        pass
    return request


def phone(user: Alice) -> SipEndpoint:
    """alice's phone, answering as ``user`` does (use as ``async with``)."""
    return SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=user)


async def session_and_command(alice: SipEndpoint, bot: Peer, text: str) -> tuple[Request, Request]:
    """An IM session alice opened (INVITE, 200, ACK), and a MESSAGE in it saying ``text``."""
    invite, ok = await open_session(alice, bot)
    dialog = Dialog.as_uac(invite, ok)
    alice.client.send_ack(dialog.create_ack(invite.cseq.seq, via=alice.via()), bot)
    message = dialog.create_request(
        "MESSAGE", via=alice.via(), body=text.encode(), content_type="text/plain"
    )
    return invite, message


async def test_a_running_command_keeps_its_session_past_the_idle_timeout(
    runtime: Runtime,
) -> None:
    assert runtime.im is not None
    im = runtime.im
    started, finish = asyncio.Event(), asyncio.Event()

    async def announce(sender: Sender, text: str, call_id: str) -> str:
        started.set()
        await finish.wait()  # the call is playing
        return REPLY

    im.answer = announce
    user, bot, loop = Alice(), Peer("UDP", *runtime.endpoint.address()), asyncio.get_running_loop()
    async with phone(user) as alice:
        invite, message = await session_and_command(alice, bot, "announce 1 hello")
        assert (await alice.request(message, destination=bot)).status == 200
        await asyncio.wait_for(started.wait(), 5)

        im.sessions.end_idle(loop.time() + 10 * TIMEOUT, TIMEOUT)  # long past the timeout
        assert im.session_count == 1  # held: the command is under way
        finish.set()
        reply = await next_message(user)
        assert reply.call_id == invite.call_id and reply.body.decode() == REPLY

        im.sessions.end_idle(loop.time() + TIMEOUT / 2, TIMEOUT)
        assert im.session_count == 1  # quiet since the reply, not for long enough yet
        im.sessions.end_idle(loop.time() + 2 * TIMEOUT, TIMEOUT)
        bye = await asyncio.wait_for(user.received.get(), 5)
        assert bye.method == "BYE" and bye.call_id == invite.call_id
        assert im.session_count == 0


async def test_a_command_that_fails_is_logged_and_holds_its_session_no_longer(
    runtime: Runtime,
) -> None:
    assert runtime.im is not None
    im = runtime.im

    async def broken(sender: Sender, text: str, call_id: str) -> str:
        raise RuntimeError("handler bug")

    im.answer = broken
    user, bot, loop = Alice(), Peer("UDP", *runtime.endpoint.address()), asyncio.get_running_loop()
    async with phone(user) as alice:
        invite, message = await session_and_command(alice, bot, "help")
        with capture_logs() as logs:
            assert (await alice.request(message, destination=bot)).status == 200
            await asyncio.wait_for(im.drain(), 5)
        assert {
            "event": "im.task.failed", "error": "RuntimeError('handler bug')", "log_level": "error"
        } in logs  # fmt: skip
        [session] = im.sessions._by_id.values()
        assert session.running == 0  # idle again: the sweep may close it
        im.sessions.end_idle(loop.time() + 2 * TIMEOUT, TIMEOUT)
        bye = await asyncio.wait_for(user.received.get(), 5)
        assert bye.method == "BYE" and bye.call_id == invite.call_id
        assert im.session_count == 0


async def test_a_command_s_task_is_forgotten_at_its_end_and_at_shutdown_before_its_start(
    runtime: Runtime,
) -> None:
    """Each command's task forgets itself as it ends (no done callback); one cancelled by the
    shutdown before its first step, which never reaches that end, is forgotten by the
    shutdown: nothing is left for ``drain`` to wait on for ever."""
    assert runtime.im is not None
    im = runtime.im
    user, bot = Alice(), Peer("UDP", *runtime.endpoint.address())
    async with phone(user) as alice:
        _, message = await session_and_command(alice, bot, "help")
        assert (await alice.request(message, destination=bot)).status == 200
        assert (await next_message(user)).body.startswith(b"Commands:")
        await asyncio.wait_for(im.drain(), 5)
        assert not im._tasks

        async def never_started() -> None:
            raise AssertionError("cancelled before its first step")

        im._spawn(never_started(), guarded=True)
        assert len(im._tasks) == 1
        await im.close()
        assert not im._tasks
        await asyncio.wait_for(im.drain(), 5)
