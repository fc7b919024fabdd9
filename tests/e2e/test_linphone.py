"""Linphone (linphonec, Debian linphone-cli) as a real client of ``sipbot run``, set up with the
README's linphonerc and driven as the README shows: one reply to each command, its delivery
notices accepted and never answered, CPIM as sip.linphone.org provisions it, display receipts
that make Linphone show its messages as read, and long listings that reach it over UDP."""

from __future__ import annotations

import re
import socket
from functools import partial
from pathlib import Path

import pytest

from tests.peers.conftest import free_port
from tests.peers.linphone import DISPLAYED, PROMPT, RECEIVED, Linphonec, linphonerc
from tests.readme import transcript

from .conftest import StartBot
from .test_readyz import scrape

BOT = "sip:bot@example.test"
MORE = re.compile(r"send ['\"‘“]?more\b", re.IGNORECASE)
"""How a page of a long reply offers the next one ("... 10 more: send 'more'")."""


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
    # receipts delivered are logged at DEBUG (the command's line is the one at INFO)
    bot = await start_bot(
        im={"receipts": {"send": True, "request": cpim}}, logging={"level": "DEBUG"}
    )
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


async def test_long_listing_reaches_udp_only_client(start_bot: StartBot, tmp_path: Path) -> None:
    """Issue 14 item 14: 14 more conferences make alice's listing far longer than 1300 bytes,
    which RFC 3261 §18.1.1 moves to TCP; the README's Linphone listens on UDP only. Every one
    of the 14 subjects must still reach it (a retry over UDP, pages - "send 'more'" - or
    several messages in order)."""
    bot = await start_bot(im={"rate_limit": {"rate": 50.0, "burst": 50}})  # 15 commands at once
    rc = linphonerc(tmp_path, bot.port).read_text()
    assert "sip_tcp_port=0" in rc and "sip_tls_port=0" in rc  # the README's: UDP only
    linphone = await Linphonec.start_in(tmp_path)
    subjects = [f"Planning round {n:02d} with the whole team" for n in range(1, 15)]
    try:
        await linphone.register()
        for n, subject in enumerate(subjects, start=1):
            await linphone.send(f"chat {BOT} schedule {subject} at tomorrow 10:{n:02d}")
            await linphone.expect(rf"{RECEIVED}{BOT}: Scheduled: {subject}")
        listing = len(linphone.output)
        await linphone.send(f"chat {BOT} my meetings")
        await read_all_pages(linphone, listing, subjects)
    finally:
        await linphone.quit()
    missing = [subject for subject in subjects if subject not in linphone.output[listing:]]
    assert not missing, f"never reached linphonec: {missing}\n{bot.text}"


async def read_all_pages(linphone: Linphonec, start: int, subjects: list[str]) -> None:
    """Read the replies printed after ``start`` until every subject is there, sending ``more``
    for each page that offers it; returns early when no further reply comes (the caller names
    what is missing)."""

    def printed() -> str:
        return linphone.output[start:]

    def complete() -> bool:
        return all(subject in printed() for subject in subjects)

    def progressed(pages: int) -> bool:
        return complete() or len(MORE.findall(printed())) > pages

    asked = 0
    while not complete():
        if (offered := len(MORE.findall(printed()))) > asked:
            asked = offered
            await linphone.send(f"chat {BOT} more")
        try:
            await linphone.wait_until(partial(progressed, asked), "another reply")
        except AssertionError:
            return


async def test_linphone_pre_authorizes_its_next_message_without_a_challenge_round(
    start_bot: StartBot, tmp_path: Path
) -> None:
    """Issue 19 item 2: Linphone sends its next MESSAGE with the nonce it last used and a
    higher nonce count (RFC 7616 §3.4); the bot takes it at once - no 401/407 round - and the
    reply comes as before."""
    admin = free_port(socket.SOCK_STREAM)
    bot = await start_bot(admin={"port": admin})
    linphonerc(tmp_path, bot.port, cpim=False)
    linphone = await Linphonec.start_in(tmp_path)
    challenges = [
        f'sipbot_sip_responses_total{{code="{code}",direction="out",method="MESSAGE"}}'
        for code in (401, 407)
    ]
    preauthorized = 'sipbot_digest_answers_total{outcome="preauthorized"}'
    try:
        await linphone.register()
        await linphone.send(f"chat {BOT} help")
        await linphone.expect(rf"{RECEIVED}{BOT}: Commands:")
        first = await scrape(admin)
        await linphone.send(f"chat {BOT} my meetings")
        await linphone.expect(rf"{RECEIVED}{BOT}: Your conferences")
        second = await scrape(admin)
    finally:
        await linphone.quit()
    for series in challenges:  # the second message met no challenge (nor did the first: it
        # reuses the nonce of the REGISTER's challenge, a higher count)
        assert second.get(series, 0.0) == first.get(series, 0.0) == 0, (series, bot.text)
    assert second[preauthorized] > first[preauthorized], bot.text
    assert second['sipbot_digest_answers_total{outcome="replayed"}'] == 0
