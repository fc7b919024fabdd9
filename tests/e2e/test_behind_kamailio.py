"""Issue 16 step 0: ``sipbot run`` behind Kamailio 5.6 (``tests/e2e/kamailio/proxy.cfg``), seen
from outside: a forged identity sent straight to the bot, un-registration at SIGTERM, and a 423
from Kamailio's registrar.

Kamailio and the bot share 127.0.0.1 here and the bot trusts its proxy by address (as
``deploy/kamailio`` does), so the forger writes from another address, 127.0.0.2, as a host on
the network would.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.flood import Client, Digest, open_client, request, tag
from tests.peers.conftest import Process, free_port

from .conftest import RunningBot, StartBot
from .test_kamailio import CONFIG, alice_says_help_through, start_kamailio


async def bot_behind(
    start_bot: StartBot, kamailio_port: int, bot_port: int, **registrar: object
) -> RunningBot:
    settings: dict[str, object] = {
        "server": f"sip:127.0.0.1:{kamailio_port}",
        "username": "bot",
        "password": "bot-secret",
        "retry_min": 0.2,
        "retry_max": 1.0,
    }
    settings.update(registrar)
    return await start_bot(
        port=bot_port,
        sip={"mode": "external", "trusted_proxies": ["127.0.0.1"]},
        registrar=settings,
    )


def message(client: Client, text: str, call_id: str, *, cseq: int = 1, headers: str = "") -> bytes:
    return request(
        "MESSAGE", "sip:bot@example.test", local=client.local, call_id=call_id, cseq=cseq,
        headers=headers + "Content-Type: text/plain\r\n", body=text.encode(),
    )  # fmt: skip


async def registered_behind_kamailio(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> tuple[RunningBot, int, int]:
    """Kamailio as shipped for the tests, and the bot registered with it: (bot, Kamailio's
    port, the bot's port)."""
    kamailio_port, bot_port = free_port(), free_port()
    await start_kamailio(kamailio_port, bot_port, tmp_path, processes)
    bot = await bot_behind(start_bot, kamailio_port, bot_port)
    await bot.event("registration.succeeded")
    return bot, kamailio_port, bot_port


async def test_a_forged_identity_straight_to_the_bot_gets_403_and_no_reply(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    bot, kamailio_port, bot_port = await registered_behind_kamailio(start_bot, processes, tmp_path)
    forger = await open_client("127.0.0.2")
    try:
        call_id = tag()
        forged = message(
            forger,
            "my meetings",
            call_id,
            headers="P-Asserted-Identity: <sip:alice@example.test>\r\n",
        )
        answer = await forger.exchange(forged, call_id, ("127.0.0.1", bot_port))
        assert answer.startswith(b"SIP/2.0 403 "), answer
        # alice's own "help" through Kamailio is answered; the bot is done with everything
        # sent before it, and the forged "my meetings" never ran for anyone
        await alice_says_help_through(kamailio_port, processes, tmp_path)
        await bot.event("im.command.answered", command="help", sender="alice@example.test")
        commands = [line for line in bot.lines if line.get("event") == "im.command.answered"]
        assert [line["command"] for line in commands] == ["help"], commands
        assert forger.statuses == {403: 1}, forger.statuses  # and no request (reply) came
    finally:
        assert forger.transport is not None
        forger.transport.close()


async def alice_asks_kamailio_for_the_bot(kamailio_port: int) -> bytes:
    """alice (digest with Kamailio, RFC 3261 §22.3) sends a MESSAGE to sip:bot@example.test
    through Kamailio; its final response."""
    alice = await open_client()
    try:
        call_id = tag()
        where = ("127.0.0.1", kamailio_port)
        challenge = await alice.exchange(message(alice, "help", call_id), call_id, where)
        assert challenge.startswith(b"SIP/2.0 407 "), challenge
        # bench.flood.Digest reads WWW-Authenticate; a proxy's challenge has the same syntax
        digest = Digest.from_challenge(
            challenge.replace(b"Proxy-Authenticate:", b"WWW-Authenticate:"), "alice", "alice-demo"
        )
        credentials = digest.header("MESSAGE", "sip:bot@example.test", "Proxy-Authorization")
        return await alice.exchange(
            message(alice, "help", call_id, cseq=2, headers=credentials), call_id, where
        )
    finally:
        assert alice.transport is not None
        alice.transport.close()


async def bindings_of_the_bot(kamailio_port: int) -> list[str]:
    """The bot's contacts in Kamailio's location table: a REGISTER without Contact asks for
    them (RFC 3261 §10.2.3), answered with the bot's credentials (§22.2)."""
    client = await open_client()
    try:
        call_id, where = tag(), ("127.0.0.1", kamailio_port)

        def query(cseq: int, headers: str = "") -> bytes:
            plain = request(
                "REGISTER", "sip:example.test", local=client.local, user="bot",
                to="<sip:bot@example.test>", call_id=call_id, cseq=cseq, headers=headers,
            )  # fmt: skip
            return re.sub(rb"Contact: [^\r]*\r\n", b"", plain)  # a query, not a binding

        challenge = await client.exchange(query(1), call_id, where)
        assert challenge.startswith(b"SIP/2.0 401 "), challenge
        digest = Digest.from_challenge(challenge, "bot", "bot-secret")
        answer = await client.exchange(
            query(2, digest.header("REGISTER", "sip:example.test")), call_id, where
        )
        assert answer.startswith(b"SIP/2.0 200 "), answer
        return [line.decode() for line in re.findall(rb"^Contact:[^\r]*", answer, re.M | re.I)]
    finally:
        assert client.transport is not None
        client.transport.close()


async def test_sigterm_takes_the_bots_binding_out_of_kamailio(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    bot, kamailio_port, bot_port = await registered_behind_kamailio(start_bot, processes, tmp_path)
    (bound,) = await bindings_of_the_bot(kamailio_port)
    assert f"127.0.0.1:{bot_port}" in bound, bound
    assert await bot.stop() == 0, bot.text
    await bot.event("registration.removed", status=200)
    assert await bindings_of_the_bot(kamailio_port) == []


async def test_a_423_from_kamailio_is_honoured_with_its_min_expires(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    """Kamailio's registrar with ``min_expires_mode`` 1 answers a shorter Expires with 423 and
    Min-Expires (RFC 3261 §10.2.8); the bot asks 600 s by default."""
    config = tmp_path / "proxy-423.cfg"
    config.write_text(
        CONFIG.read_text().replace(
            'loadmodule "registrar.so"\n',
            'loadmodule "registrar.so"\n'
            'modparam("registrar", "min_expires", 1800)\n'
            'modparam("registrar", "min_expires_mode", 1)\n',
        )
    )
    kamailio_port, bot_port = free_port(), free_port()
    await start_kamailio(kamailio_port, bot_port, tmp_path, processes, config=config)
    bot = await bot_behind(start_bot, kamailio_port, bot_port)
    granted = await bot.event("registration.succeeded")
    assert granted["expires"] == 1800, granted
    failed = [line for line in bot.lines if line.get("event") == "registration.failed"]
    assert not failed, failed
    answered = await alice_asks_kamailio_for_the_bot(kamailio_port)
    assert answered.startswith(b"SIP/2.0 200 "), answered
