"""Small stand-ins for owner C's DialogRouter and Calls (and owner M's AudioStream) with the
interfaces of ISSUE17.md, so joining can be tested before those pieces are merged: a bot-side
SipEndpoint, in-dialog requests routed by dialog id, INVITE/ACK/BYE client dialogs, and an
audio call that offers what a Lync client offers (RTP/AVP + a=crypto, ICE host candidate,
G.722 first), answers STUN checks and sends SRTP G.722."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import G722
import numpy as np
import pylibsrtp
from aioice import stun
from numpy.typing import NDArray

from bot.sip.dialog import Dialog, DialogId
from bot.sip.message import Response, make_response, new_request
from bot.sip.sdp import SessionDescription
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.uri import parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
BOT = "sip:bot@contoso.com"
SCENARIOS = Path(__file__).parent / "sipp"
WAIT = 5.0


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most WAIT s) for ``condition``, checked every 10 ms of the loop."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class StandInRouter:
    """DialogRouter's add / add_pending / remove / route, without the identity gate."""

    def __init__(self) -> None:
        self.dialogs: dict[DialogId, object] = {}
        self.pending: dict[tuple[str, str], object] = {}

    def add(self, dialog_id: DialogId, handler: object) -> None:
        self.dialogs[dialog_id] = handler

    def add_pending(self, call_id: str, local_tag: str, handler: object) -> None:
        self.pending[(call_id, local_tag)] = handler

    def remove(
        self, dialog_id: DialogId | None = None, *, pending: tuple[str, str] | None = None
    ) -> None:
        if dialog_id is not None:
            self.dialogs.pop(dialog_id, None)
        if pending is not None:
            self.pending.pop(pending, None)

    def route(self, incoming: ServerRequest) -> Response | None:
        request = incoming.request
        key = (request.call_id, request.to.tag or "", request.from_.tag or "")
        handler = self.dialogs.get(key) or self.pending.get(key[:2])
        if handler is None:
            return make_response(request, 481)
        return handler(incoming)  # type: ignore[operator, no-any-return]


async def bot_endpoint(router: StandInRouter, proxy: Peer) -> SipEndpoint:
    """The bot's SIP endpoint: everything it sends goes to ``proxy`` (the double)."""
    endpoint = SipEndpoint(
        EndpointConfig(
            listen=(Listen(host="127.0.0.1", port=0),),
            timers=FAST,
            outbound_proxy=parse_uri(f"sip:{proxy.host}:{proxy.port};lr"),  # type: ignore[arg-type]
        ),
        handler=router.route,
    )
    await endpoint.start()
    return endpoint


class CallFailed(Exception):
    pass


@dataclass
class StandInSession:
    """InviteSession's surface: the 2xx, the dialog, bye, ended."""

    endpoint: SipEndpoint
    router: StandInRouter
    response: Response
    dialog: Dialog
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""

    def handle(self, incoming: ServerRequest) -> Response:
        if incoming.request.method == "BYE":
            self._over("hung up by the peer")
            return make_response(incoming.request, 200)
        return make_response(incoming.request, 405)

    async def bye(self) -> None:
        if self.ended.is_set():
            return
        self._over("hung up")
        await self.endpoint.request(self.dialog.create_request("BYE"))

    def _over(self, reason: str) -> None:
        self.router.remove(self.dialog.id)
        self.end_reason = reason
        self.ended.set()


