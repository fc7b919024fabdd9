"""The bot's calls against a real callee: SIPp (Debian sip-tester) as the UAS, one call per
scenario under tests/calls/sipp. SIPp's exit code is 0 only when its side of the call went
exactly as the scenario says. The media stream is the test double of tests/calls/conftest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.calls.audio import CallFailed
from bot.sip.digest import DigestClient
from tests.peers.conftest import HERE as PEERS
from tests.peers.conftest import Process, free_port, listening, start
from tests.peers.test_sipp import sipp_args

from .conftest import WAIT

SCENARIOS = Path(__file__).parent / "sipp"
MakeBot = Callable[..., Any]
Sipp = Callable[..., Awaitable[tuple[Process, str]]]


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    """Starts SIPp on one scenario (with ``replace``d placeholders) for one call; the target
    URI it answers on is returned with it. Stopped after the test, whatever happens."""
    started: list[Process] = []

    async def run(scenario: str, **replace: str) -> tuple[Process, str]:
        text = (SCENARIOS / scenario).read_text()  # an absolute path stays as it is
        for key, value in replace.items():
            text = text.replace(key, value)
        path = tmp_path / Path(scenario).name
        path.write_text(text)
        port = free_port()
        process = await start("sipp", "-sf", str(path), "-m", "1", *sipp_args(local_port=port))
        started.append(process)
        await listening(port)
        return process, f"sip:carol@127.0.0.1:{port}"

    yield run
    for process in started:
        await process.stop()


async def test_answered_then_the_callee_hangs_up(make_bot: MakeBot, sipp: Sipp) -> None:
    bot = await make_bot()
    peer, target = await sipp("callee_hangs_up.xml")
    call = await bot.calls.call(target)
    assert call.session.codec == "PCMU" and call.session.remote_crypto is None
    await asyncio.wait_for(call.ended.wait(), WAIT)
    assert call.end_reason == f"{target} hung up."
    assert await peer.wait(WAIT) == 0, peer.text
    assert bot.streams.opened[0].closed.is_set()


async def test_answered_then_the_bot_hangs_up(make_bot: MakeBot, sipp: Sipp) -> None:
    bot = await make_bot()
    peer, target = await sipp(str(PEERS / "sipp" / "invite_uas.xml"))
    call = await bot.calls.call(target)
    await call.hangup()
    assert call.end_reason == "the bot hung up."
    assert await peer.wait(WAIT + 5) == 0, peer.text  # it lingers 4 s for late ACKs
    assert bot.streams.opened[0].closed.is_set()


@pytest.mark.parametrize(
    ("status", "reason", "sentence"),
    [
        ("486", "Busy Here", "{uri} is busy."),
        ("603", "Decline", "{uri} declined the call."),
        ("488", "Not Acceptable Here",
         "{uri} has no codec in common with the bot (offered PCMU, PCMA)."),
    ],
)  # fmt: skip
async def test_refused(
    make_bot: MakeBot, sipp: Sipp, status: str, reason: str, sentence: str
) -> None:
    bot = await make_bot()
    peer, target = await sipp("callee_refuses.xml", STATUS=status, REASON=reason)
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(target)
    assert str(info.value) == sentence.format(uri=target)
    assert await peer.wait(WAIT) == 0, peer.text  # it got the ACK of its refusal
    assert bot.streams.opened[0].closed.is_set()


async def test_no_answer_is_cancelled(make_bot: MakeBot, sipp: Sipp) -> None:
    bot = await make_bot(answer_timeout=1.0)
    peer, target = await sipp("no_answer.xml")
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(target)
    assert str(info.value) == f"{target} did not answer within 1 s."
    assert await peer.wait(WAIT) == 0, peer.text  # CANCEL, 487 and its ACK as RFC 3261 §9.1


async def test_hold_by_re_invite(make_bot: MakeBot, sipp: Sipp) -> None:
    bot = await make_bot()
    peer, target = await sipp("callee_holds.xml")
    call = await bot.calls.call(target)
    await asyncio.wait_for(call.ended.wait(), WAIT)
    assert await peer.wait(WAIT) == 0, peer.text  # it saw a=recvonly in our answer
    [update] = bot.streams.opened[0].updates
    assert update.direction == "recvonly" and not update.sending
    assert call.end_reason == f"{target} hung up."


async def test_hold_and_resume_by_update(make_bot: MakeBot, sipp: Sipp) -> None:
    bot = await make_bot()
    peer, target = await sipp("callee_updates.xml")
    call = await bot.calls.call(target)
    await asyncio.wait_for(call.ended.wait(), WAIT)
    assert await peer.wait(WAIT) == 0, peer.text
    assert [u.direction for u in bot.streams.opened[0].updates] == ["recvonly", "sendrecv"]


async def test_a_challenge_is_answered(make_bot: MakeBot, sipp: Sipp) -> None:
    bot = await make_bot()
    peer, target = await sipp("challenge.xml")
    call = await bot.calls.call(target, credentials=DigestClient("bot", "secret"))
    await call.hangup()
    assert await peer.wait(WAIT) == 0, peer.text


async def test_the_bot_refreshes_the_session(make_bot: MakeBot, sipp: Sipp) -> None:
    bot = await make_bot()
    peer, target = await sipp("session_timer.xml")
    call = await bot.calls.call(target)
    await asyncio.wait_for(call.ended.wait(), WAIT)  # two refreshes at 1 s, then SIPp's BYE
    assert call.end_reason == f"{target} hung up."
    assert await peer.wait(WAIT) == 0, peer.text


async def test_a_wrong_password_is_refused_by_the_callee(make_bot: MakeBot, sipp: Sipp) -> None:
    """SIPp's digest check is real: the same scenario refuses a wrong answer."""
    bot = await make_bot()
    peer, target = await sipp("challenge.xml")
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(target, credentials=DigestClient("bot", "not-the-secret"))
    assert str(info.value) == f"{target} refused the call (403 Forbidden (wrong digest))."
