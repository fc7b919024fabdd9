"""IM command round trips against `sipbot run`, driven by SIPp over UDP.

Two modes, each a SIPp scenario in bench/sipp/:
- session: Lync-style IM sessions; in each, COMMANDS x (MESSAGE -> 200, reply MESSAGE -> 200).
  Latency is SIPp's response-time measure "reply": from sending the command to receiving the
  bot's reply MESSAGE.
- pager: pager-mode MESSAGE (RFC 3428) with its digest challenge, the reply going to alice's
  registered contact, where a second SIPp counts them. Throughput only (the reply is a new
  transaction on another socket, so SIPp cannot time it). With --preauth, each call takes one
  challenge and then sends COMMANDS MESSAGEs pre-authorized with that nonce and a rising nc
  (RFC 7616 §3.4): one transaction per command, as Linphone sends them.

Run, for example:
  python bench/sipp_im_bench.py --mode session --command help --rate 150 --commands 20
  python bench/sipp_im_bench.py --mode session --command help --rate 50 --commands 20 --calls 500
  python bench/sipp_im_bench.py --command "my meetings" --cache-seconds 0 --rate 60
  python bench/sipp_im_bench.py --mode pager --command help --rate 3000 --calls 30000
  python bench/sipp_im_bench.py --mode pager --preauth --command help --rate 150 --commands 20
  python bench/sipp_im_bench.py --rate 100 --profile /tmp/bot.prof   # then: python -m pstats
Rates are SIPp calls per second: commands/s = rate x commands in session mode and with
--preauth.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import count, cpu_split, free_port, rtt_samples, sipp, wait_for_bot  # noqa: E402

SCENARIOS = ROOT / "bench" / "sipp"
E2E = ROOT / "tests" / "e2e" / "sipp"
PROFILER = """
import cProfile, runpy, sys, time
out = sys.argv.pop(1)
profiler = cProfile.Profile(time.thread_time)
sys.argv[0] = "bot"
try:
    profiler.runcall(runpy.run_module, "bot", run_name="__main__", alter_sys=True)
finally:
    profiler.dump_stats(out)
"""
"""The bot under cProfile timed by the CPU time of its loop's thread, not the wall clock: on a
shared machine a wall-clock profile charges to the system call under way (a sendto waking
SIPp) the time the bot waited for a core."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("session", "pager"), default="session")
    parser.add_argument("--command", default="help")
    parser.add_argument("--rate", type=float, default=100, help="SIPp calls per second")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument(
        "--commands", type=int, default=20, help="commands per session (or pre-authorized call)"
    )
    parser.add_argument(
        "--preauth",
        action="store_true",
        help="pager mode: one challenge per call, then COMMANDS pre-authorized MESSAGEs",
    )
    parser.add_argument("--limit", type=int, default=2000, help="SIPp concurrent calls")
    parser.add_argument(
        "--cache-seconds",
        type=float,
        default=5.0,
        help="conferences.cache_seconds (0: every 'my meetings' reads the database)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run the bot under cProfile (CPU time) and write its stats here",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sipbot-bench-"))
    port = free_port()
    config = {
        "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": port}]},
        "im": {
            "rate_limit": {"rate": 1_000_000.0, "burst": 1_000_000},
            "loop_breaker": {"max_replies": 1_000_000},  # one user, thousands of commands
            "max_sessions_per_sender": 1000,  # and hundreds of sessions open at once
        },
        "conferences": {
            "database_url": f"sqlite+aiosqlite:///{work / 'bot.db'}",
            "cache_seconds": args.cache_seconds,
        },
        "logging": {"format": "json", "level": "INFO"},
        "admin": {"port": 0},  # on, as shipped, but never contending for the default port
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    with open(work / "bot.log", "w") as log:
        bot_args = ["run", "--config", str(work / "config.yaml")]
        command = (
            ["-c", PROFILER, str(args.profile), *bot_args]
            if args.profile
            else ["-m", "bot", *bot_args]
        )
        bot = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    try:
        asyncio.run(wait_for_bot(port))
        started, cpu_before = time.perf_counter(), cpu_split(bot.pid)
        if args.mode == "session":
            code, screen, commands, samples = session(args, port, work)
        else:
            code, screen, commands, samples = pager(args, port, work)
        elapsed = time.perf_counter() - started
        user_now, system_now = cpu_split(bot.pid)
        user, system = user_now - cpu_before[0], system_now - cpu_before[1]
        cpu = user + system
    finally:
        bot.terminate()
        bot.wait(30)
    ok, failed = count(screen, "Successful call"), count(screen, "Failed call")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()} ({sys.executable}: the bot runs on the same interpreter, "
        "whose build moves the figures); SIPp and the bot on the same machine"
    )
    print(
        f"mode={args.mode}{' preauth' if args.preauth else ''} command={args.command!r} "
        f"rate={args.rate}/s calls={args.calls} cache_seconds={args.cache_seconds}"
    )
    print(f"sipp exit {code}: successful calls {ok}, failed calls {failed}")
    print(
        f"commands answered: {commands} in {elapsed:.2f} s -> {commands / elapsed:,.0f} commands/s"
    )
    if commands > 0:
        print(
            f"bot CPU: {cpu:.2f} s, {cpu / commands * 1e6:.0f} µs per command "
            f"(one core saturates at ~{commands / cpu:,.0f} commands/s); "
            f"user {user / commands * 1e6:.0f} µs + kernel {system / commands * 1e6:.0f} µs"
        )
    if samples:
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        print(
            f"command -> reply latency over {len(samples)} commands: p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms, max {samples[-1]:.1f} ms (SIPp clock: ~4 ms steps)"
        )


