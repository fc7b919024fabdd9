"""Linphone (linphonec, Debian linphone-cli) as a real client of ``sipbot run``: one reply to
each command, its delivery notices accepted and never answered, CPIM as sip.linphone.org
provisions it, and display receipts that make Linphone show its messages as read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers.linphone import DISPLAYED, Linphonec, linphonerc

from .conftest import StartBot


@pytest.mark.parametrize("cpim", [False, True], ids=["plain", "cpim"])
async def test_linphone_gets_exactly_one_reply_per_command(
    start_bot: StartBot, tmp_path: Path, cpim: bool
) -> None:
    # with CPIM the bot's replies ask for delivery notices (Linphone sends them only when asked
    # in CPIM; without CPIM it sends them for every message)
    bot = await start_bot(im={"receipts": {"send": True, "request": cpim}})
    linphone = await Linphonec.start(tmp_path, linphonerc(tmp_path, bot.port, cpim=cpim))
    try:
        await linphone.register()
        await linphone.send("chat sip:bot@example.test my meetings")
        await linphone.expect(r"Message received from sip:bot@example.test: Your conferences")
        await linphone.send("chat sip:bot@example.test help")
        await linphone.expect(r"Message received from sip:bot@example.test: Commands:")
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
    assert len(replies) == 2, linphone.output[-3000:]
    assert "Weekly sync" in replies[0] and "Quarterly review" in replies[0]
    assert "Design review" not in replies[0] and "my meetings" in replies[1]
    answered = [line for line in bot.lines if line.get("event") == "im.command.answered"]
    assert [line["command"] for line in answered] == ["my meetings", "help"]
    if cpim:  # Linphone asked for display notifications: its messages show as read
        assert linphone.sent_message_states() == [DISPLAYED, DISPLAYED], bot.text
