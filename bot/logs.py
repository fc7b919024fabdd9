"""Logging: structlog, JSON lines when not on a terminal, readable lines on one.

The bot's own events go straight from structlog to the stream (fast: one line per command at
thousands of commands a second); the standard library's loggers (asyncio, libraries) go
through the same renderer, so the output is one stream in one format. Event names are
past-tense dotted words (``im.command.answered``) with the context as fields.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, cast

import structlog
from structlog.contextvars import _CONTEXT_VARS

from bot.config import LoggingConfig

if TYPE_CHECKING:
    c_make_encoder: Any
    encode_basestring_ascii: Any
else:
    from json.encoder import c_make_encoder, encode_basestring_ascii


def configure(settings: LoggingConfig, stream: TextIO | None = None, *, cache: bool = True) -> None:
    """Set up logging for the process. ``cache=False`` keeps loggers re-configurable (tests)."""
    out = stream if stream is not None else sys.stderr
    as_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    global _writer
    _flush_at_exit()
    writer = _writer = TurnWriter(out)
    renderer: structlog.types.Processor = (
        _JsonLine() if as_json else structlog.dev.ConsoleRenderer()
    )
    stamper = _UtcStamper()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        stamper,
    ]
    structlog.configure(
        processors=[_Line(stamper, renderer)],
        wrapper_class=_bound_logger_class(getattr(logging, settings.level)),
        logger_factory=writer.logger,
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(writer)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
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


def resolved(logger: Any) -> Any:
    """``logger`` (a module's ``structlog.get_logger(...)``) as structlog's lazy proxy resolves
    it at its first use when loggers are cached (as ``configure`` sets them, but for tests):
    resolved now, so that a line written for every command does not go through the proxy
    each time. When loggers are not cached, the proxy itself (a reconfiguration shows)."""
    if structlog.get_config()["cache_logger_on_first_use"]:
        return logger.bind()
    return logger


FLUSH_INTERVAL = 0.01
"""Seconds between two writes of the log stream while the event loop runs: each is a system
call (stderr is unbuffered or line-buffered), a line at a time cost about a tenth of an IM
command's CPU."""


class TurnWriter:
    """Where every log line goes: structlog's ``WriteLogger`` (``msg``) and the standard
    library's handler (``write``, ``flush``) alike, so the lines keep their order. Lines are
    kept and written to ``file`` in one write at the end of the event-loop turn, at most once
    per ``interval``: at thousands of commands a second one system call carries many lines,
    and none waits longer than ``interval`` plus a turn. Outside a running loop (start-up,
    shutdown, another thread) a line is written at once, unless a running loop's turn is to
    write the lines kept already: then it joins them."""

    def __init__(self, file: TextIO, interval: float = FLUSH_INTERVAL):
        self._file = file
        self._interval = interval
        self._lines: list[str] = []
        self._lock = threading.Lock()
        """Lines also come from other threads (the standard library's loggers)."""
        self._due: asyncio.AbstractEventLoop | None = None
        """The loop whose turn will write the lines kept, if one will."""
        self._written = float("-inf")

    def logger(self, *_: Any) -> TurnWriter:
        """The logger factory: every logger writes through this one writer."""
        return self

    def msg(self, message: str) -> None:
        with self._lock:  # as write() does (one call fewer: a line per command)
            self._lines.append(message + "\n")
        due = self._due
        if due is not None and due.is_running():
            # that loop's turn writes it (asking which loop runs here would cost a getpid(2)
            # each line: CPython checks the loop was not inherited across a fork)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._due is loop:
            return
        self._due = loop  # a flush left pending by a loop that ended no longer holds lines back
        wait = self._written + self._interval - loop.time()
        if wait > 0:
            loop.call_later(wait, self._flush_due, loop)
        else:
            loop.call_soon(self._flush_due, loop)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg

    def write(self, text: str) -> None:
        with self._lock:
            self._lines.append(text)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            self._file.write("".join(lines))
        self._file.flush()

    def _flush_due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = None
        self._written = loop.time()
        self.flush()


_writer: TurnWriter | None = None
"""The writer of the configured logging, flushed at exit: lines of the loop's last turn may
still wait for it."""


@atexit.register
def _flush_at_exit() -> None:
    """Also when logging is configured again (tests): the old stream may be closed by then."""
    if _writer is not None:
        with contextlib.suppress(ValueError, OSError):
            _writer.flush()


class _UtcStamper:
    """``structlog.processors.TimeStamper(fmt="iso", utc=True)``, the very same text
    (``2026-11-26T06:23:22.123456Z``; ``...:22Z`` on the second), with the date and time of day
    formatted once a second instead of on every line: a tenth of the cost per log line."""

    __slots__ = ("_second",)

    def __init__(self) -> None:
        self._second = (-1, "")
        """(Unix second, its ISO text without zone): one tuple, swapped whole, so that a line
        logged from another thread (the standard library's loggers) never mixes two seconds."""

    def __call__(self, logger: Any, name: str, event_dict: Any) -> Any:
        second, micro = divmod(time.time_ns() // 1000, 1_000_000)
        cached, text = self._second
        if second != cached:
            text = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()
            self._second = (second, text)
        # datetime.isoformat leaves the microseconds out when they are zero
        event_dict["timestamp"] = f"{text}.{micro:06d}Z" if micro else f"{text}Z"
        return event_dict


def _fallback(value: Any) -> Any:
    """What JSON cannot hold as it is: its ``__structlog__()``, else its repr (as structlog's
    own JSONRenderer does)."""
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


_LEVELS = {"warn": "warning", "exception": "error"}
"""The level of a logger method's name where it is not the name itself, as structlog's
``add_log_level`` names it (``warn`` is the standard library's old alias; ``exception`` is
``error`` with the exception)."""


class _Line:
    """The processors of the bot's own lines in one: structlog's ``merge_contextvars`` and
    ``add_log_level``, the stamp, ``format_exc_info`` (for the lines that carry ``exc_info``,
    those of ``log.exception``) and the renderer, in that order - the same event and the same
    text as that chain gives, in a third of its calls (a line per command)."""

    __slots__ = ("_stamp", "_render")

    def __init__(self, stamp: _UtcStamper, render: structlog.types.Processor):
        self._stamp = stamp
        self._render = render

    def __call__(self, logger: Any, name: str, event_dict: Any) -> Any:
        if _CONTEXT_VARS:  # only once a structlog context variable was ever bound
            event_dict = structlog.contextvars.merge_contextvars(logger, name, event_dict)
        event_dict["level"] = _LEVELS.get(name, name)
        event_dict = self._stamp(logger, name, event_dict)
        if "exc_info" in event_dict:
            event_dict = structlog.processors.format_exc_info(logger, name, event_dict)
        return self._render(logger, name, event_dict)


def _bound_logger_class(level: int) -> type[Any]:
    """structlog's filtering logger for ``level`` with an ``info`` of one frame (the level of
    the line of every command) where it can be: a logger without bound context, an event
    without %-arguments, and the processors this module configures (one :class:`_Line`,
    whose result is the line). Then the event is what structlog makes it - the fields, then
    ``event`` - and the line goes to the same logger method; anything else takes structlog's
    own path (tests capturing logs, say). The processors are structlog's list, which
    ``capture_logs`` changes in place."""
    base: Any = structlog.make_filtering_bound_logger(level)
    if level > logging.INFO:
        return cast(type[Any], base)  # its info is a no-op already
    structlog_info = base.info

    class Logger(base):  # type: ignore[misc]
        def info(self, event: str, *args: Any, **kw: Any) -> Any:
            # read each time: capture_logs (structlog.testing) changes the list in place
            processors = self._processors
            if args or self._context or len(processors) != 1 or type(processors[0]) is not _Line:
                return structlog_info(self, event, *args, **kw)
            kw["event"] = event
            return self._logger.info(processors[0](self._logger, "info", kw))

        msg = info

    Logger.__name__ = Logger.__qualname__ = base.__name__
    return Logger


class _JsonLine:
    """``structlog.processors.JSONRenderer()``: ``json.dumps(event_dict, default=...)`` - the
    same text - without its two Python frames per line and without making a C encoder for
    each line: ``JSONEncoder.encode`` runs the C encoder it makes, as here, for any dict (pure
    Python when there is no C encoder). The encoder is made once; its circular-reference
    markers are empty again after every line it finished, and a line it failed (a circular
    value raises ValueError, as json.dumps does) gets the next line a fresh encoder."""

    __slots__ = ("_encode",)

    _JSON = json.JSONEncoder(default=_fallback)

    def __init__(self) -> None:
        self._encode = self._encoder()

    def _encoder(self) -> Callable[[Any, int], Any]:
        json_ = self._JSON
        if c_make_encoder is None:
            return lambda value, _: (json_.encode(value),)
        return cast(
            Callable[[Any, int], Any],
            c_make_encoder(
                {},  # markers: a circular value raises, as json.dumps does
                json_.default,
                encode_basestring_ascii,
                None,
                json_.key_separator,
                json_.item_separator,
                json_.sort_keys,
                json_.skipkeys,
                json_.allow_nan,
            ),
        )

    def __call__(self, logger: Any, name: str, event_dict: Any) -> str:
        try:
            return "".join(self._encode(event_dict, 0))
        except BaseException:
            self._encode = self._encoder()  # the markers may still hold the failed line's
            raise
