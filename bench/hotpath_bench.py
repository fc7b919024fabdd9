"""The CPU of one IM command inside the bot, without sockets or SIPp: a real Runtime (the same
configuration as bench/sipp_im_bench.py) is fed datagrams straight into its SIP endpoint and its
outgoing datagrams are caught before the socket.

One Lync-style IM session is opened (INVITE, 401, INVITE with credentials, 200, ACK), then
COMMANDS times: MESSAGE in the dialog -> the bot's 200 and its reply MESSAGE -> our 200 to it.
What it prints is the CPU time of the bot's thread per command, the few microseconds this
harness spends building and reading the datagrams included. SIPp's bench measures the whole
process with the kernel's share (sockets); this one isolates the Python work, to profile it
and to compare two commits quickly:

  PYTHONPATH=$PWD python bench/hotpath_bench.py --commands 20000
  PYTHONPATH=$PWD python bench/hotpath_bench.py --command "my meetings"
  PYTHONPATH=$PWD python bench/hotpath_bench.py --mode pager     # pre-authorized pager MESSAGEs
  PYTHONPATH=$PWD python bench/hotpath_bench.py --profile /tmp/hot.prof   # python -m pstats
  PYTHONPATH=$PWD python bench/hotpath_bench.py --loop asyncio   # runtime.event_loop (auto)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import eventloop  # noqa: E402
from bot.config import Config, load_config  # noqa: E402
from bot.logs import configure  # noqa: E402
from bot.runtime import Runtime, tune_gc  # noqa: E402
from bot.sip.digest_client import DigestClient  # noqa: E402
from bot.sip.message import Request, Response  # noqa: E402
from bot.sip.parse import parse_message  # noqa: E402
from bot.sip.transaction import Peer  # noqa: E402

ALICE = Peer("UDP", "127.0.0.1", 5999)
SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=message 5060 sip null\r\na=accept-types:text/plain\r\n"
)
INVITE = (
    "INVITE sip:127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-inv-{call_id}-{cseq}\r\n"
    'From: "Alice" <sip:alice@example.test>;tag=alice-tag\r\n'
    "To: <sip:bot@example.test>\r\n"
    "Call-ID: {call_id}\r\n"
    "CSeq: {cseq} INVITE\r\n"
    "Contact: <sip:alice@127.0.0.1:5999>\r\n"
    "{auth}"
    "Max-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n{SDP}"
)
ACK = (
    "ACK {target} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch}\r\n"
    'From: "Alice" <sip:alice@example.test>;tag=alice-tag\r\n'
    "To:{to}\r\n"
    "Call-ID: {call_id}\r\n"
    "CSeq: {cseq} ACK\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)
MESSAGE = (
    "MESSAGE {target} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-msg-{call_id}-{cseq}\r\n"
    'From: "Alice" <sip:alice@example.test>;tag=alice-tag\r\n'
    "To:{to}\r\n"
    "Call-ID: {call_id}\r\n"
    "CSeq: {cseq} MESSAGE\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: {length}\r\n\r\n{command}"
)
BYE = (
    "BYE {target} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-bye-{call_id}\r\n"
    'From: "Alice" <sip:alice@example.test>;tag=alice-tag\r\n'
    "To:{to}\r\n"
    "Call-ID: {call_id}\r\n"
    "CSeq: {cseq} BYE\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)
PAGER = (
    "MESSAGE sip:127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-pager-{call_id}-{cseq}\r\n"
    "From: <sip:alice@example.test>;tag=pager-{call_id}\r\n"
    "To: <sip:bot@example.test>\r\n"
    "Call-ID: {call_id}\r\n"
    "CSeq: {cseq} MESSAGE\r\n"
    "{auth}"
    "Max-Forwards: 70\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: {length}\r\n\r\n{command}"
)
REGISTER = (
    "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-register-{cseq}\r\n"
    "From: <sip:alice@example.test>;tag=register\r\n"
    "To: <sip:alice@example.test>\r\n"
    "Call-ID: hotpath-register\r\n"
    "CSeq: {cseq} REGISTER\r\n"
    "Contact: <sip:alice@127.0.0.1:5999>\r\n"
    "Expires: 3600\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)
OK = (
    "SIP/2.0 200 OK\r\n{via}\r\n{from_}\r\n{to}\r\n{call_id}\r\n{cseq}\r\nContent-Length: 0\r\n\r\n"
)
HEADER = re.compile(rb"^(Via|From|To|Call-ID|CSeq):[^\r\n]*", re.MULTILINE | re.IGNORECASE)


class Wire:
    """Stands in for the UDP socket: what the bot sends is kept, and a waiter is woken."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.count = 0
        self.arrived = asyncio.Event()

    def send(self, data: bytes, peer: Peer) -> None:
        self.sent.append(data)
        self.count += 1
        self.arrived.set()

    async def next(self, starts: bytes) -> bytes:
        while True:
            for i, data in enumerate(self.sent):
                if data.startswith(starts):
                    del self.sent[: i + 1]
                    return data
            self.arrived.clear()
            await self.arrived.wait()


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sipbot-hotpath-") as folder:
        work = Path(folder)
        (work / "config.yaml").write_text(
            "sip:\n  listen: [{transport: udp, host: 127.0.0.1, port: 0}]\n"
            "im:\n  rate_limit: {rate: 1000000.0, burst: 1000000}\n"
            "  loop_breaker: {max_replies: 1000000}\n  max_sessions_per_sender: 1000\n"
            f"conferences:\n  database_url: sqlite+aiosqlite:///{work / 'bot.db'}\n"
            f"  cache_seconds: {args.cache_seconds}\n"
            "logging: {format: json, level: INFO}\n"
            "admin: {port: 0}\n"  # parallel runs would contend for the default port
            f"runtime: {{event_loop: {args.loop}}}\n"
        )
        config = load_config(work / "config.yaml")
        with open(work / "bot.log", "w") as log:  # open until the loop's last flush
            configure(config.logging, log)
            eventloop.run(serve(config, work, args), config.runtime.event_loop)


