"""What the transaction layer holds for answered requests (RFC 3261 §17.2.2: a non-INVITE server
transaction stays Completed for Timer J, 64*T1 = 32 s over UDP): at thousands of commands a
second that is a hundred thousand of them, each one for the garbage collector to scan in its
full collections (60-340 ms pauses were seen at ~3,000/s, issue 19).

A real TransactionLayer answers N MESSAGEs with 200, as the bot does, and is left holding them
all; this prints the objects the collector then tracks, a full collection's time and the
memory held per answered request:

  PYTHONPATH=$PWD python bench/held_bench.py --requests 100000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.sip.events import RequestReceived  # noqa: E402
from bot.sip.layer import TransactionLayer  # noqa: E402
from bot.sip.message import make_response  # noqa: E402
from bot.sip.transaction import Peer  # noqa: E402

SOURCE = Peer("UDP", "192.0.2.7", 5072)
MESSAGE = (
    "MESSAGE sip:bot@example.test SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bK-held-{n};rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@example.test>;tag=alice\r\n"
    "To: <sip:bot@example.test>\r\n"
    "Call-ID: held-{n}@192.0.2.7\r\n"
    "CSeq: 1 MESSAGE\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 4\r\n\r\nhelp"
)


def answer(layer: TransactionLayer, count: int) -> None:
    for n in range(count):
        layer.receive(MESSAGE.format(n=n).encode(), SOURCE, now=0.0)
        event = layer.next_event()
        assert isinstance(event, RequestReceived)
        layer.respond(event.transaction, make_response(event.request, 200), now=0.0)
        layer.datagrams_to_send()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    layer = TransactionLayer()
    gc.collect()
    gc.freeze()  # as the bot does at start (bot.runtime.tune_gc)
    tracemalloc.start()
    answer(layer, args.requests)
    gc.collect()
    gc.collect()  # a tuple is untracked once what it holds is: a second pass settles it
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tracked = len(gc.get_objects())
    times = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - started)
    print(f"answered requests held: {layer.transaction_count}")
    print(f"objects the collector tracks: {tracked} ({tracked / args.requests:.2f} per request)")
    print(f"full collection: {statistics.median(times) * 1e3:.1f} ms (median of 5)")
    print(f"memory held: {held / args.requests:.0f} bytes per request")


if __name__ == "__main__":
    main()