def session(args: argparse.Namespace, port: int, work: Path) -> tuple[int, str, int, list[float]]:
    scenario = work / "session.xml"
    scenario.write_text(
        (SCENARIOS / "session_help.xml")
        .read_text()
        .replace("COMMANDS", str(args.commands))
        .replace("COMMAND", args.command)
    )
    code, screen = sipp(
        [
            f"127.0.0.1:{port}",
            "-sf",
            str(scenario),
            "-m",
            str(args.calls),
            "-r",
            str(args.rate),
            "-l",
            str(args.limit),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-base_cseq",
            "100",
            "-trace_rtt",
            "-rtt_freq",
            "1",
            "-timeout",
            "60s",
            "-timeout_error",
        ],
        work,
    )
    samples = rtt_samples(work, "reply")
    return code, screen, count(screen, "Successful call") * args.commands, samples


def pager(args: argparse.Namespace, port: int, work: Path) -> tuple[int, str, int, list[float]]:
    inbox_port = free_port()
    register = work / "register.xml"
    register.write_text(
        (E2E / "pager_alice.xml").read_text().replace("CONTACT_PORT", str(inbox_port))
    )
    inbox = work / "inbox.xml"
    inbox.write_text(
        (E2E / "pager_inbox.xml")
        .read_text()
        .replace("CHECKS", "")
        .replace('<Reference variables="REFERENCES"/>', "")
    )
    sender = work / "sender.xml"
    scenario = "pager_preauth.xml" if args.preauth else "pager_help.xml"
    replies_expected = args.calls * (args.commands if args.preauth else 1)
    sender.write_text(
        (SCENARIOS / scenario)
        .read_text()
        .replace("COMMANDS", str(args.commands))
        .replace("COMMAND", args.command)
    )
    # alice registers once (her contact is the inbox), then the load runs
    text = register.read_text()
    head = text[: text.index('  <send retrans="500">\n    <![CDATA[\n\n      MESSAGE')]
    register.write_text(head + "</scenario>\n")
    code, screen = sipp(
        [
            f"127.0.0.1:{port}",
            "-sf",
            str(register),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-timeout",
            "20s",
            "-timeout_error",
        ],
        work,
    )
    if code != 0:
        raise SystemExit(f"registration failed:\n{screen}")
    receiver = subprocess.Popen(
        [
            "sipp",
            f"127.0.0.1:{port}",
            "-sf",
            str(inbox),
            "-m",
            str(replies_expected),
            "-i",
            "127.0.0.1",
            "-p",
            str(inbox_port),
            "-nostdin",
            "-fd",
            "1",
            "-stf",
            "/dev/null",
            "-timeout",
            "300s",
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        text=True,
    )
    code, screen = sipp(
        [
            f"127.0.0.1:{port}",
            "-sf",
            str(sender),
            "-m",
            str(args.calls),
            "-r",
            str(args.rate),
            "-l",
            str(args.limit),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-timeout",
            "60s",
            "-timeout_error",
        ],
        work,
    )
    inbox_screen = receiver.communicate(timeout=320)[0]
    replies = count(inbox_screen, "Successful call")
    return code, screen + inbox_screen, replies, []


if __name__ == "__main__":
    main()
