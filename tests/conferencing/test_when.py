"""The times and durations `schedule` understands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.conferencing.when import WhenError, parse_duration, parse_when

HELSINKI = ZoneInfo("Europe/Helsinki")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 14:00 in Helsinki


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 2h", NOW + timedelta(hours=2)),
        ("in 90m", NOW + timedelta(minutes=90)),
        ("16:30", datetime(2026, 11, 25, 16, 30, tzinfo=HELSINKI)),
        ("09:00", datetime(2026, 11, 26, 9, 0, tzinfo=HELSINKI)),  # passed today: tomorrow
        ("today 18:00", datetime(2026, 11, 25, 18, 0, tzinfo=HELSINKI)),
        ("tomorrow", datetime(2026, 11, 26, 9, 0, tzinfo=HELSINKI)),
        ("Tomorrow 7:15", datetime(2026, 11, 26, 7, 15, tzinfo=HELSINKI)),
        ("2026-12-01T10:00", datetime(2026, 12, 1, 10, 0, tzinfo=HELSINKI)),
        ("2026-12-01T10:00+00:00", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_when(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW, HELSINKI) == expected


@pytest.mark.parametrize(("text", "minutes"), [("30m", 30), ("1h", 60), ("1h30m", 90), ("45", 45)])
def test_duration(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("bad", ["", "someday", "24:00", "today 9", "in soon"])
def test_bad_times_say_what_would_do(bad: str) -> None:
    with pytest.raises(WhenError, match="try"):
        parse_when(bad, NOW, HELSINKI)


@pytest.mark.parametrize("bad", ["0", "25h", "forever", "h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(WhenError):
        parse_duration(bad)
