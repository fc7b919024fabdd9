"""Logging for the whole suite goes through the bot's own set-up, with loggers left
re-configurable so that tests can capture events (``structlog.testing.capture_logs``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from bot.config import LoggingConfig
from bot.logs import configure

configure(LoggingConfig(level="INFO", format="json"), stream=sys.stderr, cache=False)


@pytest.fixture(autouse=True, scope="session")
def _data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Bots the tests start keep their data directory (database, control socket) out of the
    home directory: ``$XDG_DATA_HOME`` (bot.datadir) points into the session's temporary dir."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-home")))
        yield
