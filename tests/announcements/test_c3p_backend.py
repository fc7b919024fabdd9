"""Automatic announcements with ``conferences.backend: c3p``: the rules that look conferences
up (start, before_end, join, cron aimed at conferences) are refused by check-config, naming
the rule's line; a cron rule aimed at a SIP URI, and a disabled rule, are accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ConfigError, load_config

CRON_URI = {"name": "chime", "when": "cron", "cron": "0 9 * * 1-5", "clip": "chime",
            "target": "sip:lobby@example.test"}  # fmt: skip
START = {"name": "opening", "when": "start", "text": "{subject} starts now."}


def check(tmp_path: Path, backend: str, *rules: dict[str, Any]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "conferences": {"backend": backend},
                "announcements": {"rules": list(rules)},
            },
            sort_keys=False,
        )
    )
    load_config(path)


@pytest.mark.parametrize(
    "rule",
    [
        START,
        {"name": "ten-left", "when": "before_end", "minutes": 10, "text": "ten minutes"},
        {"name": "welcome", "when": "join", "text": "welcome", "target": "alice@example.test"},
        {"name": "hourly", "when": "cron", "cron": "0 * * * *", "text": "hour", "target": "all"},
    ],
    ids=lambda rule: rule["when"],
)
def test_rules_that_need_the_store_are_refused_with_c3p(
    tmp_path: Path, rule: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError) as info:
        check(tmp_path, "c3p", CRON_URI, rule)
    [message] = info.value.messages
    assert message.startswith(f"{tmp_path / 'config.yaml'}:")
    assert "announcements.rules[1].when: " in message  # the line of the rule at fault
    assert f"rule {rule['name']!r}" in message and "conferences.backend: store" in message


def test_a_cron_rule_to_a_uri_and_a_disabled_rule_run_with_c3p(tmp_path: Path) -> None:
    check(tmp_path, "c3p", CRON_URI, {**START, "enabled": False})
    check(tmp_path, "store", CRON_URI, START)
