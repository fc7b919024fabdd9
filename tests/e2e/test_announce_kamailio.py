"""Issue 17, end to end through ``deploy/kamailio/kamailio.cfg`` as shipped: the bot in external
mode registered at Kamailio, bob's baresip registered at Kamailio, alice's IM reaching the bot
through Kamailio; the bot's call to bob goes through Kamailio too (record-routed, so its ACK and
BYE come back that way), its audio straight to bob's phone.

Kamailio trusts the bot by its address (127.0.0.1, ``db/address``), so alice writes from
127.0.0.2, as a user elsewhere on the network would: Kamailio challenges her and stamps her
P-Asserted-Identity.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import load_config
from bot.send import SendOptions, send
from bot.sip.transaction import Peer
from tests.peers.conftest import Process, free_port

from .conftest import StartBot
from .test_announce import BOB, bob_phone, espeak, heard_as_spoken
from .test_deploy_kamailio import start_deployed_kamailio


async def test_announce_through_the_shipped_kamailio(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    no_conference_server = Peer("UDP", "127.0.0.1", free_port())
    kamailio = await start_deployed_kamailio(tmp_path, no_conference_server, processes)
    bot = await start_bot(
        sip={"mode": "external", "trusted_proxies": ["127.0.0.1"]},
        registrar={
            "server": f"sip:127.0.0.1:{kamailio.port}",
            "username": "bot",
            "password": "bot-secret",  # deploy/kamailio/db/subscriber's demo row
        },
    )
    await bot.event("registration.succeeded")
    config = load_config(bot.config_path)
    sentence = "Hello through Kamailio."
    reference = await espeak(sentence, config, tmp_path / "reference.wav")
    phone = await bob_phone(tmp_path / "bob", (kamailio.host, kamailio.port))
    try:
        mark = len(bot.lines)
        alice = SendOptions(
            user="alice", password="alice-demo", text=f"announce {BOB} {sentence}",
            server=kamailio, local_host="127.0.0.2", timeout=30,
        )  # fmt: skip
        reply = await send(config, alice)
        assert re.fullmatch(rf"Announced to {BOB} \(\d+\.\d s\)\.", reply), reply
        answered = await bot.event("im.command.answered", after=mark, command="announce")
        assert answered["sender"] == "alice@example.test"  # Kamailio's P-Asserted-Identity
        await heard_as_spoken(bot, phone, reference, mark=mark)
    finally:
        await phone.close()
