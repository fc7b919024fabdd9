"""Logging for the whole suite goes through the bot's own set-up (structlog over the standard
library), so caplog sees every event the bot logs."""

from __future__ import annotations

import sys

from bot.config import LoggingConfig
from bot.logs import configure

configure(LoggingConfig(level="INFO", format="json"), stream=sys.stderr)
