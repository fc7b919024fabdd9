"""The log lines the bot writes (bot.logs): one JSON object a line, the event's fields then
``event``, ``level`` and an ISO 8601 UTC ``timestamp`` - whatever the standard library's loggers
or structlog's emitted them - the same text as structlog's own TimeStamper gave."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from bot import logs
from bot.config import LoggingConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure(LoggingConfig(level="INFO", format="json"), out, cache=False)
    yield out
    logs.configure(LoggingConfig(level="INFO", format="json"), sys.stderr, cache=False)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_keeps_its_fields_then_event_level_and_timestamp(stream: io.StringIO) -> None:
    before = datetime.now(UTC)
    structlog.get_logger("bot.test").info(
        "im.command.answered", call_id="c1", sender="alice@example.test", command="help",
        outcome="ok", ms=0.2,
    )  # fmt: skip
    after = datetime.now(UTC)
    [line] = lines(stream)
    assert list(line) == [
        "call_id", "sender", "command", "outcome", "ms", "event", "level", "timestamp"
    ]  # fmt: skip
    assert line["event"] == "im.command.answered" and line["level"] == "info"
    stamp = str(line["timestamp"])
    assert stamp.endswith("Z")
    assert before.replace(microsecond=0) <= datetime.fromisoformat(stamp) <= after


def test_standard_library_lines_are_the_same_json(stream: io.StringIO) -> None:
    logging.getLogger("asyncio").warning("slow callback %s", "x")
    [line] = lines(stream)
    assert line["event"] == "slow callback x" and line["level"] == "warning"
    assert line["logger"] == "asyncio" and str(line["timestamp"]).endswith("Z")


def test_an_exception_is_rendered_in_the_line(stream: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("bot.test").exception("im.task.failed")
    [line] = lines(stream)
    assert line["level"] == "error" and "ValueError: boom" in str(line["exception"])


@pytest.mark.parametrize(
    "nanoseconds",
    [
        1_795_000_000_123_456_789,  # microseconds in the middle of a second
        1_795_000_000_000_000_999,  # none: isoformat leaves them out
        1_795_000_000_000_001_000,  # one
        1_795_000_000_999_999_999,  # the last of the second
        0,  # the epoch
    ],
)
def test_the_stamp_is_structlogs_iso_utc_text(
    nanoseconds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamper = logs._UtcStamper()
    monkeypatch.setattr(logs.time, "time_ns", lambda: nanoseconds)
    seconds, micro = divmod(nanoseconds // 1000, 1_000_000)
    expected = (
        datetime.fromtimestamp(seconds, UTC)
        .replace(microsecond=micro)
        .isoformat()
        .replace("+00:00", "Z")
    )
    assert stamper(None, "info", {})["timestamp"] == expected
    # the second formatted once is reused for the next line, and a new second is formatted
    assert stamper(None, "info", {})["timestamp"] == expected
    monkeypatch.setattr(logs.time, "time_ns", lambda: nanoseconds + 1_000_000_000)
    later = datetime.fromtimestamp(seconds + 1, UTC).replace(microsecond=micro)
    assert stamper(None, "info", {})["timestamp"] == later.isoformat().replace("+00:00", "Z")


class Opaque:
    """A value JSON cannot hold: rendered by its repr."""

    def __repr__(self) -> str:
        return "<opaque>"


STAMP = re.compile(r'"timestamp": "[^"]*"')


@pytest.mark.parametrize(
    ("method", "fields", "bound"),
    [
        ("info", {"call_id": "c1", "sender": "alice@example.test", "ms": 0.2}, {}),
        ("warning", {"status": 481, "what": "reply"}, {}),
        ("warn", {"odd": Opaque(), "text": 'Grüße "quoted"\n', "nan": float("nan")}, {}),
        ("exception", {"sender": "bob@example.test"}, {}),
        ("info", {"call_id": "c2"}, {"request": "r1", "call_id": "bound"}),
    ],
)
def test_a_line_is_the_text_of_structlogs_own_processors(
    method: str, fields: dict[str, object], bound: dict[str, object]
) -> None:
    """bot.logs runs structlog's processors as one (fewer calls a line): the same text as
    merge_contextvars, add_log_level, TimeStamper (iso, UTC), format_exc_info and
    JSONRenderer give, the stamp aside (its own test above)."""
    ours = logs._Line(logs._UtcStamper(), logs._JsonLine())
    chain: list[Callable[[object, str, dict[str, object]], object]] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
    with structlog.contextvars.bound_contextvars(**bound):
        try:
            raise ValueError("boom")
        except ValueError:
            extra = {"exc_info": True} if method == "exception" else {}
            event = {**fields, **extra, "event": "im.command.answered"}
            line = str(ours(None, method, dict(event)))
            expected: object = dict(event)
            for processor in chain:
                expected = processor(None, method, expected)  # type: ignore[arg-type]
    assert STAMP.sub("", line) == STAMP.sub("", str(expected))
    assert STAMP.search(line)


class CountingStream(io.StringIO):
    """A stream that counts its flushes (each one a system call on a real file)."""

    flushes = 0
    on_flush: Callable[[], None] = staticmethod(lambda: None)

    def flush(self) -> None:
        self.flushes += 1
        self.on_flush()
        super().flush()


async def test_lines_are_flushed_at_the_end_of_the_turn_and_at_most_once_per_interval() -> None:
    out = CountingStream()
    writer = logs.TurnWriter(out, interval=1.0)
    for n in range(5):
        writer.msg(f"line {n}")
    assert out.getvalue() == ""  # kept until the turn ends
    await asyncio.sleep(0)
    assert out.flushes == 1 and out.getvalue().count("\n") == 5
    flushed = asyncio.Event()
    out.on_flush = flushed.set
    for n in range(5):  # five turns within the interval: one flush for them all
        writer.msg(f"later {n}")
        await asyncio.sleep(0)
    assert out.flushes == 1
    await asyncio.wait_for(flushed.wait(), 5)
    assert out.flushes == 2 and out.getvalue().count("\n") == 10


def test_outside_a_loop_each_line_is_flushed() -> None:
    out = CountingStream()
    logs.configure(LoggingConfig(level="INFO", format="json"), out, cache=False)
    try:
        structlog.get_logger("bot.test").info("bot.stopped")
        structlog.get_logger("bot.test").info("bot.stopped")
        assert out.flushes == 2 and len(lines(out)) == 2
    finally:
        logs.configure(LoggingConfig(level="INFO", format="json"), sys.stderr, cache=False)


def test_a_library_line_flushes_the_bots_lines_before_it_in_order() -> None:
    out = CountingStream()
    logs.configure(LoggingConfig(level="INFO", format="json"), out, cache=False)

    async def both() -> None:
        structlog.get_logger("bot.test").info("im.command.answered")
        logging.getLogger("asyncio").warning("slow callback")  # its handler flushes at once
        assert [line["event"] for line in lines(out)] == ["im.command.answered", "slow callback"]

    try:
        asyncio.run(both())
    finally:
        logs.configure(LoggingConfig(level="INFO", format="json"), sys.stderr, cache=False)


def test_lines_still_waiting_when_the_loop_ends_are_written_at_exit() -> None:
    script = (
        "import asyncio, structlog\n"
        "from bot.config import LoggingConfig\n"
        "from bot.logs import configure\n"
        "configure(LoggingConfig(level='INFO', format='json'))\n"
        "async def main():\n"
        "    log = structlog.get_logger('bot.test')\n"
        "    log.info('first')\n"
        "    await asyncio.sleep(0)\n"
        "    log.info('last')  # its write waits for the interval: the loop ends first\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["event"] for line in done.stderr.splitlines()] == ["first", "last"]


def test_a_flush_left_pending_by_an_ended_loop_holds_no_line_back() -> None:
    out = CountingStream()
    writer = logs.TurnWriter(out, interval=60.0)

    async def two_lines() -> None:
        writer.msg("first")
        await asyncio.sleep(0)
        writer.msg("second")  # its write waits for the interval: the loop ends first

    asyncio.run(two_lines())
    writer.msg("after the loop")  # written at once, with what was waiting
    assert out.getvalue().splitlines() == ["first", "second", "after the loop"]
    asyncio.run(two_lines())  # a new loop: its lines wait for the interval too, then end
    writer.msg("end")
    assert out.getvalue().splitlines()[3:] == ["first", "second", "end"]


def test_a_resolved_logger_skips_the_proxy_only_when_loggers_are_cached() -> None:
    out = io.StringIO()
    logs.configure(LoggingConfig(level="INFO", format="json"), out)  # as `sipbot run` does
    try:
        proxy = structlog.get_logger("bot.test")
        hot = logs.resolved(proxy)
        assert hot is not proxy and hot is proxy.bind()  # what the proxy itself keeps
        hot.info("im.command.answered", call_id="c1")
        [line] = lines(out)
        assert list(line) == ["call_id", "event", "level", "timestamp"]
        logs.configure(LoggingConfig(level="INFO", format="json"), out, cache=False)
        proxy = structlog.get_logger("bot.test")
        assert logs.resolved(proxy) is proxy  # a reconfiguration (tests) shows at once
    finally:
        logs.configure(LoggingConfig(level="INFO", format="json"), sys.stderr, cache=False)


def test_info_lines_take_the_short_path_or_structlogs_own_to_the_same_text() -> None:
    """The configured logger's ``info`` skips structlog's frames for a plain line
    (bot.logs._bound_logger_class); bound context and %-arguments take structlog's own path:
    each line is the text structlog's chain gives (stamps aside), and a logger resolved
    before ``capture_logs`` is captured all the same."""
    out = io.StringIO()
    logs.configure(LoggingConfig(level="INFO", format="json"), out)  # loggers cached
    try:
        hot = logs.resolved(structlog.get_logger("bot.test"))
        hot.info("im.command.answered", call_id="c1", ms=0.2)
        hot.bind(call_id="bound").info("im.session.opened", sender="alice@example.test")
        hot.info("slow %s", "callback", where="asyncio")
        chain = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ]
        wanted = []
        for event in (
            {"call_id": "c1", "ms": 0.2, "event": "im.command.answered"},
            {"call_id": "bound", "sender": "alice@example.test", "event": "im.session.opened"},
            {"where": "asyncio", "event": "slow callback"},
        ):
            line: object = event
            for processor in chain:
                line = processor(None, "info", line)  # type: ignore[arg-type]
            wanted.append(STAMP.sub("", str(line)))
        assert [STAMP.sub("", text) for text in out.getvalue().splitlines()] == wanted
        with capture_logs() as captured:
            hot.info("im.command.answered", call_id="c2")
        assert captured == [{"call_id": "c2", "event": "im.command.answered", "log_level": "info"}]
        assert len(out.getvalue().splitlines()) == 3  # captured, not written
    finally:
        logs.configure(LoggingConfig(level="INFO", format="json"), sys.stderr, cache=False)


def test_a_circular_value_fails_its_line_as_json_dumps_does_and_not_the_next() -> None:
    """The JSON encoder is made once (bot.logs._JsonLine): a line it failed halfway must not
    leave the next line refused as circular."""
    render = logs._JsonLine()
    loop: dict[str, object] = {"event": "x"}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular reference"):
        json.dumps(loop)
    failed: dict[str, object] = {"event": "first", "nested": loop}
    with pytest.raises(ValueError, match="Circular reference"):
        render(None, "info", failed)
    del failed["nested"]  # the same dict again, now without the loop: a line like any other
    assert render(None, "info", failed) == json.dumps(failed)
    shared = {"a": 1}
    event = {"event": "next", "one": shared, "two": [shared, shared]}
    assert render(None, "info", event) == json.dumps(event)


async def test_a_line_from_another_thread_joins_those_the_running_loop_will_write() -> None:
    """A standard-library logger's line from a worker thread, while the loop's turn is to write
    the lines kept: written with them, in order, in the one write of that turn."""
    out = CountingStream()
    writer = logs.TurnWriter(out, interval=1.0)
    writer.msg("first")
    worker = threading.Thread(target=writer.msg, args=("from a thread",))
    worker.start()
    worker.join()
    assert out.getvalue() == ""
    await asyncio.sleep(0)
    assert out.getvalue() == "first\nfrom a thread\n" and out.flushes == 1
