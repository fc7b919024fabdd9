"""What the benchmarks share: free ports, waiting for the bot, and reading a process's
CPU time and memory from /proc (Linux)."""

from __future__ import annotations

import asyncio
import csv
import glob
import os
import re
import socket
import subprocess
from pathlib import Path

from bot.sip import Headers, Request, parse_uri
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for_bot(port: int) -> None:
    """Until the bot answers OPTIONS on 127.0.0.1:``port`` (10 s at most)."""
    timers = TimerConfig(t1=0.1, t2=0.4, t4=0.5)
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=timers)) as probe:
        for _ in range(100):
            ping = Request(
                "OPTIONS",
                parse_uri(f"sip:127.0.0.1:{port}"),
                Headers.of(
                    ("From", f"<sip:probe@example.test>;tag={new_tag()}"),
                    ("To", "<sip:bot@example.test>"),
                    ("Call-ID", new_tag()),
                    ("CSeq", "1 OPTIONS"),
                ),
            )
            if (
                await probe.request(ping, destination=Peer("UDP", "127.0.0.1", port))
            ).status == 200:
                return
            await asyncio.sleep(0.1)
    raise SystemExit("the bot did not start")


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU time the process has used so far (proc(5): utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    return sum(cpu_split(pid))


def rss_mib(pid: int) -> float:
    """The process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


def sipp(args: list[str], cwd: Path) -> tuple[int, str]:
    run = subprocess.run(
        ["sipp", *args, "-nostdin", "-fd", "1", "-stf", "/dev/null"],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    return run.returncode, run.stdout


def count(screen: str, label: str) -> int:
    found = re.findall(rf"{label}\s*\|\s*(\d+)\s*\|\s*(\d+)", screen)
    return int(found[-1][1]) if found else -1


def rtt_samples(work: Path, name: str) -> list[float]:
    """SIPp's response times (ms) for the rtd ``name``, from its -trace_rtt files."""
    samples: list[float] = []
    for path in glob.glob(str(work / "*_rtt.csv")):
        with open(path) as handle:
            for row in csv.reader(handle, delimiter=";"):
                if len(row) >= 3 and row[-1].strip() == name:  # Date_ms;response_time_ms;rtd
                    samples.append(float(row[-2]))
    return samples