async def serve(config: Config, work: Path, args: argparse.Namespace) -> None:
    """The bot on the loop its configuration names, as `sipbot run` serves."""
    runtime = Runtime(config, data_dir=work)
    await runtime.start()
    tune_gc()
    try:
        await drive(runtime, args)
    finally:
        await runtime.stop()


async def drive(runtime: Runtime, args: argparse.Namespace) -> None:
    endpoint = runtime.endpoint
    wire = Wire()
    endpoint._udp.send = wire.send  # type: ignore[union-attr,method-assign]
    port = endpoint._udp.local[1]  # type: ignore[union-attr]
    session: Session | Pager = (
        Pager(endpoint._on_message, wire, port, args.command)
        if args.mode == "pager"
        else Session(endpoint._on_message, wire, port, args.command)
    )
    await session.start()
    await session.run(args.warmup, args.per_session)
    wire.count = 0
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    started, cpu = time.perf_counter(), time.thread_time()
    if profiler is not None:
        profiler.enable()
    await session.run(args.commands, args.per_session)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu = time.thread_time() - cpu
    elapsed = time.perf_counter() - started
    print(
        f"mode={args.mode} command={args.command!r} commands={args.commands} "
        f"per {'challenge' if args.mode == 'pager' else 'session'}={args.per_session} "
        f"cache_seconds={args.cache_seconds} "
        f"loop={eventloop.name(asyncio.get_running_loop())} "
        f"python={sys.version.split()[0]} ({sys.executable})"
    )
    print(f"datagrams sent by the bot: {wire.count / args.commands:.2f} per command")
    print(
        f"bot thread CPU {cpu / args.commands * 1e6:.1f} µs per command "
        f"(wall {elapsed / args.commands * 1e6:.1f} µs){' under cProfile' if profiler else ''}"
    )


