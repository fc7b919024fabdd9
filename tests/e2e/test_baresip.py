"""baresip (Debian baresip-core 1.0), a real softphone, set up and driven exactly as the README
says: its generated ``config``, ``accounts`` and ``contacts`` edited with the README's lines,
``/message`` typed into its menu, the bot's reply printed by baresip."""

from __future__ import annotations

import re
from pathlib import Path

from tests.peers.console import Console
from tests.readme import recipe, transcript

from .conftest import StartBot

REGISTERED = "All 1 useragent registered successfully!"


def in_home(argv: list[str], home: Path) -> list[str]:
    """``argv`` with a leading ``~/`` expanded to ``home``, as the reader's shell does."""
    return [str(home / arg[2:]) if arg.startswith("~/") else arg for arg in argv]


async def test_readme_baresip_recipe_works_as_written(start_bot: StartBot, tmp_path: Path) -> None:
    bot = await start_bot()
    home = tmp_path / "home"
    session = transcript("baresip", typed="/", keep=True)
    command = in_home(session.command, home)
    # the first start writes the templates the README has the reader edit
    first = await Console.start(command, cwd=home, home=home)
    await first.expect("baresip is ready")
    assert await first.close("/quit") == 0, first.tail
    folder = home / ".baresip"
    with (folder / "config").open("a") as config:
        config.write(recipe("baresip config"))
    with (folder / "accounts").open("a") as accounts:
        accounts.write(recipe("baresip accounts", bot_port=bot.port))
    (folder / "contacts").write_text(recipe("baresip contacts"))

    phone = await Console.start(command, cwd=home, home=home)
    try:
        await phone.expect(re.escape(REGISTERED))
        for line in session.typed:
            await phone.send(line)
        for line in session.shown:
            await phone.expect(re.escape(line))
        await phone.expect("Weekly sync")  # the rest of the listing, printed in the same reply
    finally:
        code = await phone.close("/quit")
    assert code == 0, phone.tail
    answered = await bot.event("im.command.answered", sender="alice@example.test")
    assert answered["command"] == "my meetings" and answered["outcome"] == "ok"
    await bot.event("registrar.bindings_updated", user="alice", bindings=0)  # un-registered
