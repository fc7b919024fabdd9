"""/metrics of the bot's calls: the calls in progress, and the RTP packets their real streams
(bot.media.stream) sent and received - kept once the call has ended."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from bot.media.rtp import Packetiser
from bot.runtime import Runtime
from tests.calls.conftest import WAIT, Callee
from tests.test_metrics import bot_config, figure


class Silence:
    """A sound of ``seconds`` of silence (what Calls.play takes)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def at(self, rate: int) -> NDArray[np.int16]:
        return np.zeros(int(rate * self.seconds), dtype=np.int16)


class RtpPeer(asyncio.DatagramProtocol):
    """The callee's RTP socket: what arrives goes to a queue."""

    def __init__(self) -> None:
        self.arrived: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's datagram transport is one without deriving from asyncio's class
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.arrived.put_nowait(data)


async def test_calls_and_rtp_packets_are_counted(tmp_path: Path, aiohttp_client: Any) -> None:
    config = bot_config(tmp_path).model_copy(
        update={"media": bot_config(tmp_path).media.model_copy(update={"srtp": "off"})}
    )
    runtime = Runtime(config)
    callee = Callee()
    loop = asyncio.get_running_loop()
    transport, rtp = await loop.create_datagram_endpoint(RtpPeer, local_addr=("127.0.0.1", 0))
    callee.port = transport.get_extra_info("sockname")[1]
    await runtime.start()
    try:
        async with callee.endpoint:
            client = await aiohttp_client(runtime.admin.app())
            call = await runtime.calls.call(callee.uri)
            packets = Packetiser(0, 160)  # PCMU, 20 ms (RFC 3551 §4.5.14)
            for _ in range(3):
                transport.sendto(packets.next(b"\xff" * 160).to_bytes(),
                                 ("127.0.0.1", call.stream.port))  # fmt: skip
            await call.play(Silence(0.1))  # five packets of 20 ms, paced
            for _ in range(5):
                await asyncio.wait_for(rtp.arrived.get(), WAIT)
            during = await (await client.get("/metrics")).text()
            await call.hangup()
            await asyncio.wait_for(callee.next("BYE"), WAIT)
            after = await (await client.get("/metrics")).text()
    finally:
        transport.close()
        await runtime.stop()
    assert figure(during, "sipbot_calls") == 1
    assert figure(during, 'sipbot_rtp_packets_total{direction="received"}') == 3
    assert figure(during, 'sipbot_rtp_packets_total{direction="sent"}') >= 5
    assert figure(after, "sipbot_calls") == 0
    assert figure(after, 'sipbot_rtp_packets_total{direction="received"}') == 3
    assert figure(after, 'sipbot_rtp_packets_total{direction="sent"}') == figure(
        during, 'sipbot_rtp_packets_total{direction="sent"}'
    )
