"""baresip (Debian baresip-core), a real softphone, asks the bot for its user's meetings.

baresip 1.0 does not print the MESSAGEs it receives, so the delivery is read on the bot's
side: baresip's 200 to the reply, at the contact it registered.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.peers.conftest import Process, free_port, start

from .conftest import StartBot


def baresip_config(folder: Path, sip_port: int, ctrl_port: int, bot_port: int) -> None:
    (folder / "config").write_text(
        "module_path /usr/lib/baresip/modules\n"
        f"sip_listen 127.0.0.1:{sip_port}\n"
        "net_interface 127.0.0.1\n"
        "dns_server 127.0.0.1:53\n"
        "audio_player\naudio_source\n"
        "module_tmp account.so\nmodule contact.so\nmodule g711.so\n"
        "module_app menu.so\nmodule_app ctrl_tcp.so\n"
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
        "statmode_default off\n"
    )
    (folder / "accounts").write_text(
        f"<sip:alice@example.test>;auth_pass=alice-demo;"
        f'outbound="sip:127.0.0.1:{bot_port};transport=udp";regint=600\n'
    )
    (folder / "contacts").write_text('"Bot" <sip:bot@example.test>\n')


async def ctrl(port: int, command: str, params: str) -> asyncio.StreamReader:
    """Send one ctrl_tcp command (netstring-framed JSON); the reader yields its events."""
    for _ in range(50):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("baresip's ctrl_tcp did not open")
    body = json.dumps({"command": command, "params": params, "token": "t1"}).encode()
    writer.write(str(len(body)).encode() + b":" + body + b",")
    await writer.drain()
    return reader


async def test_baresip_sends_my_meetings_and_receives_the_reply(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    bot = await start_bot()
    sip_port, ctrl_port = free_port(), free_port()
    baresip_config(tmp_path, sip_port, ctrl_port, bot.port)
    phone = await start("baresip", "-f", str(tmp_path))
    processes.append(phone)
    await bot.event("registrar.bindings_updated", user="alice", bindings=1)
    await ctrl(ctrl_port, "message", "my meetings")
    reply = await bot.event("im.reply.delivered", sender="alice@example.test", status=200)
    assert f"@127.0.0.1:{sip_port}" in str(reply["target"])  # baresip's registered contact
    answered = await bot.event("im.command.answered", sender="alice@example.test")
    assert answered["command"] == "my meetings" and answered["outcome"] == "ok"
