"""A peer driven as a person drives it: lines typed on its stdin, its output read as it comes.

It runs in a session of its own with ``HOME`` and the XDG folders in a test folder, so that it
never writes into the real home, and ``TERM=dumb``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from tests.peers.conftest import require


class Console:
    def __init__(self, proc: asyncio.subprocess.Process, name: str, cwd: Path):
        self.proc = proc
        self.name = name
        self.cwd = cwd
        self.output = ""
        self._more = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, argv: Sequence[str], *, cwd: Path, home: Path) -> Self:
        """Start ``argv`` (its program looked up on PATH) in ``cwd`` with ``home`` as HOME."""
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "TERM": "dumb",
        }
        proc = await asyncio.create_subprocess_exec(
            require(argv[0]), *argv[1:], cwd=cwd, env=env, start_new_session=True,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(proc, argv[0], cwd)

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
        await self.wait_until(
            lambda: len(re.findall(pattern, self.output)) >= count, f"{pattern!r}", timeout
        )
        return str(re.findall(pattern, self.output)[-1])

    async def wait_until(self, done: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        """Wait until ``done()`` holds, checked whenever output arrives; an assertion naming
        ``what`` when ``timeout`` seconds pass or the program exits first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            if loop.time() > deadline or self.proc.returncode is not None:
                raise AssertionError(f"{self.name} never printed {what}:\n{self.tail}")
            self._more.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._more.wait(), 0.5)

    async def close(self, command: str) -> int:
        """Type ``command`` (its quit command) and wait for the exit; its exit status (killed
        after 15 s, then an assertion fails)."""
        with contextlib.suppress(ConnectionError):
            await self.send(command)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.name} did not quit:\n{self.tail}") from None
        finally:
            await self._reader
        return code

    @property
    def tail(self) -> str:
        return self.output[-3000:]
