"""Linphone's console client (Debian linphone-cli 5.1.65: ``linphonec``) set up and started as
the README says, driven on its stdin."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from tests.peers.console import Console
from tests.readme import recipe, transcript

PROMPT = "linphonec> "
RECEIVED = "Message received from "
CPIM = "cpim_in_basic_chat_rooms_enabled=1\n"
# liblinphone's ChatMessage::State: the message the user sent was displayed by the recipient
DISPLAYED = 7


def linphonerc(folder: Path, bot_port: int, *, cpim: bool = True) -> Path:
    """The README's linphonerc (alice on the bot's embedded registrar, UDP only) in ``folder``,
    with the bot on ``bot_port``; without ``cpim``, its CPIM line left out (plain pager mode)."""
    text = recipe("linphonerc", bot_port=bot_port)
    if not cpim:
        assert CPIM in text, text
        text = text.replace(CPIM, "")
    rc = folder / "linphonerc"
    rc.write_text(text)
    return rc


class Linphonec(Console):
    @classmethod
    async def start_in(cls, folder: Path) -> Linphonec:
        """linphonec as the README starts it, in ``folder`` (which holds its linphonerc)."""
        command = transcript("linphonec", typed=PROMPT).command
        return await cls.start(command, cwd=folder, home=folder / "home")

    async def register(self) -> None:
        """Poll ``status register`` until Linphone says it is registered."""
        for _ in range(15):
            await self.send("status register")
            with contextlib.suppress(AssertionError):
                await self.expect("registered, identity=", timeout=1.0)
                return
        raise AssertionError(f"linphonec did not register:\n{self.tail}")

    def replies(self) -> list[str]:
        """The messages it printed as received, each up to the next prompt."""
        parts = self.output.split(RECEIVED)[1:]
        return [part.split(PROMPT.strip())[0] for part in parts]

    async def quit(self) -> int:
        """``quit``: it un-registers and exits; its exit status."""
        return await self.close("quit")

    def sent_message_states(self) -> list[int]:
        """The states of the messages this Linphone sent, from its chat database (the README's
        ``uri=linphone.db``, in the folder it runs in)."""
        with contextlib.closing(sqlite3.connect(self.cwd / "linphone.db")) as db:
            rows = db.execute(
                "SELECT state FROM conference_chat_message_event WHERE direction = 1"
            ).fetchall()
        return [int(state) for (state,) in rows]
