"""A SIP endpoint that answers every MESSAGE (and OPTIONS) with 200 through the full stack:
parse, validation, server transaction, response, retransmission timers.

Run: python bench/message_server.py --port 5070
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from bot.sip import Response, make_response
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint


def answer(incoming: ServerRequest) -> Response:
    return make_response(incoming.request, 200)


async def serve(host: str, port: int) -> None:
    endpoint = SipEndpoint(EndpointConfig(listen=(Listen(host=host, port=port),)), handler=answer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with endpoint:
        print(f"listening on {endpoint.address()}", flush=True)
        await stop.wait()
    stats = endpoint.layer.stats
    cpu = time.process_time()
    print(
        f"received={stats.received} dropped={stats.dropped} "
        f"absorbed={stats.retransmissions_absorbed} cpu={cpu:.2f}s "
        f"cpu_per_message={cpu / max(stats.received, 1) * 1e6:.0f}us",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5070)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
