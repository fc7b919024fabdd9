"""``sipbot send`` against ``sipbot run``: the demo a new user tries first."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml

from .conftest import ROOT, StartBot


async def test_send_prints_alices_conferences(start_bot: StartBot) -> None:
    bot = await start_bot()
    code, out, err = await bot.sipbot(
        "send", "--config", str(bot.config_path), "--as", "alice", "my meetings"
    )
    assert code == 0, err
    assert "Weekly sync" in out and "Quarterly review" in out and "Design review" not in out
    # the client's REGISTER client removed its binding on the way out (RFC 3261 §10.2.2)
    await bot.event("registrar.bindings_updated", user="alice", bindings=1)
    await bot.event("registrar.bindings_updated", user="alice", bindings=0)


async def test_send_with_a_wrong_password_fails_with_the_reason(start_bot: StartBot) -> None:
    bot = await start_bot()
    code, out, err = await bot.sipbot(
        "send", "--config", str(bot.config_path), "--as", "alice", "--password", "nope", "help"
    )
    assert code == 1 and out == ""
    assert "registration as alice failed: 401" in err


async def test_send_as_someone_unknown_is_a_usage_error(start_bot: StartBot) -> None:
    bot = await start_bot()
    code, _, err = await bot.sipbot("send", "--config", str(bot.config_path), "--as", "zed", "hi")
    assert code == 2 and "not a user in the config" in err


async def test_send_needs_no_more_of_the_config_than_a_client_does(
    start_bot: StartBot, tmp_path: Path
) -> None:
    """The README advises ``admin.token: ${SIPBOT_ADMIN_TOKEN}``; in the client's shell that
    variable is unset, and that is fine."""
    bot = await start_bot()
    config = yaml.safe_load(bot.config_path.read_text())
    config["admin"] = {"token": "${SIPBOT_TEST_UNSET_ADMIN_TOKEN}"}
    client_config = tmp_path / "client.yaml"
    client_config.write_text(yaml.safe_dump(config))
    code, out, err = await bot.sipbot(
        "send", "--config", str(client_config), "--password", "alice-demo", "help"
    )
    assert code == 0 and "my meetings" in out, err


async def test_send_with_no_config_at_all(start_bot: StartBot, tmp_path: Path) -> None:
    bot = await start_bot()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "send", "--server", f"127.0.0.1:{bot.port}",
        "--domain", "example.test", "--as", "bob", "--password", "bob-demo", "my meetings",
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert not (tmp_path / "config.yaml").exists()
    assert proc.returncode == 0, err.decode()
    assert "Design review" in out.decode() and "Weekly sync" not in out.decode()
