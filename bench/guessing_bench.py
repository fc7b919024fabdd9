"""Password guessing against the embedded registrar while real users work.

An attacker process sends REGISTERs for alice with made-up digest answers from 127.0.0.1 at
--rate per second (UDP, paced by the clock; after its first failures the bot bans the address
and drops the rest unread). Meanwhile --users real users, each from its own loopback address
(127.0.1.N), register and send `help` by pager MESSAGE, together --commands per second; each
command is timed from sending the MESSAGE to receiving the bot's reply.

Prints the attacker's rate, the ban, the real users' registrations, their commands' success
rate and p50/p99, and the bot's resident memory before and after.

Run: python bench/guessing_bench.py [--rate 5000] [--users 100] [--commands 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, rss_mib, wait_for_bot  # noqa: E402
from bot.sip import Headers, Request, Response, make_response, parse_uri  # noqa: E402
from bot.sip.digest import DigestClient  # noqa: E402
from bot.sip.message import new_tag  # noqa: E402
from bot.sip.transaction import Peer  # noqa: E402
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint  # noqa: E402


def attack(port: int, rate: float, seconds: float, sent: multiprocessing.Value) -> None:  # type: ignore[type-arg]
    """REGISTERs for alice with a nonce and response of its own making, from 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    local = sock.getsockname()[1]
    started = time.perf_counter()
    count = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed * rate)
        while count < due:
            sock.sendto(
                (
                    f"REGISTER sip:example.test SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bKguess{count}\r\n"
                    f"From: <sip:alice@example.test>;tag=g{count}\r\n"
                    f"To: <sip:alice@example.test>\r\nCall-ID: guess-{count}\r\n"
                    f"CSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:{local}>\r\n"
                    f'Authorization: Digest username="alice", realm="example.test", '
                    f'nonce="guessed{count}", uri="sip:example.test", '
                    f'response="{count:032x}", algorithm=MD5\r\n'
                    f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", port),
            )
            count += 1
        time.sleep(0.001)
    sent.value = count


@dataclass
class User:
    name: str
    password: str
    host: str
    endpoint: SipEndpoint | None = None
    reply: asyncio.Future[str] | None = None
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    def on_request(self, incoming: ServerRequest) -> Response:
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(incoming.request.body.decode("utf-8", "replace"))
        return make_response(incoming.request, 200)

    def request(self, method: str, uri: str) -> Request:
        assert self.endpoint is not None
        aor = f"<sip:{self.name}@example.test>"
        return Request(
            method,
            parse_uri(uri),
            Headers.of(
                ("From", f"{aor};tag={new_tag()}"),
                ("To", aor if method == "REGISTER" else "<sip:bot@example.test>"),
                ("Call-ID", new_tag() + new_tag()),
                ("CSeq", f"1 {method}"),
                ("Contact", str(self.endpoint.contact(self.name))),
            ),
        )


async def users_work(port: int, users: list[User], rate: float, seconds: float) -> int:
    bot = Peer("UDP", "127.0.0.1", port)
    registered = 0
    for user in users:
        user.endpoint = SipEndpoint(
            EndpointConfig(listen=(Listen(host=user.host, port=0),)), handler=user.on_request
        )
        await user.endpoint.start()
        credentials = DigestClient(user.name, user.password)
        register = user.request("REGISTER", "sip:example.test")
        register.headers.add("Expires", "600")
        response = await user.endpoint.request(register, destination=bot, credentials=credentials)
        registered += response.status == 200

    async def one(user: User) -> None:
        assert user.endpoint is not None
        user.reply = asyncio.get_running_loop().create_future()
        message = user.request("MESSAGE", "sip:bot@example.test")
        message.headers.add("Content-Type", "text/plain")
        message.body = b"help"
        started = time.perf_counter()
        credentials = DigestClient(user.name, user.password)
        response = await user.endpoint.request(message, destination=bot, credentials=credentials)
        try:
            if response.status != 200:
                raise TimeoutError
            await asyncio.wait_for(user.reply, 5.0)
            user.latencies.append((time.perf_counter() - started) * 1000)
        except TimeoutError:
            user.failures += 1

    tasks = []
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < seconds:
        tasks.append(asyncio.ensure_future(one(users[n % len(users)])))
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    for user in users:
        assert user.endpoint is not None
        await user.endpoint.close()
    return registered


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=5000, help="guesses per second")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--commands", type=float, default=50, help="real commands per second")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipbot-guessing-"))
    port = free_port()
    users = [
        User(f"user{n:03d}", f"pw-{n}", f"127.0.1.{n % 250 + 1}") for n in range(1, args.users + 1)
    ]
    config = {
        "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": port}]},
        "registrar": {"users": {u.name: {"password": u.password} for u in users}},
        "conferences": {"database_url": f"sqlite+aiosqlite:///{work / 'bot.db'}"},
        "logging": {"format": "json", "level": "INFO"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    with open(work / "bot.log", "w") as log:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(work / "config.yaml")],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    try:
        asyncio.run(wait_for_bot(port))
        rss_before = rss_mib(bot.pid)
        sent = multiprocessing.Value("q", 0)
        attacker = multiprocessing.Process(
            target=attack, args=(port, args.rate, args.seconds, sent)
        )
        attacker.start()
        registered = asyncio.run(users_work(port, users, args.commands, args.seconds))
        attacker.join()
        rss_after = rss_mib(bot.pid)
    finally:
        bot.terminate()
        bot.wait(30)
    text = (work / "bot.log").read_text()
    latencies = sorted(x for u in users for x in u.latencies)
    failures = sum(u.failures for u in users)
    total = len(latencies) + failures
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; attacker, users and the bot on the same machine"
    )
    rate = sent.value / args.seconds
    print(f"attacker: {sent.value} REGISTERs in {args.seconds:g} s ({rate:,.0f}/s)")
    print(f"bans logged: {text.count('guard.banned')}")
    print(f"real users registered: {registered}/{len(users)}")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"real users' commands: {len(latencies)}/{total} answered "
            f"({100 * len(latencies) / total:.1f} %), p50 {statistics.median(latencies):.1f} ms, "
            f"p99 {p99:.1f} ms (MESSAGE with digest -> reply)"
        )
    print(f"bot RSS: {rss_before:.1f} MiB before, {rss_after:.1f} MiB after")
    print(f"passwords or digest responses in the log: {'response=' in text or 'pw-' in text}")


if __name__ == "__main__":
    main()