class StandInCalls:
    """Calls.invite and Calls.call as ISSUE17.md gives them."""

    def __init__(self, endpoint: SipEndpoint, router: StandInRouter):
        self.endpoint = endpoint
        self.router = router
        self.calls: list[StandInAudioCall] = []

    async def invite(
        self,
        target: str,
        *,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]] = (),
        credentials: object = None,
    ) -> StandInSession:
        request = new_request(
            "INVITE",
            parse_uri(target),
            from_=f"<{BOT}>",
            to=f"<{target}>",
            contact=self.endpoint.contact("bot"),
            headers=headers,
            body=body,
            content_type=content_type,
        )
        response = await self.endpoint.request(request)
        if not 200 <= response.status < 300:
            raise CallFailed(f"{target}: {response.status}")
        dialog = Dialog.as_uac(request, response)
        proxy = self.endpoint.outbound_proxy
        assert proxy is not None and proxy.port is not None
        self.endpoint.client.send_ack(
            dialog.create_ack(request.cseq.seq), Peer("UDP", proxy.host, proxy.port)
        )
        session = StandInSession(self.endpoint, self.router, response, dialog)
        self.router.add(dialog.id, session.handle)
        return session

    async def call(
        self, target: str, *, lync: bool = False, headers: Iterable[tuple[str, str]] = ()
    ) -> StandInAudioCall:
        assert lync, "the stand-in offers the Lync form only"
        media = await LyncClientMedia.open()
        try:
            invite = await self.invite(
                target, body=media.offer(), content_type="application/sdp", headers=headers
            )
        except CallFailed:
            media.close()
            raise
        media.settle(invite.response.body)
        call = StandInAudioCall(invite, media, target)
        self.calls.append(call)
        return call


@dataclass
class StandInAudioCall:
    invite: StandInSession
    stream: LyncClientMedia
    remote: str

    @property
    def ended(self) -> asyncio.Event:
        return self.invite.ended

    async def hangup(self) -> None:
        self.stream.close()
        await self.invite.bye()


class LyncClientMedia(asyncio.DatagramProtocol):
    """The audio side of a Lync client's call to the AV MCU (what AudioStream will do)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.ufrag, self.pwd = secrets.token_hex(4), secrets.token_hex(12)
        self.key = secrets.token_bytes(30)
        self.remote: tuple[str, int] | None = None
        self.checks_answered = 0
        self._srtp: pylibsrtp.Session | None = None
        self._remote_pwd = ""

    @classmethod
    async def open(cls) -> LyncClientMedia:
        loop = asyncio.get_running_loop()
        _, media = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return media

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def offer(self, *, crypto: bool = True, ice: bool = True) -> bytes:
        lines = [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=-",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=audio {self.port} RTP/AVP 9 0 8",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
        ]
        if ice:
            lines += [
                f"a=ice-ufrag:{self.ufrag}",
                f"a=ice-pwd:{self.pwd}",
                f"a=candidate:1 1 UDP 2130706431 127.0.0.1 {self.port} typ host",
            ]
        if crypto:
            inline = base64.b64encode(self.key).decode()
            lines.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^31")
        return ("\r\n".join([*lines, "a=sendrecv"]) + "\r\n").encode()

    def settle(self, answer: bytes) -> None:
        sdp = SessionDescription.parse(answer)
        audio = sdp.media[0]
        self._remote_pwd = audio.attribute("ice-pwd") or ""
        self.remote = (sdp.media_address(audio) or "", audio.port)
        self.payload_type = int(audio.formats[0])
        self._srtp = pylibsrtp.Session(
            pylibsrtp.Policy(key=self.key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        )

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Answer the MCU's STUN checks (RFC 8445 §7.3) with our short-term credentials."""
        assert self.transport is not None
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        if message.message_class != stun.Class.REQUEST:
            return
        if not message.check_message_integrity(self.pwd.encode()):
            return
        reply = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=message.transaction_id,
            attributes={"XOR-MAPPED-ADDRESS": addr},
        )
        reply.add_message_integrity(self.pwd.encode())
        reply.add_fingerprint()
        self.transport.sendto(bytes(reply), addr)
        self.checks_answered += 1

    def send_g722(self, pcm16k: NDArray[np.int16]) -> int:
        """Encode and send ``pcm16k`` (16 kHz) as 20 ms G.722 SRTP packets; how many."""
        assert self.transport is not None and self._srtp is not None and self.remote
        encoder = G722.G722(16000, 64000)
        ssrc, sent = secrets.randbits(32), 0
        for sequence, start in enumerate(range(0, len(pcm16k) - 319, 320)):
            payload = encoder.encode(pcm16k[start : start + 320])
            header = bytes([0x80, self.payload_type]) + (sequence + 1).to_bytes(2, "big")
            header += (sequence * 160).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
            self.transport.sendto(self._srtp.protect(header + bytes(payload)), self.remote)
            sent += 1
        return sent

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def tone(seconds: float, rate: int = 16000, hz: float = 440.0) -> NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
