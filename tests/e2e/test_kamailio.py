"""sipbot behind Kamailio (external mode): it registers, users reach it through the proxy, and
it registers again when Kamailio restarts."""

from __future__ import annotations

from pathlib import Path

from bot.sip.transaction import Peer
from tests.peers.conftest import Process, free_port, module_path, start
from tests.peers.test_kamailio import wait_until_answering

from .conftest import StartBot
from .test_sipp_im import pager_exchange

CONFIG = Path(__file__).parent / "kamailio" / "proxy.cfg"


async def start_kamailio(
    port: int, bot_port: int, tmp_path: Path, processes: list[Process], *, config: Path = CONFIG
) -> Process:
    process = await start(
        "kamailio",
        "-f",
        str(config),
        "-L",
        module_path(),
        "-A",
        f"BOT_PORT={bot_port}",
        "-l",
        f"udp:127.0.0.1:{port}",
        "-DD",
        "-E",
        "-Y",
        str(tmp_path),
        "-w",
        str(tmp_path),
    )
    processes.append(process)
    await wait_until_answering(Peer("UDP", "127.0.0.1", port), process)
    return process


async def alice_says_help_through(kamailio_port: int, processes: list[Process], work: Path) -> None:
    """alice (SIPp) registers with Kamailio and sends "help" to the bot through it, answering
    Kamailio's 407; the bot's reply reaches her through Kamailio too."""
    await pager_exchange(
        kamailio_port,
        processes,
        work,
        command="help",
        expect={"Commands:": True},
        message_uri="sip:bot@example.test",
        challenge=407,
    )


async def test_bot_behind_kamailio_answers_and_survives_a_restart(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    kamailio_port, bot_port = free_port(), free_port()
    kamailio = await start_kamailio(kamailio_port, bot_port, tmp_path, processes)
    bot = await start_bot(
        port=bot_port,
        sip={
            "mode": "external",
            "trusted_proxies": ["127.0.0.1"],
        },
        registrar={
            "server": f"sip:127.0.0.1:{kamailio_port}",
            "username": "bot",
            "password": "bot-secret",
            "keepalive": 0.5,
            "retry_min": 0.2,
            "retry_max": 1.0,
        },
    )
    await bot.event("registration.succeeded")
    await alice_says_help_through(kamailio_port, processes, tmp_path)
    answered = await bot.event("im.command.answered", command="help")
    assert answered["sender"] == "alice@example.test"  # from P-Asserted-Identity

    await kamailio.stop()
    await bot.event("registration.server_lost")
    mark = len(bot.lines)
    await start_kamailio(kamailio_port, bot_port, tmp_path, processes)
    await bot.event("registration.server_back", after=mark)
    await bot.event("registration.succeeded", after=mark)
    (tmp_path / "second").mkdir()
    await alice_says_help_through(kamailio_port, processes, tmp_path / "second")
