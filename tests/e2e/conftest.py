"""``sipbot run`` as a real process on free ports, for end-to-end tests with real peers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bot.sip import Headers, Request, parse_uri
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.peers.conftest import Process, free_port, processes  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningBot:
    process: Process
    config_path: Path
    port: int

    @property
    def peer(self) -> Peer:
        return Peer("UDP", "127.0.0.1", self.port)

    async def sipbot(self, *args: str, timeout: float = 30) -> tuple[int, str, str]:
        """Run another ``sipbot`` command against this bot's config."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode or 0, out.decode(), err.decode()


def bot_config(tmp_path: Path, port: int, **overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "sip": {
            "listen": [
                {"transport": "udp", "host": "127.0.0.1", "port": port},
                {"transport": "tcp", "host": "127.0.0.1", "port": port},
            ]
        },
        "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"},
        "logging": {"format": "json", "level": "INFO"},
    }
    for section, values in overrides.items():
        merged = dict(config.get(section, {}))  # type: ignore[call-overload]
        merged.update(values)  # type: ignore[call-overload]
        config[section] = merged
    return config


StartBot = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def start_bot(tmp_path: Path) -> AsyncIterator[StartBot]:
    """Start ``sipbot run`` with a config made of the test defaults and ``overrides``; it is
    stopped with SIGTERM afterwards, and its log must hold no traceback."""
    running: list[RunningBot] = []

    async def start(**overrides: object) -> RunningBot:
        port = free_port()
        path = tmp_path / f"config-{len(running)}.yaml"
        path.write_text(yaml.safe_dump(bot_config(tmp_path, port, **overrides)))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(path),
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        bot = RunningBot(Process(proc, "sipbot"), path, port)
        running.append(bot)
        await wait_until_answering(bot)
        return bot

    yield start
    for bot in running:
        if bot.process.proc.returncode is None:
            bot.process.proc.send_signal(signal.SIGTERM)
        code = await bot.process.wait(20)
        assert code == 0, bot.process.text
        assert "Traceback" not in bot.process.text, bot.process.text


async def wait_until_answering(bot: RunningBot, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    config = EndpointConfig(listen=(Listen(port=0),), timers=TimerConfig(t1=0.1, t2=0.4, t4=0.5))
    async with SipEndpoint(config) as probe:
        while loop.time() < deadline:
            if bot.process.proc.returncode is not None:
                await bot.process.wait(5)
                pytest.fail(f"sipbot exited at start:\n{bot.process.text}")
            ping = Request(
                "OPTIONS",
                parse_uri(f"sip:127.0.0.1:{bot.port}"),
                Headers.of(
                    ("From", f"<sip:probe@example.test>;tag={new_tag()}"),
                    ("To", "<sip:bot@example.test>"),
                    ("Call-ID", new_tag()),
                    ("CSeq", "1 OPTIONS"),
                ),
            )
            if (await probe.request(ping, destination=bot.peer)).status == 200:
                return
            await asyncio.sleep(0.2)
    pytest.fail("sipbot did not answer OPTIONS")
