"""Features switched live: ``sipbot run`` reads its config again on SIGHUP."""

from __future__ import annotations

import signal
from pathlib import Path

import yaml

from bot.config import load_config

from .conftest import StartBot, alice_says, bot_config


async def test_sighup_switches_a_feature_off_and_a_bad_file_changes_nothing(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot()
    running = load_config(bot.config_path)  # alice keeps talking to the bot as it runs
    assert "Weekly sync" in await alice_says(running, "my meetings")
    config = bot_config(tmp_path, bot.port, features={"my_meetings": False})
    config["sip"]["domain"] = "elsewhere.test"  # type: ignore[index]
    bot.config_path.write_text(yaml.safe_dump(config))
    mark = len(bot.lines)
    bot.process.proc.send_signal(signal.SIGHUP)
    reloaded = await bot.event("config.reloaded", after=mark)
    assert reloaded["restart_needed"] == ["sip.domain"]
    assert "'my meetings' is turned off here" in await alice_says(running, "my meetings")

    bot.config_path.write_text("features:\n  my_meetings: [not a flag\n")
    mark = len(bot.lines)
    bot.process.proc.send_signal(signal.SIGHUP)
    failed = await bot.event("config.reload_failed", after=mark)
    assert "not valid YAML" in str(failed["errors"])
    assert "turned off" in await alice_says(running, "my meetings")  # still the last good config