class Session:
    """Alice's side of the Lync-style IM sessions, as bench/sipp/session_help.xml plays it."""

    def __init__(self, feed: Callable[[bytes, Peer], None], wire: Wire, port: int, command: str):
        self.feed, self.wire, self.port, self.command = feed, wire, port, command
        self.calls = 0

    async def start(self) -> None:
        """Nothing to prepare: each session opens its own dialog."""

    async def run(self, commands: int, per_session: int) -> None:
        while commands > 0:
            count = min(commands, per_session)
            await self.one(count)
            commands -= count

    async def one(self, commands: int) -> None:
        self.calls += 1
        call_id = f"hotpath-{self.calls}"
        feed, wire, port = self.feed, self.wire, self.port
        feed(INVITE.format(port=port, cseq=1, auth="", call_id=call_id).encode(), ALICE)
        challenge = parse_message(await wire.next(b"SIP/2.0 401"))
        assert isinstance(challenge, Response)
        feed(
            ACK.format(
                target=f"sip:127.0.0.1:{port}",
                branch=f"z9hG4bK-inv-{call_id}-1",
                to=challenge.headers.get("To"),
                cseq=1,
                call_id=call_id,
            ).encode(),
            ALICE,
        )
        invite = parse_message(INVITE.format(port=port, cseq=2, auth="", call_id=call_id).encode())
        assert isinstance(invite, Request)
        DigestClient("alice", "alice-demo").authorize(invite, challenge)
        feed(invite.serialize(), ALICE)
        answer = parse_message(await wire.next(b"SIP/2.0 200"))
        assert isinstance(answer, Response)
        to = answer.headers.get("To") or ""
        target = str(answer.contacts[0].uri)
        feed(
            ACK.format(
                target=target, branch=f"z9hG4bK-ack-{call_id}", to=to, cseq=2, call_id=call_id
            ).encode(),
            ALICE,
        )
        body = self.command
        for cseq in range(3, 3 + commands):
            feed(
                MESSAGE.format(
                    target=target,
                    to=to,
                    cseq=cseq,
                    length=len(body),
                    command=body,
                    call_id=call_id,
                ).encode(),
                ALICE,
            )
            await wire.next(b"SIP/2.0 200")
            self.answer(await wire.next(b"MESSAGE "))
        feed(BYE.format(target=target, to=to, cseq=3 + commands, call_id=call_id).encode(), ALICE)
        await wire.next(b"SIP/2.0 200")

    def answer(self, request: bytes) -> None:
        """200 to a request of the bot's, built from its own headers (RFC 3261 §8.2.6.2)."""
        headers = {m.group(1).lower(): m.group(0).decode() for m in HEADER.finditer(request)}
        self.feed(
            OK.format(
                via=headers[b"via"],
                from_=headers[b"from"],
                to=headers[b"to"],
                call_id=headers[b"call-id"],
                cseq=headers[b"cseq"],
            ).encode(),
            ALICE,
        )


class Pager(Session):
    """alice registered, then pager-mode MESSAGEs (RFC 3428) pre-authorized as Linphone and
    bench/sipp/pager_preauth.xml send them: one challenge, then the same nonce with a rising
    nc (RFC 7616 §3.4); the bot's replies go to her registered contact."""

    async def start(self) -> None:
        self.feed(REGISTER.format(port=self.port, cseq=1).encode(), ALICE)
        challenge = parse_message(await self.wire.next(b"SIP/2.0 401"))
        register = parse_message(REGISTER.format(port=self.port, cseq=2).encode())
        assert isinstance(challenge, Response) and isinstance(register, Request)
        DigestClient("alice", "alice-demo").authorize(register, challenge)
        self.feed(register.serialize(), ALICE)
        await self.wire.next(b"SIP/2.0 200")

    async def one(self, commands: int) -> None:
        self.calls += 1
        call_id, body, port = f"pager-{self.calls}", self.command, self.port
        self.feed(
            PAGER.format(
                port=port, call_id=call_id, cseq=1, auth="", length=len(body), command=body
            ).encode(),
            ALICE,
        )
        response = parse_message(await self.wire.next(b"SIP/2.0 401"))
        assert isinstance(response, Response)
        challenge = DigestClient.challenges(response)[0]
        assert challenge.algorithm == "MD5" and "auth" in challenge.qop
        uri = f"sip:127.0.0.1:{port}"
        ha1 = _md5(f"alice:{challenge.realm}:alice-demo")
        ha2 = _md5(f"MESSAGE:{uri}")
        for nc in range(1, commands + 1):
            answer = _md5(f"{ha1}:{challenge.nonce}:{nc:08x}:c0ffee:auth:{ha2}")
            auth = (
                f'Authorization: Digest username="alice", realm="{challenge.realm}", '
                f'nonce="{challenge.nonce}", uri="{uri}", response="{answer}", '
                f'algorithm=MD5, cnonce="c0ffee", qop=auth, nc={nc:08x}'
                + (f', opaque="{challenge.opaque}"' if challenge.opaque is not None else "")
                + "\r\n"
            )
            self.feed(
                PAGER.format(
                    port=port,
                    call_id=call_id,
                    cseq=1 + nc,
                    auth=auth,
                    length=len(body),
                    command=body,
                ).encode(),
                ALICE,
            )
            await self.wire.next(b"SIP/2.0 200")
            self.answer(await self.wire.next(b"MESSAGE "))


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("session", "pager"), default="session")
    parser.add_argument("--command", default="help")
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument(
        "--per-session",
        type=int,
        default=20,
        help="commands per IM session (pager: per challenge)",
    )
    parser.add_argument("--cache-seconds", type=float, default=5.0)
    parser.add_argument("--profile", type=Path, help="cProfile (CPU time) the commands to here")
    parser.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="the event loop, as runtime.event_loop (auto: the bot's default)",
    )
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
