"""Logging for the whole suite goes through the bot's own set-up, with loggers left
re-configurable so that tests can capture events (``structlog.testing.capture_logs``); async
tests run on the event loop the bot ships with."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Mapping

import pytest
import uvloop

from bot import eventloop
from bot.config import Config, LoggingConfig
from bot.logs import configure

configure(LoggingConfig(level="INFO", format="json"), stream=sys.stderr, cache=False)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LOOPS: dict[str, LoopFactory] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.SelectorEventLoop,
}
"""The loops ``runtime.event_loop`` can name, for ``mark.asyncio(loop_factories=[...])``."""
SHIPPED = "asyncio" if eventloop.loop_factory(Config().runtime.event_loop) is None else "uvloop"
"""The loop ``sipbot run`` serves on with the default settings."""


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    """pytest-asyncio: an async test runs on the loop ``sipbot run`` serves on by default
    (:data:`SHIPPED`); one marked ``asyncio(loop_factories=[...])`` runs on each loop it names."""
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "loop_factories" in marker.kwargs:
        return LOOPS
    return {SHIPPED: LOOPS[SHIPPED]}


@pytest.fixture(autouse=True, scope="session")
def _data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Bots the tests start keep their data directory (database, control socket) out of the
    home directory: ``$XDG_DATA_HOME`` (bot.datadir) points into the session's temporary dir."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-home")))
        yield
