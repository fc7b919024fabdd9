"""Issue 18 item 1: ``/readyz`` of ``sipbot run`` in external mode follows its real peers - a
Kamailio as its registrar and a PostgreSQL as its store: 503 naming the check while either is
stopped, 200 again once it is back. /readyz is polled against a deadline, never slept on."""

from __future__ import annotations

import asyncio
import glob
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conferencing.conftest import _as_postgres
from tests.peers.conftest import Process, free_port

from .conftest import RunningBot, StartBot
from .test_kamailio import start_kamailio

DEADLINE = 20.0
"""Seconds /readyz may take to follow a peer: the registrar's loss shows at the next
keep-alive probe (0.5 s apart, each waiting 1 s), its return at the re-REGISTER after it."""


class Postgres:
    """A PostgreSQL server of this test's own (Debian ``postgresql``), stopped and started
    again on the same port; a trusted user ``sipbot``."""

    def __init__(self, root: Path):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        assert found, "PostgreSQL is not installed; run: apt-get install -y postgresql"
        self.bin = Path(found[-1]).parent
        self.root, self.data, self.sockets = root, root / "data", root / "sockets"
        self.sockets.mkdir()
        self.port = free_port(socket.SOCK_STREAM)
        for path in (root, self.sockets):
            shutil.chown(path, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "sipbot", "--auth=trust")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://sipbot@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off"
        log = str(self.root / "server.log")
        # -w: pg_ctl waits until the server accepts connections
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-o", options, "-l", log,
                  "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(_as_postgres([str(self.bin / tool), *args]), capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert done.returncode == 0, f"{tool}: {done.stdout}{done.stderr}"


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    # not under pytest's private temporary directory: the postgres user must reach it
    server = Postgres(Path(tempfile.mkdtemp(prefix="sipbot-readyz-")))
    server.start()
    yield server
    stop = [str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop"]
    subprocess.run(_as_postgres(stop), capture_output=True, check=False)
    shutil.rmtree(server.root, ignore_errors=True)


async def readyz(port: int, status: int, bot: RunningBot) -> dict[str, Any]:
    """Poll /readyz until it answers ``status`` (its JSON); fail at the DEADLINE."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    seen: list[tuple[int, Any]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while loop.time() < deadline:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                body = await response.json()
                if response.status == status:
                    return dict(body)
                if not seen or seen[-1] != (response.status, body):
                    seen.append((response.status, body))
            await asyncio.sleep(0.1)  # the poll's pace, not a synchronisation: the deadline is
    raise AssertionError(f"/readyz never answered {status}: {seen}\n{bot.text}")


async def scrape(port: int) -> dict[str, float]:
    """/metrics as series -> value."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    lines = (line.rpartition(" ") for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, _, value in lines}


async def test_readyz_follows_the_registrar_and_the_store(
    start_bot: StartBot, processes: list[Process], tmp_path: Path, postgres: Postgres
) -> None:
    kamailio_port, bot_port, admin_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    kamailio = await start_kamailio(kamailio_port, bot_port, tmp_path, processes)
    bot = await start_bot(
        port=bot_port,
        sip={"mode": "external", "trusted_proxies": ["127.0.0.1"]},
        registrar={
            "server": f"sip:127.0.0.1:{kamailio_port}",
            "username": "bot",
            "password": "bot-secret",
            "keepalive": 0.5,
            "retry_min": 0.2,
            "retry_max": 1.0,
        },
        conferences={"database_url": postgres.url},
        admin={"port": admin_port},  # on by default; no token needed for the probes
    )
    await bot.event("admin.started", port=admin_port)  # it opens after SIP answers OPTIONS
    ready = await readyz(admin_port, 200, bot)
    assert ready == {"ready": True, "checks": ["listeners", "registration", "store"],
                     "failing": {}}  # fmt: skip

    await kamailio.stop()
    failing = (await readyz(admin_port, 503, bot))["failing"]
    assert failing == {"registration": "the registrar does not answer"}
    await start_kamailio(kamailio_port, bot_port, tmp_path, processes)
    await readyz(admin_port, 200, bot)
    # registered once, then again when the registrar came back (a refresh: the bot never
    # stopped counting itself registered: RFC 3261 §10.2.4 lets it renew at any time)
    metrics = await scrape(admin_port)
    assert metrics['sipbot_registration_requests_total{outcome="registered"}'] == 1
    assert metrics['sipbot_registration_requests_total{outcome="refreshed"}'] >= 1
    assert metrics["sipbot_registered_with_server"] == 1

    postgres.stop()
    failing = (await readyz(admin_port, 503, bot))["failing"]
    assert list(failing) == ["store"], failing
    assert "sipbot@" not in failing["store"]  # the database URL stays out of the answer
    postgres.start()
    await readyz(admin_port, 200, bot)
