"""Logging: structlog, JSON lines when not on a terminal, readable lines on one.

The standard library's loggers (used by the SIP transport) go through the same renderer, so
the output is one stream in one format. Event names are past-tense dotted words
(``im.command.answered``) with the context as fields.
"""

from __future__ import annotations

import logging
import sys

import structlog

from bot.config import LoggingConfig


def configure(settings: LoggingConfig, stream: object = None) -> None:
    out = stream if stream is not None else sys.stderr
    as_json = settings.format == "json" or (
        settings.format == "auto" and not getattr(out, "isatty", lambda: False)()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
