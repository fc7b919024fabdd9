"""Issue 16 step 0: SIPp over TCP and TLS against ``sipbot run`` (every other real peer of the
suite speaks UDP): alice registers with digest, says "help" and gets the reply on her own
connection.

Debian's SIPp 3.6.1 (``sip-tester``) is built without TLS (``-t l1`` is not among its transports),
so for TLS SIPp speaks TCP to a relay here that holds a TLS connection to the bot's TLS listener,
verifying the bot's certificate (a ``trustme`` CA) as a client would: the bot's TLS side - the
handshake, the framing on a TLS stream, the reply on the same flow - is what runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from tests.peers.conftest import Process, free_port, start

from .conftest import RunningBot, StartBot

SCENARIOS = Path(__file__).parent / "sipp"


async def alice_says_help(bot: RunningBot, port: int, processes: list[Process]) -> None:
    """alice's SIPp at ``port`` (the bot's, or the relay's); done when her inbox scenario took
    the reply with the help text (the bot logs the 200 it got for it)."""
    sipp = await start(
        "sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "alice_stream.xml"),
        "-oocsf", str(SCENARIOS / "alice_stream_inbox.xml"), "-t", "t1", "-m", "1",
        "-i", "127.0.0.1", "-p", str(free_port()), "-nostdin", "-timeout", "30s",
    )  # fmt: skip
    processes.append(sipp)
    answered = await bot.event("im.command.answered", command="help")
    assert answered["sender"] == "alice@example.test"
    delivered = await bot.event("im.reply.delivered", sender="alice@example.test")
    assert delivered["status"] == 200, delivered
    assert sipp.proc.returncode is None, "SIPp waits on (its last step never comes)"


async def test_alice_over_tcp_registers_and_gets_help(
    start_bot: StartBot, processes: list[Process]
) -> None:
    bot = await start_bot(logging=DEBUG)  # UDP and TCP on one port
    await alice_says_help(bot, bot.port, processes)


DEBUG = {"level": "DEBUG"}
"""A reply delivered is logged at DEBUG (the command's own line is the one at INFO)."""


@contextlib.asynccontextmanager
async def tls_relay(port: int, context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TCP port whose connections are carried over TLS to ``port`` (the bot)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def carry(plain_in: asyncio.StreamReader, plain_out: asyncio.StreamWriter) -> None:
        tls_in, tls_out = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
        )
        await asyncio.gather(pipe(plain_in, tls_out), pipe(tls_in, plain_out))

    server = await asyncio.start_server(carry, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def tls_bot(start_bot: StartBot, tmp_path: Path) -> tuple[RunningBot, int, trustme.CA]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "bot.pem", tmp_path / "bot.key"
    cert.private_key_pem.write_to_path(str(keyfile))
    certfile.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    port, tls_port = free_port(), free_port()
    bot = await start_bot(
        port,
        logging=DEBUG,
        sip={
            "listen": [
                {"transport": "udp", "host": "127.0.0.1", "port": port},
                {"transport": "tls", "host": "127.0.0.1", "port": tls_port},
            ],
            "tls": {"certfile": str(certfile), "keyfile": str(keyfile)},
        },
    )
    return bot, tls_port, ca


async def test_alice_over_tls_registers_and_gets_help(
    tls_bot: tuple[RunningBot, int, trustme.CA], processes: list[Process]
) -> None:
    bot, tls_port, ca = tls_bot
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)  # the bot's certificate is verified, host name included
    async with tls_relay(tls_port, context) as relay:
        await alice_says_help(bot, relay, processes)
