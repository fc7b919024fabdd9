"""Memory of several sipbot instances behind Kamailio's dispatcher under steady load (issue 19).

The setup of tests/e2e/test_dispatcher.py: deploy/kamailio/dispatcher.cfg as shipped, INSTANCES
``sipbot run`` processes on 127.0.0.1 (one port each) sharing a temporary PostgreSQL
(Debian ``postgresql``, started here and removed after), and SIPp as alice (from 127.0.0.5,
an address Kamailio does not trust) opening Lync-style IM sessions to sip:bot@example.test
through Kamailio, COMMANDS "help" each (tests/e2e/sipp/proxied_session.xml). Every SAMPLE
seconds it prints each instance's resident memory (RSS); at the end, each instance's RSS after
the warm-up and at the end, its growth, its CPU time and share of the commands.

Run, for example (as root, PostgreSQL runs as the postgres user then):
  python bench/dispatcher_bench.py                       # 1,000 commands/s for 10 minutes
  python bench/dispatcher_bench.py --duration 120 --rate 500
Commands/s = SIPp calls/s x commands per session.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import count, cpu_seconds, free_port, rss_mib  # noqa: E402

KAMAILIO = ROOT / "deploy" / "kamailio"
SCENARIO = ROOT / "tests" / "e2e" / "sipp" / "proxied_session.xml"
ALICE_HOST = "127.0.0.5"


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: its tools run as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def temporary_postgres() -> Iterator[str]:
    """host:port of a fresh PostgreSQL with a trusted user ``sipbot``, removed afterwards."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL is not installed; run: apt-get install -y postgresql")
    bin_dir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="sipbot-bench-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "sipbot", "--auth=trust"]
    subprocess.run(as_postgres(initdb), check=True, capture_output=True)
    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    subprocess.run(
        as_postgres(
            [pg_ctl, "-D", str(data), "-w", "-o", options, "-l", str(root / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                         "-U", "sipbot", "bench"]),
            check=True,
        )  # fmt: skip
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


def instance_config(port: int, kamailio_port: int, database: str) -> dict[str, object]:
    return {
        "sip": {
            "mode": "external",
            "listen": [{"transport": "udp", "host": "127.0.0.1", "port": port}],
            "trusted_proxies": ["127.0.0.1"],
        },
        "registrar": {
            "server": f"sip:127.0.0.1:{kamailio_port}",
            "username": "bot",
            "password": "bot-secret",  # deploy/kamailio/db/subscriber's demo row
            "retry_min": 0.2,  # the instances start before Kamailio
            "retry_max": 1.0,
        },
        "im": {
            "max_sessions_per_sender": 1000,  # one alice, many sessions
            "rate_limit": {"rate": 1_000_000.0, "burst": 1_000_000},
            "loop_breaker": {"max_replies": 1_000_000},
        },
        "conferences": {"database_url": f"postgresql+asyncpg://sipbot@{database}/bench"},
        "admin": {"enabled": False},
        "logging": {"format": "json", "level": "INFO"},
    }


def wait_for_line(log: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"no {text!r} in {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000, help="commands per second")
    parser.add_argument("--commands", type=int, default=20, help="commands per session")
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--sample", type=float, default=10, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the logs (printed folder)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped: clean up all the same

    work = Path(tempfile.mkdtemp(prefix="sipbot-dispatcher-bench-"))
    started: list[subprocess.Popen[bytes]] = []
    with temporary_postgres() as database:
        try:
            bots, logs = start_stack(args, work, database, started)
            run_load(args, work, bots, logs, started)
        finally:
            for process in reversed(started):
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(30)
    if args.keep:
        print(f"logs in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def start_stack(
    args: argparse.Namespace, work: Path, database: str, started: list[subprocess.Popen[bytes]]
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """The instances, one after the other (the schema is created by the first), then Kamailio
    dispatching to them; returns once every instance is registered."""
    kamailio_port = free_port()
    ports = [free_port() for _ in range(args.instances)]
    bots, logs = [], []
    for index, port in enumerate(ports):
        config = work / f"config-{index}.yaml"
        config.write_text(yaml.safe_dump(instance_config(port, kamailio_port, database)))
        log = work / f"bot-{index}.log"
        with open(log, "wb") as out:
            bot = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", str(config),
                 "--data-dir", str(work / f"data-{index}")],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started.append(bot)
        bots.append(bot)
        logs.append(log)
        wait_for_line(log, '"bot.started"')
    tables = work / "kamailio-db"
    shutil.copytree(KAMAILIO / "db", tables)
    (work / "dispatcher.list").write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in ports))
    with open(work / "kamailio.log", "wb") as out:
        started.append(
            subprocess.Popen(
                [
                    "kamailio",
                    "-f",
                    str(KAMAILIO / "dispatcher.cfg"),
                    "-A",
                    f'DBURL="text://{tables}"',
                    "-A",
                    f'DS_LIST="{work / "dispatcher.list"}"',
                    "-m",
                    "512",  # MiB of shared memory (transactions), as in production
                    "-l",
                    f"udp:127.0.0.1:{kamailio_port}",
                    "-DD",
                    "-E",
                    "-Y",
                    str(work),
                    "-w",
                    str(work),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        )
    for log in logs:
        wait_for_line(log, '"registration.succeeded"')
    args.kamailio_port = kamailio_port
    return bots, logs


def run_load(
    args: argparse.Namespace,
    work: Path,
    bots: list[subprocess.Popen[bytes]],
    logs: list[Path],
    started: list[subprocess.Popen[bytes]],
) -> None:
    calls_per_second = args.rate / args.commands
    calls = int(calls_per_second * args.duration)
    scenario = work / "session.xml"
    scenario.write_text(
        SCENARIO.read_text()
        .replace("COMMANDS", str(args.commands))
        .replace("COMMAND", "help")
        .replace("MARK", "Commands:")
        .replace("PAUSE", "0")
    )
    screen = work / "sipp.out"
    with open(screen, "wb") as out:
        sipp = subprocess.Popen(
            ["sipp", f"127.0.0.1:{args.kamailio_port}", "-sf", str(scenario),
             "-m", str(calls), "-r", f"{calls_per_second:g}", "-l", "5000", "-i", ALICE_HOST,
             "-p", str(free_port()), "-base_cseq", "100", "-nostdin", "-fd", "1",
             "-stf", "/dev/null", "-timeout", f"{args.duration + 120:.0f}s",
             "-recv_timeout", "10s"],  # a lost reply fails its session, not the run
            cwd=work, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    started.append(sipp)
    begin = time.monotonic()
    cpu_before = [cpu_seconds(bot.pid) for bot in bots]
    samples: list[tuple[float, list[float]]] = []
    print(f"{'t (s)':>6}  " + "  ".join(f"RSS {i} (MiB)" for i in range(len(bots))))
    while sipp.poll() is None:
        time.sleep(args.sample)
        elapsed = time.monotonic() - begin
        rss = [rss_mib(bot.pid) for bot in bots]
        samples.append((elapsed, rss))
        print(f"{elapsed:6.0f}  " + "  ".join(f"{value:12.1f}" for value in rss), flush=True)
    elapsed = time.monotonic() - begin
    cpu = [cpu_seconds(bot.pid) - before for bot, before in zip(bots, cpu_before, strict=True)]
    text = screen.read_text(errors="replace")
    ok, failed = count(text, "Successful call"), count(text, "Failed call")
    answered = [log.read_text(errors="replace").count('"im.command.answered"') for log in logs]
    report(args, elapsed, ok, failed, answered, cpu, samples)


def report(
    args: argparse.Namespace,
    elapsed: float,
    ok: int,
    failed: int,
    answered: list[int],
    cpu: list[float],
    samples: list[tuple[float, list[float]]],
) -> None:
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; SIPp, Kamailio, PostgreSQL and the instances on it"
    )
    print(
        f"{args.instances} instances, {args.rate:g} commands/s offered for {args.duration:g} s "
        f"({args.commands} per session); sessions: {ok} successful, {failed} failed"
    )
    total = sum(answered)
    print(f"commands answered: {total} in {elapsed:.0f} s -> {total / elapsed:,.0f} commands/s")
    baseline = next((rss for at, rss in samples if at >= args.warmup), samples[0][1])
    final = samples[-1][1]
    for index, (first, last) in enumerate(zip(baseline, final, strict=True)):
        share = answered[index] / max(total, 1)
        print(
            f"instance {index}: {answered[index]} commands ({share:.0%}), "
            f"CPU {cpu[index]:.0f} s; RSS {first:.1f} MiB after {args.warmup:g} s -> "
            f"{last:.1f} MiB at the end ({(last - first) / first:+.1%})"
        )


if __name__ == "__main__":
    main()
