"""Logging for the whole suite goes through the bot's own set-up, with loggers left
re-configurable so that tests can capture events (``structlog.testing.capture_logs``)."""

from __future__ import annotations

import sys

from bot.config import LoggingConfig
from bot.logs import configure

configure(LoggingConfig(level="INFO", format="json"), stream=sys.stderr, cache=False)
