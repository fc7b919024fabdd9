"""Linphone's console client (Debian linphone-cli 5.1.65: ``linphonec``) driven on its stdin,
its output read as it comes. See ../shared/PEERS.md for the settings it needs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from pathlib import Path

from tests.peers.conftest import require

RECEIVED = "Message received from "
# liblinphone's ChatMessage::State: the message the user sent was displayed by the recipient
DISPLAYED = 7


def linphonerc(folder: Path, bot_port: int, *, cpim: bool) -> Path:
    """An account for alice on the bot's embedded registrar. The route names the bot's
    address, else Linphone looks example.test up in DNS."""
    bot = f"sip:127.0.0.1:{bot_port};transport=udp"
    extra = "cpim_in_basic_chat_rooms_enabled=1\n" if cpim else ""
    rc = folder / "linphonerc"
    rc.write_text(
        "[sip]\nsip_port=-1\nsip_tcp_port=0\nsip_tls_port=0\nbind_address=127.0.0.1\n"
        "default_proxy=0\n\n"
        f"[proxy_0]\nreg_proxy=<{bot}>\nreg_route=<{bot};lr>\n"
        "reg_identity=sip:alice@example.test\nreg_expires=600\nreg_sendregister=1\n"
        f"realm=example.test\n{extra}\n"
        f"[proxy_default_values]\n{extra}\n"
        "[auth_info_0]\nusername=alice\npasswd=alice-demo\nrealm=example.test\n"
        "domain=example.test\n\n"
        f"[storage]\nuri={folder / 'linphone.db'}\n"
    )
    return rc


class Linphonec:
    def __init__(self, proc: asyncio.subprocess.Process, folder: Path):
        self.proc = proc
        self.folder = folder
        self.output = ""
        self._more = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, folder: Path, rc: Path) -> Linphonec:
        home = folder / "home"
        home.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "XDG_DATA_HOME": str(home),
            "TERM": "dumb",
        }
        proc = await asyncio.create_subprocess_exec(
            require("linphonec"), "-c", str(rc),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        return cls(proc, folder)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            self.output += chunk.decode("utf-8", "replace")
            self._more.set()

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def expect(self, pattern: str, *, count: int = 1, timeout: float = 15.0) -> str:
        """Wait until ``pattern`` (a regex) has appeared ``count`` times in the output."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := re.findall(pattern, self.output)) < count:
            if loop.time() > deadline or self.proc.returncode is not None:
                raise AssertionError(f"linphonec never printed {pattern!r}:\n{self.output[-3000:]}")
            self._more.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._more.wait(), 0.5)
        return found[-1]

    async def register(self) -> None:
        """Poll ``status register`` until Linphone says it is registered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while "registered, identity=" not in self.output:
            if loop.time() > deadline:
                raise AssertionError(f"linphonec did not register:\n{self.output[-3000:]}")
            await self.send("status register")
            with contextlib.suppress(AssertionError):
                await self.expect("registered, identity=", timeout=1.0)

    def replies(self) -> list[str]:
        """The messages it printed as received, each up to the next prompt."""
        parts = self.output.split(RECEIVED)[1:]
        return [part.split("linphonec>")[0] for part in parts]

    async def quit(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.send("quit")
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._reader

    def sent_message_states(self) -> list[int]:
        """The states of the messages this Linphone sent, from its chat database."""
        with contextlib.closing(sqlite3.connect(self.folder / "linphone.db")) as db:
            rows = db.execute(
                "SELECT state FROM conference_chat_message_event WHERE direction = 1"
            ).fetchall()
        return [int(state) for (state,) in rows]
