"""``sipbot send`` against ``sipbot run``: the demo a new user tries first."""

from __future__ import annotations

from .conftest import StartBot


async def test_send_prints_alices_conferences(start_bot: StartBot) -> None:
    bot = await start_bot()
    code, out, err = await bot.sipbot(
        "send", "--config", str(bot.config_path), "--as", "alice", "my meetings"
    )
    assert code == 0, err
    assert "Weekly sync" in out and "Quarterly review" in out and "Design review" not in out


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
