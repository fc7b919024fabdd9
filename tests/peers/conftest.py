"""Helpers for tests against real peers (SIPp, Kamailio) from Debian packages.

A missing peer fails the test with the command that installs it: `.ci/run` and the README's
test command install them, so a skip would only hide a broken set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
INSTALL = "apt-get install -y sip-tester kamailio kamailio-extra-modules baresip-core"


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed; run: {INSTALL}", pytrace=False)
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port that is free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as check:
            try:
                check.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


class Process:
    """A peer process whose output is kept for the assertion messages."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str):
        self.proc = proc
        self.name = name
        self.output = b""

    async def wait(self, timeout: float) -> int:
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.proc.kill()
            out, _ = await self.proc.communicate()
            self.output += out or b""
            raise AssertionError(
                f"{self.name} did not finish in {timeout}s:\n{self.text}"
            ) from None
        self.output += out or b""
        return self.proc.returncode or 0

    async def stop(self) -> None:
        """SIGTERM to the peer's whole process group (Kamailio forks workers), then SIGKILL."""
        if self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                _signal_group(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        _signal_group(self.proc.pid, signal.SIGKILL)  # stragglers of the group, if any

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")[-4000:]


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def start(name: str, *args: str, cwd: Path | None = None) -> Process:
    """Start a peer in a session of its own, so that stopping it stops all it forked."""
    proc = await asyncio.create_subprocess_exec(
        require(name), *args, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return Process(proc, name)


@pytest.fixture
async def processes() -> AsyncIterator[list[Process]]:
    """Processes registered here are stopped after the test, whatever happens."""
    started: list[Process] = []
    yield started
    for process in started:
        await process.stop()
