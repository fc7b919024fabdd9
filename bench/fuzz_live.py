"""Live fuzzing: mutated real requests at a running ``sipbot run`` for N minutes.

Seeds are the requests real clients send (OPTIONS, REGISTER and MESSAGE with digest, a Lync-style
IM INVITE with ms-text-format, CPIM, IMDN, HTML, multipart). Each input is a seed mutated in the
ways radamsa does to text protocols: bit flips, bytes inserted or removed, header lines
duplicated, removed or folded, values repeated into huge ones, digits replaced by non-ASCII
digits, Content-Length off by some, the message cut short. The digest answer covers only method
and Request-URI (RFC 7616 §3.4.3, qop=auth), so a mutation of anything else still reaches the
code behind authentication: each mutated request is signed afresh. Most inputs go over UDP; one
in ten over a new TCP connection.

After each batch the bot must still answer OPTIONS; every tenth batch (and at the end) the
fuzzer waits for Timer J (and the 5 s session idle time it configures) and checks that the bot's
transaction, connection and IM session counts are back at their baseline (the endpoint and
listing caches, bounded by their size, are reported). A crash is: the process gone, OPTIONS
unanswered, or an exception the bot did not expect (an error-level line or a ``Traceback`` in
its log). A 500 is no crash: the registrar answers a REGISTER older than the last one of its
Call-ID so (RFC 3261 §10.3 step 7), and the seeds reuse one Call-ID.

Run: python bench/fuzz_live.py [--minutes 10] [--batch 500] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, rss_mib, wait_for_bot  # noqa: E402
from bench.flood import DOMAIN, Admin, Client, Digest, open_client, request, tag  # noqa: E402

T1 = 0.05
TIMER_J = 64 * T1
SESSION_IDLE = 5.0
"""Seconds an IM session the fuzzer opened may stay silent before the bot closes it."""
DRAINED = ("sipbot_sip_transactions", "sipbot_sip_connections", "sipbot_im_sessions")
"""The counts that must return to their baseline; the user endpoints and listings are LRU
caches bounded by their size, reported but not required to empty."""
NON_ASCII_DIGITS = ["²", "٣", "߅", "１", "৪"]
MSG_URI = f"sip:bot@{DOMAIN}"
REG_URI = f"sip:{DOMAIN}"
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=message 5060 sip null\r\na=accept-types:text/plain text/html\r\n"
)


def seeds(local: tuple[str, int]) -> list[tuple[str, str, bytes]]:
    """(method, Request-URI, unsigned request) for what real clients send."""

    def message(content_type: str, body: bytes, extra: str = "") -> tuple[str, str, bytes]:
        headers = f"Content-Type: {content_type}\r\n{extra}"
        return (
            "MESSAGE",
            MSG_URI,
            request("MESSAGE", MSG_URI, local=local, headers=headers, body=body),
        )

    cpim = (
        b"From: <sip:alice@example.test>\r\nTo: <sip:bot@example.test>\r\n"
        b"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: abc123\r\n"
        b"imdn.Disposition-Notification: positive-delivery, display\r\n\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nmy meetings"
    )
    imdn = (
        b'<?xml version="1.0"?><imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>x1'
        b"</message-id><datetime>2026-11-26T00:00:00Z</datetime><delivery-notification>"
        b"<status><delivered/></status></delivery-notification></imdn>"
    )
    multipart = (
        b"--b1\r\nContent-Type: text/html\r\n\r\n<p>my <b>meetings</b></p>\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\nmy meetings\r\n--b1--\r\n"
    )
    first = base64.b64encode(b"help").decode()
    return [
        ("OPTIONS", MSG_URI, request("OPTIONS", MSG_URI, local=local)),
        ("REGISTER", REG_URI, request("REGISTER", REG_URI, local=local, headers="Expires: 60\r\n")),
        message("text/plain; charset=UTF-8", b"help"),
        message("text/plain", b"meeting 1"),
        message("text/html", b"<span style='x'>my&nbsp;meetings</span><br>"),
        message("message/cpim", cpim),
        message("message/imdn+xml", imdn),
        message("multipart/alternative; boundary=b1", multipart),
        (
            "INVITE",
            MSG_URI,
            request(
                "INVITE",
                MSG_URI,
                local=local,
                headers="Content-Type: application/sdp\r\n"
                f"ms-text-format: text/plain; charset=UTF-8; ms-body={first}\r\n",
                body=SDP,
            ),
        ),
        ("BYE", MSG_URI, request("BYE", MSG_URI, local=local, to_tag=tag())),
    ]


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _join(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def insert(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    junk = rng.choice([b"\x00", b"\r\n", b" ", b";", b",", b'"', b"<", b"%", b"\xff", b"\r\n "])
    return data[:i] + junk * rng.randint(1, 8) + data[i:]


def delete(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 16) :]


def duplicate_header(rng: random.Random, data: bytes) -> bytes:
    lines, body = _lines(data)
    i = rng.randrange(1, len(lines))
    lines.insert(i, lines[rng.randrange(1, len(lines))])
    return _join(lines, body)


def remove_header(rng: random.Random, data: bytes) -> bytes:
    lines, body = _lines(data)
    del lines[rng.randrange(1, len(lines))]
    return _join(lines, body)


def fold_header(rng: random.Random, data: bytes) -> bytes:
    """RFC 3261 §7.3.1: a value continued on the next line, or a header hidden in one."""
    lines, body = _lines(data)
    i = rng.randrange(1, len(lines))
    line = lines[i]
    cut = rng.randrange(len(line) + 1)
    lines[i] = line[:cut] + b"\r\n" + rng.choice([b" ", b"\t"]) + line[cut:]
    if rng.random() < 0.3:
        lines.insert(i + 1, b" Content-Length: 0")
    return _join(lines, body)


def huge_value(rng: random.Random, data: bytes) -> bytes:
    lines, body = _lines(data)
    i = rng.randrange(1, len(lines))
    name, _, value = lines[i].partition(b":")
    lines[i] = name + b":" + (value or b"x") * rng.randint(50, 2000)
    return _join(lines, body)[:60_000]


def non_ascii_digit(rng: random.Random, data: bytes) -> bytes:
    text = data.decode("latin-1")
    positions = [i for i, ch in enumerate(text) if ch.isdigit()]
    if not positions:
        return data
    i = rng.choice(positions)
    digit = rng.choice(NON_ASCII_DIGITS).encode()
    return data[:i] + digit + data[i + 1 :]


def content_length(rng: random.Random, data: bytes) -> bytes:
    lines, body = _lines(data)
    value = rng.choice(
        [b"-1", b"99999999999", b"0", b"1e3", b" 12", b"0x10", str(len(body) + 7).encode()]
    )
    lines = [line for line in lines if not line.lower().startswith(b"content-length")]
    lines.append(b"Content-Length: " + value)
    if rng.random() < 0.3:
        lines.append(b"l: " + str(len(body)).encode())
    return _join(lines, body)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, len(data))]


MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": flip,
    "insert": insert,
    "delete": delete,
    "duplicate_header": duplicate_header,
    "remove_header": remove_header,
    "fold_header": fold_header,
    "huge_value": huge_value,
    "non_ascii_digit": non_ascii_digit,
    "content_length": content_length,
    "truncate": truncate,
}


def sign(data: bytes, method: str, uri: str, digest: Digest) -> bytes:
    """A fresh Authorization after the request line (so the mutations reach past the gate)."""
    first, sep, rest = data.partition(b"\r\n")
    if not sep:
        return data
    return first + b"\r\n" + digest.header(method, uri).encode() + rest


async def over_tcp(port: int, data: bytes, slots: asyncio.Semaphore) -> None:
    """One input on a connection of its own, read until the bot answers or closes (0.3 s)."""
    async with slots:
        with contextlib.suppress(OSError, TimeoutError):
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
            writer.write(data)
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(reader.read(65536), 0.3)
            writer.close()


async def alive(client: Client, bot: tuple[str, int]) -> bool:
    call_id = tag()
    probe = request("OPTIONS", MSG_URI, local=client.local, call_id=call_id)
    try:
        answer = await client.exchange(probe, call_id, bot)
    except TimeoutError:
        return False
    return answer.startswith(b"SIP/2.0 200 ")


async def settled(admin: Admin, baseline: dict[str, float]) -> dict[str, float]:
    """The counts once Timer J and the session idle time have passed (or as they are then)."""
    deadline = time.monotonic() + TIMER_J + SESSION_IDLE + 20
    while True:
        now = await admin.gauges()
        if drained(now, baseline) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


def drained(now: dict[str, float], baseline: dict[str, float]) -> bool:
    return all(now[name] <= baseline[name] for name in DRAINED)


async def fuzz(args: argparse.Namespace, port: int, admin: Admin, pid: int, log: Path) -> int:
    rng = random.Random(args.seed)
    bot = ("127.0.0.1", port)
    client = await open_client()
    try:
        call_id = tag()
        challenge = await client.exchange(
            request("MESSAGE", MSG_URI, local=client.local, call_id=call_id), call_id, bot
        )
        digest = Digest.from_challenge(challenge, "alice", "alice-demo")
        corpus = seeds(client.local)
        baseline = await settled(admin, await admin.gauges())
        rss_before = rss_mib(pid)
        tried: Counter[str] = Counter()
        crashes = 0
        unexpected_seen = 0
        batches = 0
        slots = asyncio.Semaphore(50)
        connections: set[asyncio.Task[None]] = set()
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            for _ in range(args.batch):
                method, uri, seed = rng.choice(corpus)
                name = rng.choice(list(MUTATORS))
                data = MUTATORS[name](rng, sign(seed, method, uri, digest))
                tried[name] += 1
                if rng.random() < 0.1:
                    task = asyncio.create_task(over_tcp(port, data, slots))
                    connections.add(task)
                    task.add_done_callback(connections.discard)
                else:
                    client.send(data, bot)
                    if tried.total() % 50 == 0:
                        await asyncio.sleep(0.01)  # UDP has no flow control: let it drain
            batches += 1
            if connections:
                await asyncio.wait(connections)
            text = log.read_text(errors="replace")
            unexpected = text.count('"level": "error"') + text.count("Traceback")
            if unexpected > unexpected_seen:
                crashes += 1
                unexpected_seen = unexpected
                print(f"batch {batches}: unexpected exception in the log", flush=True)
            if not await alive(client, bot):
                crashes += 1
                print(f"batch {batches}: OPTIONS unanswered", flush=True)
                break
            if batches % 10 == 0:
                gauges = await settled(admin, baseline)
                print(
                    f"{tried.total():,} inputs; counts {gauges} (baseline {baseline})", flush=True
                )
        final = await settled(admin, baseline)
        back = drained(final, baseline)
        print(
            f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}; fuzzer and bot on the same machine"
        )
        print(f"inputs tried: {tried.total():,} in {args.minutes:g} min (seed {args.seed})")
        print("by mutation: " + ", ".join(f"{k} {v:,}" for k, v in sorted(tried.items())))
        print(f"answers by status: {dict(sorted(client.statuses.items()))}")
        print(f"crashes: {crashes}")
        print(f"counts back at baseline after Timer J: {back} ({final} vs {baseline})")
        print(f"bot RSS: {rss_before:.1f} MiB before, {rss_mib(pid):.1f} MiB after")
        return 1 if crashes or not back else 0
    finally:
        assert client.transport is not None
        client.transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--batch", type=int, default=500, help="inputs between liveness checks")
    parser.add_argument("--seed", type=int, default=secrets.randbelow(2**31))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipbot-fuzz-"))
    port, admin_port = free_port(), free_port()
    token = secrets.token_hex(16)
    config = {
        "sip": {
            "listen": [
                {"transport": "udp", "host": "127.0.0.1", "port": port},
                {"transport": "tcp", "host": "127.0.0.1", "port": port},
            ],
            "timers": {"t1": T1, "t2": 0.4, "t4": 0.5},
        },
        # the fuzzer's wrong digests (a mutated method or URI) would ban its own address
        "security": {"auth": {"allow": ["127.0.0.1/32"]}},
        "im": {"session_idle_timeout": SESSION_IDLE},
        "admin": {"port": admin_port, "token": token},
        "conferences": {"database_url": f"sqlite+aiosqlite:///{work / 'bot.db'}"},
        "logging": {"format": "json", "level": "WARNING"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    log = work / "bot.log"
    with open(log, "w") as out:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(work / "config.yaml")],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    code = 1
    try:
        asyncio.run(wait_for_bot(port))
        code = asyncio.run(fuzz(args, port, Admin(admin_port, token), bot.pid, log))
    finally:
        bot.terminate()
        bot.wait(30)
        print(f"bot exit code {bot.returncode}; log in {log}")
    sys.exit(code)


if __name__ == "__main__":
    main()
