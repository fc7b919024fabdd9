"""A first run as the README tells it: data in the data directory (said at start-up), nothing
written to the working directory, the demo's alice may try ``status``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.peers.conftest import free_port

from .conftest import ROOT


async def sipbot(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def read_until(proc: asyncio.subprocess.Process, text: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        while line := (await proc.stdout.readline()).decode():
            seen.append(line)
            if text in line:
                return
    raise AssertionError(f"no {text!r} in:\n{''.join(seen)}")


async def test_data_directory_and_the_demo_admin(tmp_path: Path) -> None:
    port = free_port()
    work, data = tmp_path / "work", tmp_path / "data"
    work.mkdir()
    (work / "config.yaml").write_text(
        f"sip:\n  listen: [{{transport: udp, host: 127.0.0.1, port: {port}}}]\n"
    )
    bot = await sipbot("run", "--data-dir", str(data), cwd=work)
    seen: list[str] = []
    try:
        await read_until(bot, '"bot.started"', seen)
        assert seen[0] == f"sipbot: data in {data}\n"
        assert (data / "sipbot.db").is_file() and list(work.iterdir()) == [work / "config.yaml"]
        assert oct((data / "control").stat().st_mode & 0o777) == "0o700"
        client = await sipbot(
            "send", "--password", "alice-demo", "--timeout", "10", "status", cwd=work
        )
        out, _ = await asyncio.wait_for(client.communicate(), 20)
        assert client.returncode == 0 and "uptime" in out.decode(), out.decode()
    finally:
        bot.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(bot.communicate(), 20)
    log = "".join(seen) + rest.decode()
    assert bot.returncode == 0 and "Traceback" not in log, log
