"""`my meetings` for many users, each through their own user endpoint, driven by SIPp.

The store holds --users users with --per-user conferences each. The bot runs behind a trusted
proxy (sip.mode external, the proxy being 127.0.0.1 where SIPp sends from), so each SIPp call -
one Lync-style IM session as the next user of an injection file - is believed by its
P-Asserted-Identity: no per-user passwords needed. Each session sends --commands `my meetings`.

Prints commands/s, command -> reply p50/p99 (SIPp's rtd), the bot's CPU per command and RSS,
and - measured in this process with tracemalloc - the memory one cached user endpoint takes.

Run, for example:
  python bench/meetings_bench.py --rate 100 --commands 5 --calls 10000       # 500 commands/s
  python bench/meetings_bench.py --rate 300 --commands 5 --calls 10000 --cache-seconds 0
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    count,
    cpu_seconds,
    free_port,
    rss_mib,
    rtt_samples,
    sipp,
    wait_for_bot,
)
from bot.conferencing.endpoints import UserEndpointPool  # noqa: E402
from bot.conferencing.store import _TABLE, ConferenceStore  # noqa: E402
from bot.sender import Sender  # noqa: E402

SCENARIO = ROOT / "bench" / "sipp" / "session_pai.xml"


async def seed(database_url: str, users: int, per_user: int) -> None:
    store = ConferenceStore(database_url)
    await store.open()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    rows = []
    for n in range(users):
        organizer = f"user{n:05d}@example.test"
        for k in range(per_user):
            conference_id = f"U{n:05d}C{k}"
            rows.append(
                {
                    "conference_id": conference_id,
                    "organizer": organizer,
                    "subject": f"Meeting {k + 1}",
                    "uri": f"sip:{organizer};gruu;opaque=app:conf:focus:id:{conference_id}",
                    "access_level": "everyone",
                    "start": start + timedelta(days=k),
                    "end": start + timedelta(days=k, hours=1),
                    "expiry": start + timedelta(days=k + 14),
                    "dial_in": "",
                }
            )
    async with store.engine.begin() as connection:
        await connection.execute(insert(_TABLE), rows)
    await store.close()


async def endpoint_bytes(database_url: str, users: int) -> float:
    """Memory per cached user endpoint: the pool's growth over ``users`` endpoints."""
    store = ConferenceStore(database_url)
    pool = UserEndpointPool(store, size=users + 1)
    senders = [Sender(f"user{n:05d}", "example.test") for n in range(users)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for sender in senders:
        await pool.get(sender)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    await store.close()
    return (after - before) / users


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=5, help="conferences per user")
    parser.add_argument("--rate", type=float, default=100, help="sessions (users) per second")
    parser.add_argument("--commands", type=int, default=5, help="commands per session")
    parser.add_argument("--calls", type=int, default=10_000, help="sessions in all")
    parser.add_argument("--cache-seconds", type=float, default=5.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sipbot-meetings-"))
    database_url = f"sqlite+aiosqlite:///{work / 'bot.db'}"
    started = time.perf_counter()
    asyncio.run(seed(database_url, args.users, args.per_user))
    seeded = time.perf_counter() - started
    (work / "users.csv").write_text(
        "SEQUENTIAL\n" + "".join(f"user{n:05d};\n" for n in range(args.users))
    )
    (work / "session.xml").write_text(
        SCENARIO.read_text()
        .replace("COMMANDS", str(args.commands))
        .replace("COMMAND", "my meetings")
    )
    port = free_port()
    config = {
        "sip": {
            "mode": "external",
            "trusted_proxies": ["127.0.0.1"],
            "listen": [{"transport": "udp", "host": "127.0.0.1", "port": port}],
        },
        # nobody answers there: the bot's own registration just retries, out of the way
        "registrar": {"server": f"sip:127.0.0.1:{free_port()}", "retry_min": 60},
        "im": {
            "rate_limit": {"rate": 1_000_000.0, "burst": 1_000_000},
            "loop_breaker": {"max_replies": 1_000_000},
        },
        "conferences": {
            "database_url": database_url,
            "demo_data": False,
            "cache_seconds": args.cache_seconds,
            "endpoints": {"size": args.users + 1},
        },
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
        rss_before, cpu_before = rss_mib(bot.pid), cpu_seconds(bot.pid)
        started = time.perf_counter()
        code, screen = sipp(
            [
                f"127.0.0.1:{port}", "-sf", str(work / "session.xml"), "-inf",
                str(work / "users.csv"), "-m", str(args.calls), "-r", str(args.rate),
                "-l", "2000", "-i", "127.0.0.1", "-p", str(free_port()), "-base_cseq", "100",
                "-trace_rtt", "-rtt_freq", "1", "-timeout", "120s", "-timeout_error",
            ],
            work,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(bot.pid) - cpu_before
        rss_after = rss_mib(bot.pid)
    finally:
        bot.terminate()
        bot.wait(30)
    per_endpoint = asyncio.run(endpoint_bytes(database_url, args.users))
    ok, failed = count(screen, "Successful call"), count(screen, "Failed call")
    commands = max(ok, 0) * args.commands
    samples = sorted(rtt_samples(work, "reply"))
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; SIPp and the bot on the same machine"
    )
    print(
        f"store: {args.users} users x {args.per_user} conferences (seeded in {seeded:.1f} s); "
        f"cache_seconds={args.cache_seconds}"
    )
    print(f"sipp exit {code}: sessions {ok} ok, {failed} failed; {args.commands} commands each")
    print(f"my meetings: {commands} answered in {elapsed:.2f} s -> {commands / elapsed:,.0f}/s")
    if commands:
        print(f"bot CPU: {cpu / commands * 1e6:.0f} µs per command")
    if samples:
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        print(
            f"command -> reply over {len(samples)} commands: p50 "
            f"{statistics.median(samples):.1f} ms, p99 {p99:.1f} ms (SIPp clock: ~4 ms steps)"
        )
    print(f"bot RSS: {rss_before:.1f} MiB before, {rss_after:.1f} MiB after")
    print(
        f"memory per cached user endpoint: {per_endpoint:,.0f} bytes "
        f"({per_endpoint * args.users / 2**20:.1f} MiB for {args.users})"
    )


if __name__ == "__main__":
    main()
