"""Issue 15 item 1: request smuggling over a trusted proxy's TCP connection.

The bot believes P-Asserted-Identity only from its trusted proxy. A user's request relayed by that
proxy must never carry a second, hidden request in which the user names someone else: the stream
framer and the parser read the headers by the same rules (RFC 3261 §7.3.1 folding, §7.3.3 compact
``l``, HCOLON with whitespace before the colon), and a message with several Content-Length values
is refused with 400 and the connection closed (§18.3: its framing can no longer be trusted).

The "proxy" here is a raw TCP socket from the proxy's address writing the exact bytes; what the
bot then sends (its replies) is captured by a UDP socket standing for the proxy's registrar side.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import cast

import pytest

from bot.sip import Request, parse_message
from bot.sip.message import make_response
from tests.e2e.conftest import RunningBot, StartBot
from tests.peers.conftest import free_port


class Outbound(asyncio.DatagramProtocol):
    """The proxy's side that the bot sends to: answers 200 to everything, keeps the MESSAGEs."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Request] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if not isinstance(message, Request) or message.method == "ACK":
            return
        assert self.transport is not None
        self.transport.sendto(make_response(message, 200).serialize(), addr)
        if message.method == "MESSAGE":
            self.messages.put_nowait(message)


def relayed(user: str, text: bytes, *, port: int, headers: str = "") -> bytes:
    """A MESSAGE as the proxy relays it: its own Via, the user's P-Asserted-Identity (RFC 3325).
    ``headers`` replaces the Content-Length line when given."""
    tag = secrets.token_hex(6)
    length = headers or f"Content-Length: {len(text)}\r\n"
    return (
        f"MESSAGE sip:bot@example.test SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK{tag}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:{user}@example.test>;tag={tag}\r\n"
        f"To: <sip:bot@example.test>\r\n"
        f"Call-ID: {tag}@proxy.example.test\r\n"
        f"CSeq: 1 MESSAGE\r\n"
        f"P-Asserted-Identity: <sip:{user}@example.test>\r\n"
        f"Content-Type: text/plain\r\n"
        f"{length}\r\n"
    ).encode() + text


MARKER = "marker@proxy.example.test"


def marker(port: int) -> bytes:
    """An OPTIONS from the proxy on the same connection: once its answer is read, everything the
    bot answered before it on that connection has been read too (TCP keeps the order)."""
    return (
        f"OPTIONS sip:bot@example.test SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:proxy@example.test>;tag=m1\r\n"
        f"To: <sip:bot@example.test>\r\nCall-ID: {MARKER}\r\nCSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


async def exchange(bot: RunningBot, data: bytes) -> tuple[bytes, bool]:
    """Write ``data`` from the proxy's address; all the bot answered to it on that connection,
    and whether it closed the connection. "All" is decided by the end of the connection or by
    the answer to a marker request sent after it, never by a quiet period."""
    reader, writer = await asyncio.open_connection("127.0.0.1", bot.port)
    writer.write(data)
    await writer.drain()
    received = b""
    closed = False
    async with asyncio.timeout(10):  # a failure, not a decision
        received = await reader.readuntil(b"\r\n\r\n")  # the first answer's header block
        with contextlib.suppress(ConnectionError):
            writer.write(marker(bot.port))
            await writer.drain()
        while MARKER.encode() not in received:
            try:
                chunk = await reader.read(65536)
            except ConnectionError:  # our marker met a closed socket: reset
                chunk = b""
            if not chunk:
                closed = True
                break
            received += chunk
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    if not closed:
        received = received[: received.rindex(b"SIP/2.0 ", 0, received.index(MARKER.encode()))]
    return received, closed


@pytest.fixture
async def behind_proxy(start_bot: StartBot) -> tuple[RunningBot, Outbound]:
    loop = asyncio.get_running_loop()
    _, outbound = await loop.create_datagram_endpoint(Outbound, local_addr=("127.0.0.1", 0))
    assert outbound.transport is not None
    sink_port = outbound.transport.get_extra_info("sockname")[1]
    bot = await start_bot(
        free_port(),
        sip={"mode": "external", "trusted_proxies": ["127.0.0.1"]},
        registrar={"server": f"sip:127.0.0.1:{sink_port}"},
    )
    return bot, outbound


async def replies_until(outbound: Outbound, user: str) -> list[Request]:
    """The bot's MESSAGEs up to and including the first one to ``user`` (10 s at most)."""
    seen: list[Request] = []
    async with asyncio.timeout(10):
        while True:
            message = await outbound.messages.get()
            seen.append(message)
            if message.to.sip_uri.user == user:
                return seen


HIDDEN = "my meetings"

FORMS = {
    # RFC 3261 §7.3.1: a line starting with whitespace continues the previous header's value
    "folded": "X-Pad: x\r\n Content-Length: 0\r\nContent-Length: {n}\r\n",
    # §7.3.3: "l" is Content-Length; two values for one message
    "compact": "l: 0\r\nContent-Length: {n}\r\n",
    "duplicate": "Content-Length: 0\r\nContent-Length: {n}\r\n",
    # §7.3.1 HCOLON = *( SP / HTAB ) ":" SWS: still Content-Length
    "space_before_colon": "Content-Length : 0\r\nContent-Length: {n}\r\n",
}


@pytest.mark.parametrize("form", sorted(FORMS))
async def test_smuggled_request_never_runs_as_another_user(
    behind_proxy: tuple[RunningBot, Outbound], form: str
) -> None:
    bot, outbound = behind_proxy
    hidden = relayed("alice", HIDDEN.encode(), port=bot.port)
    outer = relayed("bob", hidden, port=bot.port, headers=FORMS[form].format(n=len(hidden)))
    answered, closed = await exchange(bot, outer)
    if form == "folded":
        # one header with a folded value, one Content-Length: the hidden bytes are bob's text
        assert answered.startswith(b"SIP/2.0 200 "), answered
        assert answered.count(b"SIP/2.0 ") == 1, answered  # nothing framed out of the body
    else:
        assert answered.startswith(b"SIP/2.0 400 "), answered
        assert answered.count(b"SIP/2.0 ") == 1, answered  # nothing framed out of the body
        assert closed, "a connection whose framing cannot be trusted is closed"
    # bob's own "my meetings", sent afterwards on a clean connection, is answered to bob;
    # nothing was ever answered to alice
    marker, _ = await exchange(bot, relayed("bob", b"my meetings", port=bot.port))
    assert marker.startswith(b"SIP/2.0 200 "), marker
    replies = await replies_until(outbound, "bob")
    while not any(b"Design review" in r.body for r in replies):
        replies += await replies_until(outbound, "bob")
    assert all(r.to.sip_uri.user == "bob" for r in replies), [str(r.to) for r in replies]
    assert not any(b"Weekly sync" in r.body for r in replies)
    await bot.event("im.command.answered", sender="bob@example.test")  # the log is read behind
    commands = [line for line in bot.lines if line.get("event") == "im.command.answered"]
    assert all(line["sender"] == "bob@example.test" for line in commands), commands
