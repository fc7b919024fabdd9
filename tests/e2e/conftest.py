"""``sipbot run`` as a real process on free ports, for end-to-end tests with real peers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from bot.config import Config
from bot.send import SendOptions, send
from bot.sip.transaction import Peer
from tests.peers.conftest import (  # noqa: F401 (processes is a fixture)
    Process,
    free_port,
    processes,
    wait_for_options,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningBot:
    process: Process
    config_path: Path
    port: int
    lines: list[dict[str, object]] = field(default_factory=list)
    """The bot's JSON log lines so far (read as they come)."""
    raw: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _new_line: asyncio.Event = field(default_factory=asyncio.Event)
    killed: bool = False
    """SIGKILLed by the test (a crash): its exit status is not checked."""

    def follow(self) -> None:
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        stream = self.process.proc.stdout
        assert stream is not None
        while line := await stream.readline():
            text = line.decode("utf-8", "replace")
            self.raw.append(text)
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(text))
            self._new_line.set()

    async def event(
        self, name: str, timeout: float = 15.0, after: int = 0, **fields: object
    ) -> dict[str, object]:
        """Wait for a log event named ``name`` whose fields include ``fields``, among the
        lines from index ``after`` on (``len(bot.lines)`` marks "from now on")."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for line in self.lines[after:]:
                if line.get("event") == name and all(line.get(k) == v for k, v in fields.items()):
                    return line
            if loop.time() > deadline:
                raise AssertionError(f"no {name} {fields} in the log:\n{self.text}")
            self._new_line.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_line.wait(), 0.5)

    async def until(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Wait until ``ready()`` holds (``what`` it means, for the failure), checked as this
        bot's log grows and twice a second (for conditions on other processes too)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            if loop.time() > deadline:
                raise AssertionError(f"not {what} within {timeout} s:\n{self.text}")
            self._new_line.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_line.wait(), 0.5)

    @property
    def text(self) -> str:
        return "".join(self.raw)[-6000:]

    async def stop(self) -> int:
        if self.process.proc.returncode is None:
            self.process.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.proc.wait(), 20)
        except TimeoutError:
            self.process.proc.kill()
            code = await self.process.proc.wait()
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash."""
        self.killed = True
        self.process.proc.kill()
        await self.process.proc.wait()

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


async def alice_says(
    config: Config, text: str, *, local_host: str | None = None, timeout: float = 10.0
) -> str:
    """alice, with the bot's own client (``sipbot send``), says ``text``; the bot's reply."""
    options = SendOptions(
        user="alice", password="alice-demo", text=text, local_host=local_host, timeout=timeout
    )
    return await send(config, options)


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

    async def start(port: int | None = None, **overrides: object) -> RunningBot:
        port = port or free_port()
        path = tmp_path / f"config-{port}.yaml"  # instances may start at the same moment
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
        bot.follow()
        running.append(bot)
        await wait_until_answering(bot)
        # all of it (the admin listener opens after SIP), on uvloop (runtime.event_loop: auto)
        await bot.event("bot.started", event_loop="uvloop")
        return bot

    yield start
    for bot in running:
        code = await bot.stop()
        assert code == 0 or bot.killed, bot.text
        assert "Traceback" not in bot.text, bot.text


async def wait_until_answering(bot: RunningBot) -> None:
    if not await wait_for_options(bot.peer, lambda: bot.process.proc.returncode is None):
        await bot.stop()
        pytest.fail(f"sipbot did not answer OPTIONS:\n{bot.text}")
