"""The config watcher (bot.config.watch) follows the file however it is replaced: written in
place, renamed over (as editors save), or through a swapped symlink (as Kubernetes updates a
ConfigMap volume); other files in the folder, and saves that change nothing, reload nothing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.config.watch import ConfigWatcher


class Seen:
    """The file's content at each call of the watcher's callback."""

    def __init__(self, path: Path):
        self.path = path
        self.contents: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self) -> None:
        self.contents.put_nowait(self.path.read_text())

    async def next(self) -> str:
        return await asyncio.wait_for(self.contents.get(), 5)


Watch = Callable[[Path], Awaitable[Seen]]
"""Start a watcher of the file, ready: what it saw."""


@pytest.fixture
async def watching() -> AsyncIterator[Watch]:
    watchers: list[ConfigWatcher] = []

    async def start(path: Path) -> Seen:
        seen = Seen(path)
        watcher = ConfigWatcher(path, seen)
        watchers.append(watcher)
        watcher.start()
        await asyncio.wait_for(watcher.ready.wait(), 5)
        return seen

    yield start
    for watcher in watchers:
        await watcher.close()


async def test_an_edit_in_place_and_a_rename_over_the_file_are_seen(
    tmp_path: Path, watching: Watch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("features: {help: true}\n")
    seen = await watching(path)
    loop = asyncio.get_running_loop()
    began = loop.time()
    path.write_text("features: {help: false}\n")
    assert await seen.next() == "features: {help: false}\n"
    assert loop.time() - began < 2.0

    # an unrelated file, then a save of the same content: nothing; then an editor's save
    (tmp_path / "bot.db").write_bytes(b"x" * 100)
    path.write_text("features: {help: false}\n")
    saved = tmp_path / ".config.yaml.swp"
    saved.write_text("features: {status: false}\n")
    saved.replace(path)
    assert await seen.next() == "features: {status: false}\n"
    assert seen.contents.empty()


async def test_a_configmap_symlink_swap_is_seen(tmp_path: Path, watching: Watch) -> None:
    """The layout of a Kubernetes ConfigMap volume: config.yaml -> ..data/config.yaml,
    ..data -> ..<timestamp>; an update writes a new ..<timestamp> and renames a new ..data
    symlink over the old one."""
    volume = tmp_path / "volume"
    first = volume / "..2026_11_26_01"
    first.mkdir(parents=True)
    (first / "config.yaml").write_text("features: {help: true}\n")
    (volume / "..data").symlink_to(first.name)
    path = volume / "config.yaml"
    path.symlink_to("..data/config.yaml")
    seen = await watching(path)

    second = volume / "..2026_11_26_02"
    second.mkdir()
    (second / "config.yaml").write_text("features: {help: false}\n")
    (volume / "..data_tmp").symlink_to(second.name)
    os.replace(volume / "..data_tmp", volume / "..data")
    assert await seen.next() == "features: {help: false}\n"
