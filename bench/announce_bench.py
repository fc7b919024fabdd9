"""Concurrent announcement streams: N AudioStreams in this process, each playing PCMU to its own
UDP sink socket in a child process, for a given time.

Run: python bench/announce_bench.py [--streams 200] [--seconds 60] [--aligned] [--srtp]

The child stamps every packet with the kernel's receive time (SO_TIMESTAMPNS), so its own
scheduling does not blur the figures. Prints, over all streams: packet-interval error
(|arrival interval - ptime|) p50/p99/max, the largest timestamp drift (how far, from the first
second to the last, a stream's arrival times moved against its RTP timestamps), lost packets,
the sender's CPU per stream and its RSS. Streams start at random phases within one ptime (as
calls do); ``--aligned`` starts them all on the same instant (the worst case for bursts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import selectors
import socket
import struct
import subprocess
import sys
import time
from array import array
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import eventloop  # noqa: E402
from bot.config.sections import LoggingConfig, MediaConfig  # noqa: E402
from bot.logs import configure  # noqa: E402
from bot.media.ports import PortRange  # noqa: E402
from bot.media.stream import AudioStream  # noqa: E402
from bot.sip.sdp_audio import AudioSession, Crypto  # noqa: E402

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux asm-generic/socket.h
PTIME = 0.02
CLOCK_RATE = 8000


# --- the sink (child process) -----------------------------------------------------------------


def sink(count: int) -> None:
    """Bind ``count`` sockets, print their ports, record (arrival, timestamp) per packet until
    stdin closes, then print the figures as JSON."""
    selector = selectors.DefaultSelector()
    sockets = []
    for index in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
        sockets.append(sock)
    selector.register(sys.stdin, selectors.EVENT_READ, -1)
    print(json.dumps([s.getsockname()[1] for s in sockets]), flush=True)
    arrivals = [array("d") for _ in range(count)]
    stamps = [array("q") for _ in range(count)]
    ancillary = socket.CMSG_SPACE(16)
    done = False
    while not done:
        for key, _ in selector.select():
            if key.data == -1:
                done = True
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            while True:
                try:
                    data, cmsgs, _, _ = sock.recvmsg(2048, ancillary)
                except BlockingIOError:
                    break
                if data[1] & 0x7F >= 72:  # RTCP landing on a sink socket (RFC 5761 §4)
                    continue
                seconds, nanos = struct.unpack("qq", cmsgs[0][2][:16])
                arrivals[key.data].append(seconds + nanos * 1e-9)
                stamps[key.data].append(struct.unpack_from("!I", data, 4)[0])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = figures(arrivals, stamps) | {"sink_cpu_s": usage.ru_utime + usage.ru_stime}
    print(json.dumps(result), flush=True)


def figures(arrivals: list[array[float]], stamps: list[array[int]]) -> dict[str, float]:
    errors, drifts, offsets = [], [], []
    received = 0
    for times_, ts_ in zip(arrivals, stamps, strict=True):
        times = np.asarray(times_)
        received += len(times)
        if len(times) < 100:
            continue
        errors.append(np.abs(np.diff(times) - PTIME))
        rtp = np.unwrap(np.asarray(ts_, dtype=np.float64), period=2**32) / CLOCK_RATE
        offset = (times - times[0]) - (rtp - rtp[0])
        second = int(1 / PTIME)
        drifts.append(abs(np.median(offset[-second:]) - np.median(offset[:second])))
        offsets.append(np.max(np.abs(offset)))
    error = np.concatenate(errors) * 1000
    return {
        "received": received,
        "p50_ms": float(np.percentile(error, 50)),
        "p99_ms": float(np.percentile(error, 99)),
        "p999_ms": float(np.percentile(error, 99.9)),
        "max_ms": float(np.max(error)),
        "drift_ms": float(np.max(drifts) * 1000),
        "max_offset_ms": float(np.max(offsets) * 1000),
    }


# --- the senders (this process) ---------------------------------------------------------------


async def senders(args: argparse.Namespace, ports: list[int]) -> dict[str, float]:
    settings = MediaConfig(rtcp_interval=5.0)
    span = PortRange(args.port_min, args.port_min + 4 * len(ports) + 200)
    streams = [
        await AudioStream.open(host="127.0.0.1", ports=span, settings=settings) for _ in ports
    ]
    t = np.arange(int(args.seconds * 8000)) / 8000
    sound = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.2

    async def one(stream: AudioStream, port: int, phase: float) -> float:
        await asyncio.sleep(begin + phase - loop.time())
        keys = {"local_crypto": Crypto.generate(), "remote_crypto": Crypto.generate()}
        stream.start(
            AudioSession(
                remote_address="127.0.0.1",
                remote_port=port,
                payload_type=0,
                codec="PCMU",
                **(keys if args.srtp else {}),
            )
        )
        return await stream.play(sound)

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic()
    phases = [0.0 if args.aligned else random.uniform(0, PTIME) for _ in ports]
    try:
        played = await asyncio.gather(
            *(one(s, p, phase) for s, p, phase in zip(streams, ports, phases, strict=True))
        )
    finally:
        for stream in streams:
            await stream.close()
    wall = time.monotonic() - wall
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "sent": sum(s.stats.packets_sent for s in streams),
        "played_s": min(played),
        "cpu_s": cpu,
        "wall_s": wall,
        "rss_mib": rss_mib(),
    }


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--aligned", action="store_true", help="start every stream together")
    parser.add_argument(
        "--srtp", action="store_true", help="SRTP (the sink reads the clear header)"
    )
    parser.add_argument("--port-min", type=int, default=24000, help="RTP ports from here")
    parser.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="the event loop, as runtime.event_loop (auto: the bot's default)",
    )
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return
    configure(LoggingConfig(level="WARNING"), stream=sys.stderr)
    child = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(args.streams)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        ports = json.loads(child.stdout.readline())
        sent = eventloop.run(senders(args, ports), args.loop)
    finally:
        child.stdin.close()
    got = json.loads(child.stdout.readline())
    child.wait()
    per_stream = sent["cpu_s"] / sent["wall_s"] / args.streams * 100
    print(
        f"{args.streams} streams × {args.seconds:g} s PCMU/20 ms"
        f"{' over SRTP' if args.srtp else ''}{' (aligned starts)' if args.aligned else ''}; "
        f"{os.cpu_count()} CPUs, "
        f"{platform.machine()}, Python {platform.python_version()}, loop {args.loop}"
    )
    print(f"packets: sent {sent['sent']:,}, received {got['received']:,}")
    print(
        f"interval error: p50 {got['p50_ms']:.3f} ms, p99 {got['p99_ms']:.3f} ms, "
        f"p99.9 {got['p999_ms']:.3f} ms, max {got['max_ms']:.3f} ms"
    )
    print(
        f"timestamp drift (first to last second, worst stream): {got['drift_ms']:.3f} ms; "
        f"largest arrival offset against the RTP clock: {got['max_offset_ms']:.3f} ms"
    )
    print(
        f"sender CPU: {sent['cpu_s']:.1f} s in {sent['wall_s']:.1f} s = "
        f"{per_stream:.3f} % of a core per stream; RSS {sent['rss_mib']:.0f} MiB "
        f"(the sink process: {got['sink_cpu_s']:.1f} s CPU)"
    )


if __name__ == "__main__":
    main()
