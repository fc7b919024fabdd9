"""The embedded registrar against the real scanner SIPVicious (svwar, svcrack): no user
enumeration, password guessing banned, the real user unaffected.

SIPVicious sends from 127.0.0.1; alice's own client sends from 127.0.0.2, standing for another
host (Linux routes all of 127.0.0.0/8 to loopback with no set-up)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.config import load_config
from bot.send import SendOptions, send

from .conftest import RunningBot, StartBot

ALICE_HOST = "127.0.0.2"
NAMES = ["alice", "zed", "bob", "mallory", "100", "admin", "operator"]
GUARD = {"max_failures": 10, "window": 60, "ban": 600}


async def run(*command: str, timeout: float = 90) -> str:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return out.decode("utf-8", "replace")


async def alice_says(bot: RunningBot, text: str) -> str:
    config = load_config(bot.config_path)
    options = SendOptions(user="alice", password="alice-demo", text=text, local_host=ALICE_HOST)
    return await send(config, options)


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
async def test_svwar_cannot_tell_real_users_from_made_up_ones(
    start_bot: StartBot, tmp_path: Path, method: str
) -> None:
    bot = await start_bot()
    names = tmp_path / "names.txt"
    names.write_text("\n".join(NAMES) + "\n")
    report = await run(
        "svwar",
        "-d",
        str(names),
        "-m",
        method,
        "--domain",
        "example.test",
        "-p",
        str(bot.port),
        "127.0.0.1",
    )
    listed = set(re.findall(r"^\|\s*(\S+)\s*\|", report, re.MULTILINE)) - {"Extension"}
    assert not listed & set(NAMES), report  # neither alice nor bob, nor any made-up name
    if method != "OPTIONS":  # OPTIONS is answered 200 for anyone: nothing to compare
        assert "authentication request for an unknown extension" in report, report


async def test_svcrack_is_banned_before_it_finds_alices_password_and_alice_keeps_working(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot(security={"auth": GUARD})
    words = tmp_path / "words.txt"
    guesses = [f"guess{n:04d}" for n in range(300)] + ["alice-demo"]
    words.write_text("\n".join(guesses) + "\n")
    attack = asyncio.ensure_future(
        run(
            "svcrack",
            "-u",
            "alice",
            "-d",
            str(words),
            "--domain",
            "example.test",
            "-p",
            str(bot.port),
            "--maximumtime",
            "3",
            "127.0.0.1",
        )
    )
    banned = await bot.event("guard.banned", address="127.0.0.1")
    assert banned["failures"] == 10 and banned["users"] == ["alice"]
    assert "alice-demo" not in str(banned)
    during = await alice_says(bot, "help")  # from her own address, while svcrack still runs
    assert "my meetings" in during
    report = await attack
    assert "alice-demo" not in report and "found nothing" in report, report
    after = await alice_says(bot, "my meetings")
    assert "Weekly sync" in after
    log = "".join(bot.raw)
    assert "alice-demo" not in log and "guess0" not in log
    assert "response=" not in log and "Authorization" not in log
