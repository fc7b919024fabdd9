"""A Lync / Skype for Business conference double: the focus and the A/V MCU of one conference,
on a real :class:`SipEndpoint` and a real UDP media socket on loopback.

Sources:
- the focus join: an INVITE whose body is a C3P ``addUser`` (MS-CONFBAS §2.2.3.4 and its
  example; pidgin-sipe sipe-conf.c ``sipe_invite_conf_focus``), answered 200 with a C3P
  ``<response code="success">`` echoing the user with the *granted* role; a body that is not
  a valid addUser (SDP, wrong ``to``/``from``/``confEntity``, an endpoint entity without its
  braces) gets ``ms-diagnostics: 3007 "AddUser C3P blob invalid."`` (MS-OCER §8.4);
- the conference event package: SUBSCRIBE ``Event: conference`` (RFC 4575, MS-CONFBAS §3.2),
  only from a user who joined the focus; 200 with the first full state in the body when
  ``ms-piggyback-first-notify`` is supported (pidgin-sipe sipe-subscriptions.c), else a
  NOTIFY; ``conf-uris`` lists the audio-video MCU; a partial NOTIFY (BENOTIFY for a
  subscriber that supports ``ms-benotify``) each time a user joins or leaves; ``Expires: 0``
  ends it with a terminated NOTIFY (RFC 6665 §4.2.1.4);
- the A/V MCU (MS-CONFAV, MS-SDPEXT, pidgin-sipe sdpmsg.c): the offer must be
  ``application/sdp`` (else 415, ms-diagnostics 7004), carry ICE (``a=ice-ufrag``/``ice-pwd``
  and a host candidate, else 488 with 7008) and SDES keys ``a=crypto``
  AES_CM_128_HMAC_SHA1_80 on RTP/AVP (MS-SDPEXT: "an application MUST use ... AVP in the m=
  line ... together with the a=crypto"; without one: 488 with ``52017;reason="Encryption
  levels dont match"``); it answers RTP/SAVP with its own key, G.722 when offered else PCMU,
  its own ICE credentials and host candidate; it sends STUN Binding checks (RFC 8445 §7.2.2,
  short-term credentials ``their-ufrag:our-ufrag``) to the offer's candidate until one is
  answered, answers the checks it receives, decrypts SRTP/SRTCP (pylibsrtp) and keeps the
  decoded audio it receives (G.711 µ-law, G.722 at 16 kHz).

What it does not model: more than one conference per double, the IM and application-sharing
MCUs, the lobby and admission policies, C3P commands in INFO (mute, deleteUser, ...), ICE
nominations and the re-INVITE with ``a=remote-candidates``, TURN/relay candidates, ICE draft-6
(the MSICE2 "ms-ice" variants), Siren/RTAudio, video, session timers, the MCU's own audio
(it sends no RTP), encryption keys of MS-CONFPRO, authentication and MTLS trust.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import struct
from dataclasses import dataclass, field
from typing import cast
from xml.sax.saxutils import escape, quoteattr

import G722
import numpy as np
import pylibsrtp
from aioice import stun
from defusedxml import ElementTree
from numpy.typing import NDArray

from bot.sip import Request, Response, make_response
from bot.sip.dialog import Dialog
from bot.sip.errors import SipParseError
from bot.sip.headers import Address
from bot.sip.message import new_tag
from bot.sip.sdp import Media, SessionDescription
from bot.sip.sdp_audio import Crypto
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

CCCP = "urn:ietf:params:xml:ns:cccp"
CI = "urn:ietf:params:xml:ns:conference-info"
MSCI = "http://schemas.microsoft.com/rtc/2005/08/confinfoextensions"
BRACED_GUID = re.compile(r"\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}")
SUITE = "AES_CM_128_HMAC_SHA1_80"


def _diagnostic(request: Request, status: int, code: int, reason: str, source: str) -> Response:
    response = make_response(request, status)
    response.headers.add("ms-diagnostics", f'{code};reason="{reason}";source="{source}"')
    return response


@dataclass
class Subscriber:
    dialog: Dialog
    user: str
    benotify: bool


@dataclass
class Participant:
    entity: str
    display: str
    roles: tuple[str, ...]
    endpoints: dict[str, str] = field(default_factory=dict)
    """endpoint entity -> session-type (focus, audio-video)."""


@dataclass
class LyncFocus:
    organizer: str = "alice@contoso.com"
    conference_id: str = "JL3GPNYP"
    grant_role: str = "presenter"
    """What addUser grants whatever was asked (a trusted application is a presenter)."""
    refuse_reason: str | None = None
    """Answer addUser with ``code="failure"`` and this reason (MS-CONFPRO §3.1.5.3)."""
    piggyback: bool = True
    """Answer ms-piggyback-first-notify with the state in the 200 (as Lync does)."""
    list_av_mcu: bool = True
    """List the audio-video MCU in conf-uris (False: the client must derive it)."""
    refuse_av: int | None = None
    """Answer A/V MCU INVITEs with this status (an MCU that is down or full)."""
    timers: TimerConfig = field(default_factory=TimerConfig)
    endpoint: SipEndpoint | None = None
    media: AvMedia | None = None
    log: list[str] = field(default_factory=list)
    """What happened, in order: "INVITE focus", "ACK focus", "SUBSCRIBE", "INVITE av", "ACK av",
    "BYE av", "SUBSCRIBE expires=0", "BYE focus", "NOTIFY 2", ..."""
    granted: dict[str, str] = field(default_factory=dict)
    """user -> role granted by addUser."""
    participants: dict[str, Participant] = field(default_factory=dict)
    version: int = 1
    focus_dialogs: dict[tuple[str, str], tuple[Dialog, str]] = field(default_factory=dict)
    """(Call-ID, our tag) -> (dialog, user) of each focus INVITE answered."""
    av_dialogs: dict[tuple[str, str], Dialog] = field(default_factory=dict)
    subscribers: dict[tuple[str, str], Subscriber] = field(default_factory=dict)
    notify_statuses: list[int] = field(default_factory=list)
    received: list[Request] = field(default_factory=list)
    """Every request that reached the focus or the MCU, as it arrived."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> Peer:
        self.media = await AvMedia.open()
        self.endpoint = SipEndpoint(
            EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=self.timers),
            handler=self.handle,
        )
        self.endpoint.on_ack = self._on_ack
        await self.endpoint.start()
        self.participants[f"sip:{self.organizer}"] = Participant(
            f"sip:{self.organizer}", "Alice Example", ("presenter",), {"{ORGANIZER}": "focus"}
        )
        return Peer("UDP", *self.endpoint.address())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.endpoint is not None:
            await self.endpoint.close()
        if self.media is not None:
            self.media.close()

    @property
    def focus_uri(self) -> str:
        return f"sip:{self.organizer};gruu;opaque=app:conf:focus:id:{self.conference_id}"

    @property
    def av_uri(self) -> str:
        return f"sip:{self.organizer};gruu;opaque=app:conf:audio-video:id:{self.conference_id}"

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, incoming: ServerRequest) -> Response | None:
        request = incoming.request
        self.received.append(request)
        uri = str(request.uri)
        if request.to.tag is not None:
            return self._in_dialog(request)
        if request.method == "INVITE" and uri == self.focus_uri:
            return self._join_focus(request)
        if request.method == "INVITE" and uri == self.av_uri:
            return self._join_av(request)
        if request.method == "SUBSCRIBE" and uri == self.focus_uri:
            return self._subscribe(request, None)
        if uri not in (self.focus_uri, self.av_uri):
            return _diagnostic(request, 404, 3012, "Invalid conference URI.", "focus")
        return make_response(request, 405)

    def _in_dialog(self, request: Request) -> Response:
        key = (request.call_id, request.to.tag or "")
        if request.method == "SUBSCRIBE" and key in self.subscribers:
            return self._subscribe(request, self.subscribers[key])
        if request.method == "BYE" and key in self.av_dialogs:
            del self.av_dialogs[key]
            self.log.append("BYE av")
            self._left(request.from_.uri, "audio-video")
            return make_response(request, 200)
        if request.method == "BYE" and key in self.focus_dialogs:
            _, user = self.focus_dialogs.pop(key)
            self.granted.pop(user, None)
            self.log.append("BYE focus")
            self._left(request.from_.uri, "focus")
            return make_response(request, 200)
        return make_response(request, 481)

    def _on_ack(self, ack: Request) -> None:
        key = (ack.call_id, ack.to.tag or "")
        if key in self.focus_dialogs:
            self.log.append("ACK focus")
        elif key in self.av_dialogs:
            self.log.append("ACK av")

    # --- the focus: addUser -----------------------------------------------------------------

    def _join_focus(self, request: Request) -> Response:
        user = str(request.from_.uri)
        added = self._add_user(request, user)
        if isinstance(added, Response):
            return added
        request_id, endpoint = added
        tag = new_tag()
        dialog = Dialog.as_uas(request, tag)
        self.focus_dialogs[(request.call_id, tag)] = (dialog, user)
        if self.refuse_reason is not None:
            return self._add_user_failed(request, tag, request_id, user)
        self.granted[user] = self.grant_role
        self.log.append("INVITE focus")
        response = make_response(request, 200, to_tag=tag)
        response.headers.add("Contact", f"<{self.focus_uri}>;isfocus")
        response.headers.add("Allow-Events", "conference")
        response.headers.add("Content-Type", "application/cccp+xml")
        response.body = (
            f'<?xml version="1.0"?><response xmlns="{CCCP}" xmlns:ci="{CI}" '
            f'xmlns:msci="{MSCI}" C3PVersion="1" requestId={quoteattr(request_id)} '
            f'from={quoteattr(self.focus_uri)} to={quoteattr(user)} code="success">'
            f"<addUser><conferenceKeys confEntity={quoteattr(self.focus_uri)}/>"
            f"<ci:user entity={quoteattr(user)}><ci:roles><ci:entry>{self.grant_role}"
            f"</ci:entry></ci:roles><ci:endpoint entity={quoteattr(endpoint)}>"
            "<ci:status>connected</ci:status></ci:endpoint></ci:user></addUser></response>"
        ).encode()
        self._joined(user, endpoint, "focus", request.from_.display_name or "")
        return response

    def _add_user_failed(self, request: Request, tag: str, request_id: str, user: str) -> Response:
        """200 with a C3P failure: the reason on the command element (MS-CONFPRO §3.1.5.3)."""
        self.log.append("INVITE focus refused")
        response = make_response(request, 200, to_tag=tag)
        response.headers.add("Contact", f"<{self.focus_uri}>")
        response.headers.add("Content-Type", "application/cccp+xml")
        response.body = (
            f'<response xmlns="{CCCP}" C3PVersion="1" requestId={quoteattr(request_id)} '
            f'from={quoteattr(self.focus_uri)} to={quoteattr(user)} code="failure">'
            f"<addUser reason={quoteattr(self.refuse_reason or '')}/></response>"
        ).encode()
        return response

    def _add_user(self, request: Request, user: str) -> tuple[str, str] | Response:
        """(requestId, endpoint entity) of a valid addUser for ``user``, or the 3007 refusal."""
        invalid = _diagnostic(request, 400, 3007, "AddUser C3P blob invalid.", "focus")
        if request.content_type != "application/cccp+xml" or not request.contacts:
            return invalid
        try:
            root = ElementTree.fromstring(request.body)
        except ElementTree.ParseError:
            return invalid
        commands = list(root)
        request_id = root.get("requestId", "")
        if (
            root.tag != f"{{{CCCP}}}request"
            or root.get("C3PVersion") != "1"
            or root.get("to") != self.focus_uri
            or root.get("from") != user
            or not request_id.isdigit()
            or len(commands) != 1
            or commands[0].tag != f"{{{CCCP}}}addUser"
        ):
            return invalid
        keys = commands[0].find(f"{{{CCCP}}}conferenceKeys")
        ci_user = commands[0].find(f"{{{CI}}}user")
        endpoint = ci_user.find(f"{{{CI}}}endpoint") if ci_user is not None else None
        if (
            keys is None
            or keys.get("confEntity") != self.focus_uri
            or ci_user is None
            or ci_user.get("entity") != user
            or endpoint is None
            or not BRACED_GUID.fullmatch(endpoint.get("entity", ""))
        ):
            return invalid
        return request_id, endpoint.get("entity", "")

    # --- the focus: the conference event package ---------------------------------------------

    def _subscribe(self, request: Request, known: Subscriber | None) -> Response:
        user = str(request.from_.uri)
        if (request.headers.get("event") or "").split(";")[0].strip() != "conference":
            return make_response(request, 489)  # RFC 6665 §4.2.1.1: Bad Event
        if known is None and user not in self.granted:
            return _diagnostic(request, 403, 3014, "Failed authorization.", "focus")
        expires_text = (request.headers.get("expires") or "3600").strip()
        expires = min(int(expires_text), 3600) if expires_text.isdigit() else 3600
        supported = ",".join(request.headers.values("supported")).replace(" ", "").split(",")
        initial = known is None
        if known is None:
            tag = new_tag()
            response = make_response(request, 200, to_tag=tag)
            dialog = Dialog.as_uas(request, tag)
            dialog.usage = "SUBSCRIBE"
            known = Subscriber(dialog, user, "ms-benotify" in supported)
            self.subscribers[(request.call_id, tag)] = known
            self.log.append("SUBSCRIBE")
        else:
            response = make_response(request, 200)
            self.log.append("SUBSCRIBE expires=0" if expires == 0 else "SUBSCRIBE refresh")
        response.headers.add("Contact", f"<{self.focus_uri}>;isfocus")
        response.headers.add("Expires", str(expires))
        if expires == 0:
            self.subscribers.pop((known.dialog.call_id, known.dialog.local_tag), None)
            self._notify(known, self._state(full=True), "terminated;reason=noresource")
        elif initial and "ms-piggyback-first-notify" in supported and self.piggyback:
            response.headers.add("Content-Type", "application/conference-info+xml")
            response.headers.add("Event", "conference")
            response.headers.add("Subscription-State", f"active;expires={expires}")
            response.body = self._state(full=True)
        else:
            self._notify(known, self._state(full=True), f"active;expires={expires}")
        return response

    def _state(self, *, full: bool, changed: list[Participant] | None = None) -> bytes:
        """A conference-info document: the full state, or a partial one with ``changed``."""
        uris = (
            f"<conf-uris><entry><uri>{escape(self.av_uri)}</uri>"
            "<purpose>audio-video</purpose></entry></conf-uris>"
            if self.list_av_mcu
            else ""
        )
        description = (
            f"<conference-description><subject>Weekly sync</subject>{uris}"
            f"<msci:conference-id>{self.conference_id}</msci:conference-id>"
            "</conference-description>"
            if full
            else ""
        )
        shown = list(self.participants.values()) if full else changed or []
        users = "".join(_user_xml(p, full=full) for p in shown)
        return (
            f'<?xml version="1.0" encoding="utf-8"?><conference-info xmlns="{CI}" '
            f'xmlns:msci="{MSCI}" entity={quoteattr(self.focus_uri)} '
            f'state="{"full" if full else "partial"}" version="{self.version}">'
            f'{description}<users state="{"full" if full else "partial"}">{users}</users>'
            "</conference-info>"
        ).encode()

    def _joined(self, user: str, endpoint: str, session_type: str, display: str) -> None:
        participant = self.participants.setdefault(
            user, Participant(user, display, (self.granted.get(user, "attendee"),))
        )
        participant.endpoints[endpoint] = session_type
        self._changed(participant)

    def _left(self, uri: object, session_type: str) -> None:
        participant = self.participants.get(str(uri))
        if participant is None:
            return
        for entity, kind in list(participant.endpoints.items()):
            if kind == session_type:
                del participant.endpoints[entity]
        if not participant.endpoints:
            del self.participants[participant.entity]
            participant.endpoints = {}
        self._changed(participant)

    def add_participant(self, entity: str, display: str = "") -> None:
        """Someone else joins the audio of the conference: a partial notification."""
        self._joined(entity, "{" + secrets.token_hex(4).upper() + "}", "audio-video", display)

    def _changed(self, participant: Participant) -> None:
        self.version += 1
        for subscriber in list(self.subscribers.values()):
            self._notify(
                subscriber, self._state(full=False, changed=[participant]), "active;expires=3600"
            )

    def _notify(self, subscriber: Subscriber, body: bytes, state: str) -> None:
        assert self.endpoint is not None
        method = "BENOTIFY" if subscriber.benotify and state.startswith("active") else "NOTIFY"
        notify = subscriber.dialog.create_request(
            method,
            contact=Address.parse(f"<{self.focus_uri}>"),
            body=body,
            content_type="application/conference-info+xml",
        )
        notify.headers.add("Event", "conference")
        notify.headers.add("Subscription-State", state)
        self.log.append(f"{method} {self.version}")
        task = asyncio.get_running_loop().create_task(self._send(notify, expect=method == "NOTIFY"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, request: Request, *, expect: bool) -> None:
        assert self.endpoint is not None
        response = await self.endpoint.request(request)
        if expect:
            self.notify_statuses.append(response.status)

    # --- the A/V MCU --------------------------------------------------------------------------

    def _join_av(self, request: Request) -> Response:
        assert self.media is not None
        if request.content_type != "application/sdp":
            return _diagnostic(
                request,
                415,
                7004,
                "The AV MCU supports only 'Content-Type: application/sdp' offer/answers.",
                "avmcu",
            )
        if self.refuse_av is not None:
            return make_response(request, self.refuse_av)
        answered = self.media.answer(request.body)
        if isinstance(answered, tuple):
            status, code, reason = answered
            return _diagnostic(request, status, code, reason, "avmcu")
        tag = new_tag()
        self.av_dialogs[(request.call_id, tag)] = Dialog.as_uas(request, tag)
        self.log.append("INVITE av")
        response = make_response(request, 200, to_tag=tag)
        response.headers.add("Contact", f"<{self.av_uri}>")
        response.headers.add("Content-Type", "application/sdp")
        response.body = answered
        self._joined(str(request.from_.uri), "{AV-" + tag + "}", "audio-video", "")
        return response


def _user_xml(participant: Participant, *, full: bool) -> str:
    if not participant.endpoints:
        return f'<user entity={quoteattr(participant.entity)} state="deleted"/>'
    roles = "".join(f"<entry>{r}</entry>" for r in participant.roles)
    endpoints = "".join(
        f'<endpoint entity={quoteattr(e)} session-type="{kind}"><status>connected</status>'
        "</endpoint>"
        for e, kind in participant.endpoints.items()
    )
    return (
        f'<user entity={quoteattr(participant.entity)} state="full">'
        f"<display-text>{escape(participant.display)}</display-text>"
        f"<roles>{roles}</roles>{endpoints}</user>"
    )


# --- media: ICE checks, SRTP, decoding ----------------------------------------------------------


def ulaw_decode(data: bytes) -> NDArray[np.int16]:
    """ITU-T G.711 µ-law to 16-bit linear (the inverse of the segment encoding)."""
    u = ~np.frombuffer(data, dtype=np.uint8)
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    value = magnitude - 0x84
    return np.where(u & 0x80, -value, value).astype(np.int16)


@dataclass
class Offer:
    address: str
    port: int
    ufrag: str
    pwd: str
    crypto_key: bytes
    codec: str
    payload_type: int


class AvMedia(asyncio.DatagramProtocol):
    """The MCU's media port: answers and sends STUN checks, decrypts and decodes audio."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.ufrag = secrets.token_hex(4)
        self.pwd = secrets.token_hex(12)
        self.key = secrets.token_bytes(30)
        self.offer: Offer | None = None
        self.checks_answered = asyncio.Event()
        """A STUN check the MCU sent was answered with valid integrity."""
        self.checks_received = 0
        self.audio_received = asyncio.Event()
        self.packets = 0
        self.rtcp_packets = 0
        self.rejected = 0
        """Packets that failed SRTP authentication or came with an unknown payload type."""
        self.pcm: list[NDArray[np.int16]] = []
        self._srtp: pylibsrtp.Session | None = None
        self._checking: asyncio.Task[None] | None = None
        self._g722 = G722.G722(16000, 64000)

    @classmethod
    async def open(cls) -> AvMedia:
        loop = asyncio.get_running_loop()
        _, media = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return media

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    @property
    def sample_rate(self) -> int:
        return 16000 if self.offer is not None and self.offer.codec == "G722" else 8000

    def received_audio(self) -> NDArray[np.int16]:
        return np.concatenate(self.pcm) if self.pcm else np.zeros(0, np.int16)

    def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        if self.transport is not None:
            self.transport.close()

    # --- offer/answer -------------------------------------------------------------------

    def answer(self, body: bytes) -> bytes | tuple[int, int, str]:
        """Our SDP answer, or (status, ms-diagnostics code, reason)."""
        try:
            offer = SessionDescription.parse(body)
        except ValueError:
            return 488, 7008, "Error parsing SDP."
        audio = next((m for m in offer.media if m.kind == "audio" and m.port), None)
        if audio is None:
            return 488, 7008, "Error parsing SDP."
        ufrag, pwd = audio.attribute("ice-ufrag"), audio.attribute("ice-pwd")
        candidate = _host_candidate(audio)
        if not ufrag or not pwd or candidate is None:
            return 488, 7008, "Error parsing SDP."
        key = _crypto_key(audio)
        if key is None:
            return 488, 52017, "Encryption levels dont match"
        rtpmap = audio.rtpmap()
        names = {pt: rtpmap.get(pt, ("", 0))[0] for pt in audio.formats}
        chosen = next((pt for pt in audio.formats if names[pt] == "G722"), None) or next(
            (pt for pt in audio.formats if names[pt] == "PCMU"), None
        )
        if chosen is None:
            return 488, 7008, "Error parsing SDP."
        self.offer = Offer(
            address=candidate[0],
            port=candidate[1],
            ufrag=ufrag,
            pwd=pwd,
            crypto_key=key,
            codec=names[chosen],
            payload_type=int(chosen),
        )
        policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._srtp = pylibsrtp.Session(policy)
        rate = "8000"  # G.722's RTP clock is 8000 (RFC 3551 §4.5.2)
        media = Media(
            kind="audio",
            port=self.port,
            proto="RTP/SAVP",
            formats=(chosen,),
            attributes=(
                ("rtpmap", f"{chosen} {names[chosen]}/{rate}"),
                ("ice-ufrag", self.ufrag),
                ("ice-pwd", self.pwd),
                ("candidate", f"1 1 UDP 2130706431 127.0.0.1 {self.port} typ host"),
                ("crypto", f"{Crypto(tag=1, suite=SUITE, key=self.key)}|2^31"),
                ("sendrecv", None),
            ),
        )
        self._checking = asyncio.get_running_loop().create_task(self._check())
        return SessionDescription.of("127.0.0.1", (media,)).serialize()

    # --- ICE connectivity checks (RFC 8445 §7.2.2, §7.3) --------------------------------------

    async def _check(self) -> None:
        """Send Binding requests to the offer's candidate until one is answered."""
        assert self.offer is not None and self.transport is not None
        for _ in range(50):
            request = stun.Message(
                message_method=stun.Method.BINDING,
                message_class=stun.Class.REQUEST,
                attributes={
                    "USERNAME": f"{self.offer.ufrag}:{self.ufrag}",
                    "PRIORITY": 1853824767,
                    "ICE-CONTROLLING": secrets.randbits(64),
                },
            )
            request.add_message_integrity(self.offer.pwd.encode())
            request.add_fingerprint()
            self.transport.sendto(bytes(request), (self.offer.address, self.offer.port))
            try:
                await asyncio.wait_for(self.checks_answered.wait(), 0.1)
                return
            except TimeoutError:
                continue

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 20 and data[0] < 2 and data[4:8] == struct.pack("!I", stun.COOKIE):
            self._stun(data, addr)
        elif len(data) >= 12 and data[0] >> 6 == 2:
            self._srtp_in(data)

    def _stun(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        if message.message_class == stun.Class.REQUEST:
            # RFC 8445 §7.3: USERNAME is "our-ufrag:their-ufrag", integrity with our password
            username = str(message.attributes.get("USERNAME", ""))
            if not username.startswith(f"{self.ufrag}:") or not message.check_message_integrity(
                self.pwd.encode()
            ):
                return
            self.checks_received += 1
            reply = stun.Message(
                message_method=stun.Method.BINDING,
                message_class=stun.Class.RESPONSE,
                transaction_id=message.transaction_id,
                attributes={"XOR-MAPPED-ADDRESS": addr},
            )
            reply.add_message_integrity(self.pwd.encode())
            reply.add_fingerprint()
            self.transport.sendto(bytes(reply), addr)
        elif message.message_class == stun.Class.RESPONSE and self.offer is not None:
            # §7.2.5.2: a success response protected with the peer's password
            if message.check_message_integrity(self.offer.pwd.encode()):
                self.checks_answered.set()

    # --- SRTP in --------------------------------------------------------------------------

    def _srtp_in(self, data: bytes) -> None:
        if self._srtp is None or self.offer is None:
            return
        if 200 <= data[1] <= 204:  # RTCP packet types (RFC 5761 §4)
            try:
                self._srtp.unprotect_rtcp(data)
            except pylibsrtp.Error:
                self.rejected += 1
                return
            self.rtcp_packets += 1
            return
        try:
            packet = self._srtp.unprotect(data)
        except pylibsrtp.Error:
            self.rejected += 1
            return
        payload_type = packet[1] & 0x7F
        if payload_type != self.offer.payload_type:
            self.rejected += 1
            return
        header = 12 + 4 * (packet[0] & 0x0F)
        if packet[0] & 0x10:  # RFC 3550 §5.3.1 header extension
            header += 4 + 4 * struct.unpack("!H", packet[header + 2 : header + 4])[0]
        payload = packet[header:]
        if self.offer.codec == "G722":
            pcm = np.asarray(self._g722.decode(payload), dtype=np.int16)
        else:
            pcm = ulaw_decode(payload)
        self.pcm.append(pcm)
        self.packets += 1
        self.audio_received.set()


def _host_candidate(audio: Media) -> tuple[str, int] | None:
    """The first UDP host candidate (RFC 8839 §5.1)."""
    for value in audio.attribute_values("candidate"):
        parts = value.split()
        if len(parts) >= 8 and parts[2].upper() == "UDP" and parts[7] == "host":
            if parts[5].isdigit():
                return parts[4], int(parts[5])
    return None


def _crypto_key(audio: Media) -> bytes | None:
    """The key of an AES_CM_128_HMAC_SHA1_80 ``a=crypto`` line (MS-SDPEXT: the only suite
    supported), on RTP/AVP (MS-SDPEXT) or RTP/SAVP (RFC 4568)."""
    if audio.proto.upper() not in ("RTP/AVP", "RTP/SAVP"):
        return None
    for value in audio.attribute_values("crypto"):
        try:
            crypto = Crypto.parse(value)
        except SipParseError:
            continue
        if crypto.suite == SUITE and len(crypto.key) == 30:
            return crypto.key
    return None
