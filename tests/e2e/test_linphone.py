"""Linphone (linphonec, Debian linphone-cli) as a real client of ``sipbot run``, set up with the
README's linphonerc and driven as the README shows: one reply to each command, its delivery
notices accepted and never answered, CPIM as sip.linphone.org provisions it, display receipts
that make Linphone show its messages as read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.peers.linphone import DISPLAYED, PROMPT, RECEIVED, Linphonec, linphonerc
from tests.readme import transcript

from .conftest import StartBot

BOT = "sip:bot@example.test"


async def test_readme_linphonec_recipe_works_as_written(
    start_bot: StartBot, tmp_path: Path
) -> None:
    """The README's linphonerc and the session it shows, typed as written (the bot on a free
    port): no crash on the first chat (an inline comment once made the database path wrong,
    exit 139), the reply shown as the README shows it, a clean exit."""
    bot = await start_bot()
    linphonerc(tmp_path, bot.port)
    session = transcript("linphonec", typed=PROMPT)
    linphone = await Linphonec.start(session.command, cwd=tmp_path, home=tmp_path / "home")
    try:
        for line in session.typed:
            if line == "status register":
                await linphone.register()
            else:
                await linphone.send(line)
        for line in session.shown:
            await linphone.expect(re.escape(line))
    finally:
        code = await linphone.quit()
    assert code == 0, linphone.tail
    # `uri=linphone.db`: the chat database beside the linphonerc, named as written
    assert (tmp_path / "linphone.db").is_file(), sorted(p.name for p in tmp_path.iterdir())
    await bot.event("im.command.answered", command="my meetings", outcome="ok")


@pytest.mark.parametrize("cpim", [False, True], ids=["plain", "cpim"])
async def test_linphone_gets_exactly_one_reply_per_command(
    start_bot: StartBot, tmp_path: Path, cpim: bool
) -> None:
    # with CPIM the bot's replies ask for delivery notices (Linphone sends them only when asked
    # in CPIM; without CPIM it sends them for every message)
    bot = await start_bot(im={"receipts": {"send": True, "request": cpim}})
    linphonerc(tmp_path, bot.port, cpim=cpim)
    linphone = await Linphonec.start_in(tmp_path)
    try:
        await linphone.register()
        await linphone.send(f"chat {BOT} my meetings")
        await linphone.expect(rf"{RECEIVED}{BOT}: Your conferences")
        await linphone.send(f"chat {BOT} help")
        await linphone.expect(rf"{RECEIVED}{BOT}: Commands:")
        # Linphone acknowledges each reply with an IMDN delivery notice (deflated in plain
        # mode); the bot records it and does not answer it
        await bot.event("im.receipt.received", kind="delivery", status="delivered", matched=cpim)
        await bot.event("im.command.answered", command="help")
        if cpim:  # both display notices taken by Linphone before it quits
            first = await bot.event("im.receipt.display.delivered")
            await bot.event("im.receipt.display.delivered", after=bot.lines.index(first) + 1)
    finally:
        await linphone.quit()
    await bot.event("registrar.bindings_updated", user="alice", bindings=0)  # Linphone is gone
    replies = linphone.replies()
    assert len(replies) == 2, linphone.tail
    assert "Weekly sync" in replies[0] and "Quarterly review" in replies[0]
    assert "Design review" not in replies[0] and "my meetings" in replies[1]
    answered = [line for line in bot.lines if line.get("event") == "im.command.answered"]
    assert [line["command"] for line in answered] == ["my meetings", "help"]
    if cpim:  # Linphone asked for display notifications: its messages show as read
        assert linphone.sent_message_states() == [DISPLAYED, DISPLAYED], bot.text
