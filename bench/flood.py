"""Malformed and hostile SIP input at a running ``sipbot run``, and what to read back from it.

Shared by the flood test (``tests/e2e/test_flood.py``) and the live fuzzer (``bench/fuzz_live.py``).
Requests are written as raw bytes here, not with the bot's own serializer: a bug the bot's
stack shares with its own client would otherwise go unseen. Digest answers are computed from
RFC 7616 §3.4.1 directly for the same reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import socket
import urllib.request
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

DOMAIN = "example.test"
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3}) ")
_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.I | re.M)
_CSEQ = re.compile(rb"^CSeq[ \t]*:[ \t]*\d+[ \t]+(\S+)", re.I | re.M)
_CSEQ_INVITE = re.compile(rb"^(CSeq[ \t]*:[ \t]*\d+[ \t]+)INVITE", re.I | re.M)
_DIALOG_HEADERS = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")
_CHALLENGE = re.compile(rb"^WWW-Authenticate:[ \t]*Digest (.*)$", re.I | re.M)


def tag() -> str:
    return secrets.token_hex(6)


def request(
    method: str,
    uri: str,
    *,
    local: tuple[str, int],
    transport: str = "UDP",
    user: str = "alice",
    to: str | None = None,
    to_tag: str | None = None,
    headers: str = "",
    body: bytes = b"",
    cseq: int = 1,
    call_id: str | None = None,
) -> bytes:
    """A request as a client would write it; ``headers`` are extra lines (CRLF-terminated)."""
    branch = tag()
    # RFC 3261 §10.2: a REGISTER's To is the address-of-record being registered
    to_header = to or (f"<sip:{user}@{DOMAIN}>" if method == "REGISTER" else f"<sip:bot@{DOMAIN}>")
    if to_tag:
        to_header += f";tag={to_tag}"
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {local[0]}:{local[1]};branch=z9hG4bK{branch};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:{user}@{DOMAIN}>;tag={tag()}\r\n"
        f"To: {to_header}\r\n"
        f"Call-ID: {call_id or tag() + tag()}@flood\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <sip:{user}@{local[0]}:{local[1]}>\r\n"
        f"{headers}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass(slots=True)
class Digest:
    """Answers to one challenge with a rising nonce count (RFC 7616 §3.4: pre-authorization)."""

    user: str
    password: str
    realm: str
    nonce: str
    opaque: str | None
    nc: int = 0

    @classmethod
    def from_challenge(cls, response: bytes, user: str, password: str) -> Digest:
        digest = cls(user, password, "", "", None)
        digest.renew(response)
        return digest

    def renew(self, response: bytes) -> None:
        """Answer the challenge in ``response`` from now on (a fresh nonce, nc from 1)."""
        found = _CHALLENGE.search(response)
        if found is None:
            raise ValueError(f"no Digest challenge in {response[:200]!r}")
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', found.group(1).decode()))
        self.realm, self.nonce, self.opaque = params["realm"], params["nonce"], params.get("opaque")
        self.nc = 0

    def header(self, method: str, uri: str, name: str = "Authorization") -> str:
        self.nc += 1
        nc, cnonce = f"{self.nc:08x}", tag()

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.user}:{self.realm}:{self.password}")
        answer = md5(f"{ha1}:{self.nonce}:{nc}:{cnonce}:auth:{md5(f'{method}:{uri}')}")
        value = (
            f'Digest username="{self.user}", realm="{self.realm}", nonce="{self.nonce}", '
            f'uri="{uri}", response="{answer}", algorithm=MD5, qop=auth, nc={nc}, '
            f'cnonce="{cnonce}"'
        )
        if self.opaque is not None:
            value += f', opaque="{self.opaque}"'
        return f"{name}: {value}\r\n"


class Client(asyncio.DatagramProtocol):
    """A UDP client from one address: counts the bot's answers by status, answers 200 to the
    requests the bot sends it (its replies to commands)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.statuses: Counter[int] = Counter()
        self.answered = 0
        self.counting: bytes | None = None
        """Count only answers to this method (late retransmissions of others' do not count)."""
        self._changed = asyncio.Event()
        self.last: dict[str, bytes] = {}
        """The last response per watched Call-ID, for the few exchanges that need to read it."""
        self._watched: set[bytes] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    @property
    def local(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        status = _STATUS.match(data)
        if status is None:
            self._answer_request(data, addr)
            return
        code = int(status.group(1))
        if code < 200:
            return  # provisional: the final response is the answer
        if code >= 300 and _CSEQ_INVITE.search(data):
            self._ack(data, addr)  # RFC 3261 §17.1.1.3: else it comes again and again (Timer G)
        call_id = _CALL_ID.search(data)
        if call_id is not None and call_id.group(1) in self._watched:
            self.last[call_id.group(1).decode()] = data
        method = _CSEQ.search(data)
        if self.counting is None or (method is not None and method.group(1) == self.counting):
            self.statuses[code] += 1
            self.answered += 1
        self._changed.set()

    def watch(self, call_id: str) -> None:
        self._watched.add(f"{call_id}@flood".encode())

    def _answer_request(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"ACK ") or not data.strip():
            return
        lines = [b"SIP/2.0 200 OK", *_dialog_lines(data), b"Content-Length: 0", b"", b""]
        assert self.transport is not None
        self.transport.sendto(b"\r\n".join(lines), addr)

    def _ack(self, response: bytes, addr: tuple[str, int]) -> None:
        """The ACK of a non-2xx final response: the INVITE's Via, From, Call-ID and CSeq
        number, the response's To (RFC 3261 §17.1.1.3)."""
        lines = [_CSEQ_INVITE.sub(rb"\1ACK", line) for line in _dialog_lines(response)]
        start = f"ACK sip:bot@{DOMAIN} SIP/2.0".encode()
        assert self.transport is not None
        self.transport.sendto(b"\r\n".join([start, *lines, b"Content-Length: 0", b"", b""]), addr)

    def send(self, data: bytes, bot: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, bot)

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds after an answer arrived; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return condition()
        return True

    async def exchange(self, data: bytes, call_id: str, bot: tuple[str, int]) -> bytes:
        """Send one request and return its final response (5 s at most)."""
        self.watch(call_id)
        key = f"{call_id}@flood"
        for _ in range(3):
            self.send(data, bot)
            if await self.until(lambda: key in self.last, 2.0):
                return self.last.pop(key)
        raise TimeoutError(f"no answer to {data[:60]!r}")


def _dialog_lines(message: bytes) -> list[bytes]:
    """The header lines a response (or an ACK) copies from the message it answers."""
    head = message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    return [line for line in head[1:] if line.split(b":", 1)[0].strip().lower() in _DIALOG_HEADERS]


async def open_client(host: str = "127.0.0.1") -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(Client, local_addr=(host, 0))
    sock = client.transport.get_extra_info("socket") if client.transport else None
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    return client


async def blast(
    client: Client,
    make: Callable[[int], bytes],
    count: int,
    bot: tuple[str, int],
    *,
    window: int = 64,
) -> int:
    """Send ``count`` requests made by ``make(i)``, keeping at most ``window`` unanswered (UDP
    has no flow control: this keeps the socket buffers from dropping what the test sends). A
    window that is not answered within 2 s counts as lost and sending goes on.
    Returns how many were answered."""
    start = client.answered
    lost = 0
    for i in range(count):
        data = make(i)
        if i == 0:
            client.counting = data.split(b" ", 1)[0]
        client.send(data, bot)
        if (i + 1) % window == 0:
            due = i + 1 - window - lost
            if not await client.until(lambda due=due: client.answered - start >= due, 2.0):
                lost = i + 1 - window - (client.answered - start)
    await client.until(lambda: client.answered - start >= count - lost, 5.0)
    return client.answered - start


def deflated_html_bomb(repeat: int = 32_000) -> bytes:
    """``<a`` × 32,000 in HTML, deflated: 88 bytes on the wire (issue 15 item 7)."""
    return zlib.compress(b"<a" * repeat, 9)


# --- what to read back from the bot -------------------------------------------------------

GAUGES = (
    "sipbot_sip_transactions",
    "sipbot_im_sessions",
    "sipbot_sip_connections",
    "sipbot_user_endpoints",
    "sipbot_listing_cache_entries",
)
"""The counts that must return to their baseline once Timer J has passed."""


@dataclass(slots=True)
class Admin:
    """The bot's admin API (Prometheus text at /metrics)."""

    port: int
    token: str
    series_seen: set[str] = field(default_factory=set)

    def metrics(self) -> dict[str, float]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=5) as answer:
            text = answer.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    async def read(self) -> dict[str, float]:
        return await asyncio.to_thread(self.metrics)

    async def gauges(self) -> dict[str, float]:
        values = await self.read()
        return {name: values.get(name, float("nan")) for name in GAUGES}
