"""Issue 14 item 10: a second ``sipbot run`` on the ports of a running one says which address
is taken and what to do, without a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e.conftest import StartBot


async def test_second_bot_on_the_same_port_says_what_to_do(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot()
    config = yaml.safe_load(bot.config_path.read_text())
    config["conferences"]["database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'second.db'}"
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(config))
    code, _, err = await bot.sipbot("run", "--config", str(second))
    assert code == 1
    assert f"cannot listen on udp 127.0.0.1:{bot.port}: address already in use" in err
    assert "another sipbot running?" in err and "sip.listen" in err
    assert "Traceback" not in err
