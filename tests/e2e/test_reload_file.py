"""Issue 18 item 2 end to end: ``sipbot run`` follows its config file with no SIGHUP. alice has a
Lync-style IM session open (INVITE with m=message); an editor's save (a new file renamed over
the old) turns ``my meetings`` off, and her next command in the same session sees it within
2 s; an invalid save is logged with file:line and key, and the session keeps the last good
config."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import yaml

from bot.sip.dialog import Dialog
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.im.test_sessions import FAST, Alice, open_session

from .conftest import StartBot, bot_config

TURNED_OFF = b"'my meetings' is turned off here"


def save(path: Path, text: str) -> None:
    """As editors save: a new file beside the old, renamed over it."""
    new = path.with_name(f".{path.name}.new")
    new.write_text(text)
    new.replace(path)


async def test_an_edit_of_the_file_reaches_an_open_session_without_sighup(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot()
    await bot.event("config.watching", file=str(bot.config_path))
    user = Alice()
    async with SipEndpoint(
        EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=user
    ) as alice:
        invite, ok = await open_session(alice, bot.peer)
        dialog = Dialog.as_uac(invite, ok)
        alice.client.send_ack(dialog.create_ack(invite.cseq.seq, via=alice.via()), bot.peer)

        async def says(text: str) -> bytes:
            message = dialog.create_request(
                "MESSAGE", via=alice.via(), body=text.encode(), content_type="text/plain"
            )
            assert (await alice.request(message, destination=bot.peer)).status == 200
            reply = await asyncio.wait_for(user.received.get(), 5)
            assert reply.call_id == invite.call_id
            return reply.body

        assert b"Weekly sync" in await says("my meetings")

        loop = asyncio.get_running_loop()
        mark, edited = len(bot.lines), loop.time()
        off = bot_config(tmp_path, bot.port, features={"my_meetings": False})
        save(bot.config_path, yaml.safe_dump(off))
        reloaded = await bot.event("config.reloaded", after=mark, trigger="file")
        assert loop.time() - edited < 2.0
        assert reloaded["restart_needed"] == []
        assert TURNED_OFF in await says("my meetings")

        mark = len(bot.lines)
        good = bot.config_path.read_text()
        save(bot.config_path, good.replace("my_meetings: false", "my_meetings: maybe"))
        failed = await bot.event("config.reload_failed", after=mark, trigger="file")
        (error,) = failed["errors"]  # type: ignore[misc]
        line = good.splitlines().index("  my_meetings: false") + 1
        where = re.escape(f"{bot.config_path}:{line}: features.my_meetings: ")
        assert re.match(where, error), error
        assert TURNED_OFF in await says("my meetings")
        assert "Traceback" not in bot.text
