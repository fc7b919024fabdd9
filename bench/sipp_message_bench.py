"""SIPp-driven MESSAGE benchmark: SIPp (UAC) -> sipbot's stack (answers 200) over UDP.

Each call is one MESSAGE transaction through parse, validation, server transaction and
response. SIPp and the stack run as separate processes (one core each on a 2-core machine).

Run: python bench/sipp_message_bench.py [--calls 100000] [--rate 9000]
Prints SIPp's successful/failed calls and the achieved transactions per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "peers" / "sipp" / "message_uac.xml"
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100000)
    parser.add_argument("--rate", type=int, default=9000, help="calls per second SIPp offers")
    args = parser.parse_args()
    port = free_port()
    server_cmd = [sys.executable, str(ROOT / "bench" / "message_server.py"), "--port", str(port)]
    server = subprocess.Popen(
        server_cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert server.stdout is not None
    server.stdout.readline()  # "listening on ..."
    try:
        started = time.perf_counter()
        sipp = subprocess.run(
            [
                "sipp",
                f"127.0.0.1:{port}",
                "-sf",
                str(SCENARIO),
                "-s",
                "bot",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-m",
                str(args.calls),
                "-r",
                str(args.rate),
                "-l",
                "2000",
                "-nostdin",
                "-timeout",
                "120s",
                "-timeout_error",
                "-trace_stat",
                "-fd",
                "1",
                "-stf",
                "/dev/null",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server_report = server.communicate(timeout=10)[0].strip()
    screen = sipp.stdout
    ok = _count(screen, "Successful call")
    failed = _count(screen, "Failed call")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    )
    print(f"offered rate: {args.rate}/s  calls: {args.calls}")
    print(f"successful calls: {ok}  failed calls: {failed}  sipp exit: {sipp.returncode}")
    print(f"elapsed: {elapsed:.2f} s  ->  {ok / elapsed:,.0f} MESSAGE transactions/s")
    print(f"stack process: {server_report}")


def _count(screen: str, label: str) -> int:
    matches = re.findall(rf"{label}\s*\|\s*(\d+)\s*\|\s*(\d+)", screen)
    return int(matches[-1][1]) if matches else -1


if __name__ == "__main__":
    main()
