"""The local control channel: ``sipbot bans`` and ``sipbot unban`` talk to the running bot.

A Unix stream socket in the data directory (``control/sipbot.sock``), in a directory of mode
0700 and itself 0600: only the bot's own user can open it, so it needs no token and works when
the HTTP admin API is off. One request per line, a JSON object; one JSON object answers it:

    {"command": "bans"}                        -> {"ok": true, "bans": [...]}
    {"command": "unban", "address": "1.2.3.4"} -> {"ok": true} or {"ok": false, "error": ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from bot.datadir import PRIVATE
from bot.services.guard import AuthGuard

log = structlog.get_logger("bot.control")
SOCKET = Path("control") / "sipbot.sock"
"""Where the socket is, under the data directory."""
MAX_REQUEST = 4096
"""Bytes in one request line: the longest is an unban with an IPv6 address."""
IDLE = 10.0
"""Seconds a connection may wait before its request line is complete."""


class ControlError(Exception):
    """The control channel could not be reached or refused the request: said to the user."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET


class ControlChannel:
    """The server side, inside ``sipbot run``."""

    def __init__(self, path: Path, guard: AuthGuard, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.guard = guard
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._inode: int | None = None

    async def start(self) -> bool:
        """Listen; False (logged) when it cannot - another running bot owns the socket, or
        the path is too long or not writable: the bot runs on without ``sipbot bans``."""
        try:
            self.path.parent.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
            os.chmod(self.path.parent, PRIVATE)
            if self.path.exists():
                if _answering(self.path):
                    raise ControlError("another running sipbot uses this data directory")
                self.path.unlink()  # left by a bot that did not stop cleanly
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
            os.chmod(self.path, 0o600)
            self._inode = self.path.stat().st_ino
        except (OSError, ControlError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning("control.unavailable", socket=str(self.path), reason=reason)
            return False
        log.info("control.listening", socket=str(self.path))
        return True

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:  # not a newer bot's socket
                self.path.unlink()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(IDLE):
                line = await reader.readline()
            answer = self.answer(line)
        except (ValueError, TimeoutError):  # a line over MAX_REQUEST, or never a whole line
            answer = {"ok": False, "error": f"send one JSON line of at most {MAX_REQUEST} bytes"}
        with contextlib.suppress(OSError):
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return {"ok": False, "error": 'send {"command": "bans"} or {"command": "unban", ...}'}
        command = request.get("command")
        if command == "bans":
            now = self._clock()
            return {"ok": True, "bans": [ban.describe(now) for ban in self.guard.bans(now)]}
        if command == "unban":
            address = request.get("address")
            if not isinstance(address, str):
                return {"ok": False, "error": "unban needs an address"}
            if not self.guard.lift(address):
                return {"ok": False, "error": f"{address} is not banned"}
            log.info("control.unbanned", address=address)
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {command!r} (bans, unban)"}


def _answering(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


async def ask(data_dir: Path, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """The client side (``sipbot bans``, ``sipbot unban``): one request, its answer."""
    path = socket_path(data_dir)
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 20)
            try:
                writer.write(json.dumps(request).encode() + b"\n")
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(
            f"no running sipbot at {path} (is `sipbot run` running with data directory "
            f"{data_dir}? give the same --data-dir)"
        ) from None
    except PermissionError:
        raise ControlError(f"{path}: only the user running the bot may open it") from None
    except TimeoutError:
        raise ControlError(f"the bot did not answer on {path} within {timeout:g} s") from None
    except OSError as exc:
        raise ControlError(f"{path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(line)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ControlError(f"the bot's answer on {path} was not understood")
    return answer
