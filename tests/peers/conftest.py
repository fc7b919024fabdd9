"""Helpers for tests against real peers (SIPp, Kamailio) from Debian packages.

A missing peer fails the test with the command that installs it: `.ci/run` and the README's
test command install them, so a skip would only hide a broken set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.sip import Headers, Request, parse_uri
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint

HERE = Path(__file__).parent
INSTALL = (
    "apt-get install -y sip-tester kamailio kamailio-extra-modules baresip-core linphone-cli"
    " sipvicious postgresql"
)


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed; run: {INSTALL}", pytrace=False)
    return path


_HANDED_OUT: set[int] = set()
"""Ports free_port() returned in this test run: never returned twice, so that a port a test
handed to a peer (which binds it later, or again after a restart) is not given to another."""


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP now and not handed out before in this run.

    The probe sockets are closed before the peer binds the port, so the kernel could give it
    to someone else meanwhile; within this process the set above rules that out, and the
    kernel hands out ephemeral ports in a cycle, so an outside process rarely takes it."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port in _HANDED_OUT:
            continue
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as check:
            try:
                check.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
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


async def listening(port: int, kind: str = "udp", timeout: float = 10.0) -> None:
    """Wait until a socket is bound to ``port`` on this machine (read from /proc/net, Linux):
    a peer sent to before it binds answers with ICMP port unreachable, which the bot rightly
    takes as a failure (RFC 3261 §18.4)."""
    tables = [Path(f"/proc/net/{kind}"), Path(f"/proc/net/{kind}6")]
    wanted = f":{port:04X}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for table in tables:
            lines = table.read_text().splitlines()[1:] if table.exists() else []
            if any(line.split()[1].endswith(wanted) for line in lines):
                return
        await asyncio.sleep(0.02)  # polling the kernel's table until a deadline
    raise AssertionError(f"nothing bound {kind} port {port} within {timeout} s")


def module_path() -> str:
    """Where Debian puts Kamailio's modules."""
    found = glob.glob("/usr/lib/*/kamailio/modules") + glob.glob("/usr/lib/kamailio/modules")
    if not found:
        pytest.fail(f"kamailio modules not found; run: {INSTALL}", pytrace=False)
    return found[0]


async def wait_for_options(peer: Peer, alive: Callable[[], bool], timeout: float = 20.0) -> bool:
    """True once ``peer`` answers OPTIONS with 200; False when ``alive()`` turns false (the
    process exited) or ``timeout`` seconds pass. Readiness without sleeps as guesses."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    timers = TimerConfig(t1=0.1, t2=0.4, t4=0.5)
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=timers)) as probe:
        while loop.time() < deadline and alive():
            ping = Request("OPTIONS", parse_uri(f"sip:{peer.host}:{peer.port}"), Headers.of(
                ("From", f"<sip:probe@example.test>;tag={new_tag()}"),
                ("To", f"<sip:{peer.host}:{peer.port}>"), ("Call-ID", new_tag()),
                ("CSeq", "1 OPTIONS")))  # fmt: skip
            if (await probe.request(ping, destination=peer)).status == 200:
                return True
            await asyncio.sleep(0.2)
    return False


@pytest.fixture
async def processes() -> AsyncIterator[list[Process]]:
    """Processes registered here are stopped after the test, whatever happens."""
    started: list[Process] = []
    yield started
    for process in started:
        await process.stop()
