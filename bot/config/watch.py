"""Follows the config file: a change of its content calls back (the runtime reloads it).

The file's directory is watched, not the file: editors save by writing a new file and renaming
it over the old one, and Kubernetes updates a ConfigMap by swapping the ``..data`` symlink
the file points through; a watch on the old file would see neither. Changes are debounced and
a batch that leaves the content as it was (a touch, a save without edits) reloads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

import structlog
from watchfiles import Change, awatch

from bot.config.loading import ConfigError

log = structlog.get_logger("bot.config")
DEBOUNCE_MS = 500
"""Changes are gathered for at most this long before the file is read again ..."""
STEP_MS = 100
"""... or until none came for this long: an edit takes effect well within 2 s."""
IDLE_MS = 1000
"""The watch yields to us this often when nothing changes (and the first time: ready)."""


class ConfigWatcher:
    def __init__(self, path: Path, changed: Callable[[], object]):
        self.path = path
        self._changed = changed
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._digest = _digest(path)
        self.ready = asyncio.Event()
        """Set once the directory is watched: changes from then on are seen."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _ours(self, change: Change, path: str) -> bool:
        """The file itself, or Kubernetes' ``..data`` and ``..<timestamp>`` entries."""
        name = Path(path).name
        return name == self.path.name or name.startswith("..")

    async def _run(self) -> None:
        directory = self.path.absolute().parent
        async for changes in awatch(
            directory,
            watch_filter=self._ours,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=self._stop,
            recursive=False,
            rust_timeout=IDLE_MS,
            yield_on_timeout=True,
        ):
            if not self.ready.is_set():
                self.ready.set()
                log.info("config.watching", file=str(self.path))
            if changes:
                self._check()

    def _check(self) -> None:
        digest = _digest(self.path)
        if digest is None:  # between an editor's rename of the old file and the new one
            log.warning("config.file_missing", file=str(self.path))
            return
        if digest == self._digest:
            return
        self._digest = digest
        with contextlib.suppress(ConfigError):  # logged and counted by the reload
            self._changed()


def _digest(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None
