"""``sipbot bans`` / ``sipbot unban`` through the running bot's control socket (no HTTP API)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from bench.flood import open_client, request, tag
from bot.config import load_config
from bot.control import socket_path
from bot.datadir import data_dir
from bot.send import SendError, SendOptions, send

from .conftest import RunningBot, StartBot

GUESSER = "127.0.0.2"


async def guess(bot: RunningBot, user: str, password: str, timeout: float = 5.0) -> str:
    """``user`` with ``password`` says help from GUESSER: the reply, or why there was none."""
    options = SendOptions(
        user=user, password=password, text="help", local_host=GUESSER, timeout=timeout
    )
    try:
        return await send(load_config(bot.config_path), options)
    except SendError as exc:
        return str(exc)


async def dropped_unanswered(bot: RunningBot, source: str) -> bool:
    """Is an OPTIONS from ``source`` read and dropped unanswered? Decided once the bot answered
    an OPTIONS another address sent after it (it reads its socket in order), not by a quiet
    period."""
    banned, witness = await open_client(source), await open_client("127.0.0.1")
    try:
        where = ("127.0.0.1", bot.port)
        banned.send(request("OPTIONS", "sip:bot@example.test", local=banned.local), where)
        call_id = tag()
        marker = request("OPTIONS", "sip:bot@example.test", local=witness.local, call_id=call_id)
        answer = await witness.exchange(marker, call_id, where)
        assert answer.startswith(b"SIP/2.0 200 "), answer
        return banned.answered == 0
    finally:
        for client in (banned, witness):
            assert client.transport is not None
            client.transport.close()


async def test_a_ban_is_listed_and_lifted_without_the_admin_api(start_bot: StartBot) -> None:
    bot = await start_bot()  # admin.token unset: the HTTP admin API is off
    sock = socket_path(data_dir())
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    code, out, _ = await bot.sipbot("bans")
    assert (code, out) == (0, "no address is banned\n")

    for attempt in range(10):  # a different name each time: no per-user slow-down
        assert "401" in await guess(bot, f"guess{attempt}", "wrong")
    await bot.event("guard.banned", address=GUESSER)
    assert await dropped_unanswered(bot, GUESSER)
    # and what a user there is told, on the client's own timeout
    silence = await guess(bot, "alice", "alice-demo", timeout=2)
    assert "no SIP server answered" in silence and "`sipbot bans` tells" in silence

    code, out, err = await bot.sipbot("bans")
    assert code == 0, err
    assert re.match(rf"{GUESSER}: banned for (9 min \d+|10 min 0) s more after ", out), out
    assert "10 failed attempts" in out and f"sipbot unban {GUESSER}" in out

    code, out, err = await bot.sipbot("unban", GUESSER)
    assert (code, out) == (0, f"{GUESSER}: ban lifted\n"), err
    assert "my meetings" in await guess(bot, "alice", "alice-demo")
    code, _, err = await bot.sipbot("unban", GUESSER)
    assert code == 1 and f"{GUESSER} is not banned" in err


async def test_without_a_running_bot_it_says_where_it_looked(
    tmp_path: Path, start_bot: StartBot
) -> None:
    bot = await start_bot()
    code, _, err = await bot.sipbot("bans", "--data-dir", str(tmp_path / "elsewhere"))
    assert code == 1
    assert f"no running sipbot at {tmp_path / 'elsewhere' / 'control' / 'sipbot.sock'}" in err


def test_the_data_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data_dir() == tmp_path / "sipbot"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")
    assert data_dir() == Path.home() / ".local" / "share" / "sipbot"
    assert data_dir(Path("here")) == Path(os.getcwd()) / "here"
