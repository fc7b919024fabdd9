"""Parse and serialize micro-benchmark: a typical 600-byte MESSAGE, one core.

Run: python bench/parse_bench.py [--seconds 3]
Prints parses/s, serializations/s and full round trips/s (best of 5 runs).
"""

from __future__ import annotations

import argparse
import platform
import time

from bot.sip import parse_message

MESSAGE = (
    b"MESSAGE sip:bot@example.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-524287-1---8f2b9c0e6a1d4f3b\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:bot@example.test>\r\n"
    b'From: "Alice Example" <sip:alice@example.test>;tag=9fxced76sl\r\n'
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 2 MESSAGE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5062;transport=udp>\r\n"
    b"User-Agent: Linphone-Desktop/5.1.2 (belle-sip/5.1.65)\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n"
    b"Date: Wed, 25 Nov 2026 12:00:00 GMT\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\n"
    b"Content-Length: 11\r\n"
    b"\r\n"
    b"my meetings"
)


def rate(fn: object, seconds: float) -> float:
    best = 0.0
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        end = start + seconds / 5
        while time.perf_counter() < end:
            for _ in range(200):
                fn()  # type: ignore[operator]
            n += 200
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    parsed = parse_message(MESSAGE)
    print(
        f"message: {len(MESSAGE)} bytes; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    parse_rate = rate(lambda: parse_message(MESSAGE), args.seconds)
    print(f"parse:              {parse_rate:10,.0f} /s")
    print(f"serialize:          {rate(parsed.serialize, args.seconds):10,.0f} /s")
    both = rate(lambda: parse_message(MESSAGE).serialize(), args.seconds)
    print(f"parse + serialize:  {both:10,.0f} /s")


if __name__ == "__main__":
    main()
