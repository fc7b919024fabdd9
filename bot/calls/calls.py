"""The bot's calls: every INVITE it originates (:meth:`Calls.invite`) and the audio calls built
on them (:meth:`Calls.call`: offer per ``media``, settle, start the stream). Every failure is a
sentence for the person who asked (:class:`CallFailed`)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterable

import structlog

from bot.calls.audio import SDP, AudioCall, AudioStreams, CallFailed, StreamFactory
from bot.calls.invite import InviteSession
from bot.calls.router import DialogRouter
from bot.config import Config
from bot.sender import Sender
from bot.services.registrar import Registrar
from bot.sip.digest import DigestClient
from bot.sip.errors import SipParseError
from bot.sip.headers import Address
from bot.sip.message import Response, new_call_id, new_request
from bot.sip.sdp import SessionDescription
from bot.sip.sdp_audio import (
    AudioPolicy,
    AudioSession,
    IceParams,
    SrtpPolicy,
    audio_offer,
    negotiated_audio,
)
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri, parse_uri
from bot.transport.endpoint import SipEndpoint

log = structlog.get_logger("bot.calls")
SHUTDOWN_WAIT = 5.0
"""Seconds the BYEs and CANCELs of :meth:`Calls.close` may take."""


class Calls:
    """Owner of every call of the bot (built by the runtime)."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        config: Config,
        router: DialogRouter,
        *,
        registrar: Registrar | None = None,
        streams: StreamFactory | None = None,
    ):
        self.endpoint = endpoint
        self.config = config
        self.router = router
        self.registrar = registrar
        self.streams: StreamFactory = streams or AudioStreams()
        self._sessions: set[InviteSession] = set()
        self._calls: set[AudioCall] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self._rtp_ended = (0, 0)
        """RTP packets sent and received by the streams of the calls that ended."""
        self.epid = secrets.token_hex(5)
        """This bot's endpoint id, the same for all its Lync requests: the ``epid`` From
        parameter pidgin-sipe sends (LYNC.md §2.6, ``From: …;tag=…;epid=…``)."""

    def __len__(self) -> int:
        return sum(1 for s in self._sessions if not s.ended.is_set())

    def reconfigure(self, config: Config) -> None:
        """New settings (a config reload): for the calls made from now on."""
        self.config = config

    def rtp_packets(self) -> tuple[int, int]:
        """RTP packets sent and received by every call so far (for /metrics)."""
        live = [call.stream.stats for call in self._calls]
        sent, received = self._rtp_ended
        return (sent + sum(s.packets_sent for s in live),
                received + sum(s.packets_received for s in live))  # fmt: skip

    # --- any INVITE ------------------------------------------------------------------------

    async def invite(
        self,
        target: str,
        *,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]] = (),
        credentials: DigestClient | None = None,
        lync: bool = False,
    ) -> InviteSession:
        """An answered INVITE dialog to ``target`` carrying ``body``; raises CallFailed.
        ``lync``: From carries :attr:`epid`."""
        return await self._invite(target, body, content_type, headers, credentials, None,
                                  lync=lync)  # fmt: skip

    async def _invite(
        self,
        target: str,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]],
        credentials: DigestClient | None,
        policy: AudioPolicy | None,
        *,
        lync: bool = False,
    ) -> InviteSession:
        uri = _sip_uri(target)
        self._sessions = {s for s in self._sessions if not s.ended.is_set()}
        places = self._places(uri, target)
        for index, (request_uri, destination) in enumerate(places):
            session = self._session(uri, request_uri, destination, body, content_type, headers,
                                    credentials, lync=lync)  # fmt: skip
            self._sessions.add(session)
            try:
                response = await session.establish()
            except BaseException:
                session.cancel()
                raise
            if 200 <= response.status < 300 and not session.ended.is_set():
                return session
            last = index + 1 == len(places)
            if last or not (response.status in (408, 480, 503) or 500 <= response.status < 600):
                raise CallFailed(self._sentence(target, response, session, credentials, policy))
        raise AssertionError("unreachable: places is never empty")

    def _places(self, uri: SipUri, target: str) -> list[tuple[SipUri, Peer | None]]:
        """Where the INVITE goes: a registered user of the embedded registrar at each of their
        bindings (newest first; a TCP/TLS binding over its own connection, RFC 5626 §5.3),
        anyone else at the URI (RFC 3263, or the outbound proxy). A GRUU names one instance,
        not the address of record (RFC 5627 §3.1 ``gr``; Lync's ``;gruu;opaque=``, such as a
        conference focus, LYNC.md §2.1), and the embedded registrar issues none: at the URI."""
        registrar = self.registrar
        if (
            registrar is None
            or uri.user is None
            or uri.has_param("gr")
            or uri.has_param("gruu")
            or uri.host.strip("[]") not in registrar.aliases
            or uri.port not in (None, self.endpoint.contact().sip_uri.port)
            or uri.user not in registrar.settings.users
        ):
            return [(uri, None)]
        bindings = registrar.lookup(uri.user, asyncio.get_running_loop().time())
        if not bindings:
            raise CallFailed(f"{target} is not available right now (not signed in).")
        return [(b.uri, b.peer if b.peer.reliable else None) for b in bindings]

    def _session(
        self,
        uri: SipUri,
        request_uri: SipUri,
        destination: Peer | None,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]],
        credentials: DigestClient | None,
        *,
        lync: bool,
    ) -> InviteSession:
        sip = self.config.sip
        transport = destination.transport if destination else (request_uri.transport or "udp")
        request = new_request(
            "INVITE",
            request_uri,
            from_=Address(
                uri=SipUri(user=sip.user, host=sip.domain),
                display_name=sip.display_name,
                params=(("epid", self.epid),) if lync else (),
            ),
            to=Address(uri=uri),
            call_id=new_call_id(sip.domain),
            contact=self.endpoint.contact(sip.user, transport.upper()),
            headers=headers,
            body=body,
            content_type=content_type,
        )
        return InviteSession(
            self.endpoint,
            self.router,
            request,
            destination=destination,
            credentials=credentials,
            answer_timeout=self.config.calls.answer_timeout,
            session_expires=self.config.calls.session_expires,
            remote=Sender(uri.user or "", uri.host),
        )

    def _sentence(
        self,
        target: str,
        response: Response,
        session: InviteSession,
        credentials: DigestClient | None,
        policy: AudioPolicy | None,
    ) -> str:
        """Why the call did not happen, for a person (RFC 3261 §21 by status)."""
        status = response.status
        reason = "".join(ch for ch in response.reason if ch.isprintable())[:80]
        if session.timed_out:
            return f"{target} did not answer within {self.config.calls.answer_timeout:g} s."
        if 200 <= status < 300:
            why = session.end_reason.rstrip(".")
            return f"{target} answered in a way the bot cannot follow ({why})."
        if status == 603:
            return f"{target} declined the call."
        if status in (486, 600):
            return f"{target} is busy."
        if status in (488, 606):
            if policy is not None:
                sentence = f"{target} has no codec in common with the bot"
                offered = ", ".join(policy.codecs)
                if policy.srtp == "off":  # or it takes SRTP only (RFC 4568): say both
                    return f"{sentence} (offered {offered}), or needs SRTP (media.srtp: off)."
                if policy.srtp == "require":  # or it takes no RTP/SAVP: say both
                    return (
                        f"{sentence} (offered {offered}), or takes no SRTP (media.srtp: require)."
                    )
                return f"{sentence} (offered {offered})."
            return f"{target} did not accept what the bot offered ({status} {reason})."
        if status in (401, 407):
            if credentials is None:
                return f"{target} wants the bot to sign in, and the bot has no credentials for it."
            return f"{target} did not accept the bot's credentials."
        if status == 404:
            return f"{target}: no such user."
        if status == 480:
            return f"{target} is not available right now."
        if status == 487:
            return f"The call to {target} was cancelled."
        if status in (408, 503, 504):
            return f"{target} cannot be reached ({status} {reason})."
        return f"{target} refused the call ({status} {reason})."

    # --- audio calls -----------------------------------------------------------------------

    async def call(
        self,
        target: str,
        *,
        lync: bool = False,
        headers: Iterable[tuple[str, str]] = (),
        credentials: DigestClient | None = None,
    ) -> AudioCall:
        """An answered audio call to ``target`` with its stream started; raises CallFailed.
        ``lync``: G.722 first, SRTP at least preferred, ICE (LYNC.md §2.3, §2.6)."""
        _sip_uri(target)  # before any port is taken
        media = self.config.media
        codecs = ("G722", *[c for c in media.codecs if c != "G722"]) if lync else media.codecs
        srtp: SrtpPolicy = "prefer" if lync and media.srtp == "off" else media.srtp
        policy = AudioPolicy(codecs=tuple(codecs), srtp=srtp, ptime=media.ptime, ice=lync)
        stream = await self.streams(self._media_host(), media)
        try:
            ice = IceParams(ufrag=stream.ice_ufrag, pwd=stream.ice_pwd) if lync else None
            offer = audio_offer(policy, stream.host, stream.port, ice=ice)
            invite = await self._invite(target, offer.serialize(), SDP, headers, credentials,
                                        policy, lync=lync)  # fmt: skip
            session = await self._settle(target, invite, offer)
        except BaseException:
            await stream.close()
            raise
        call = AudioCall(invite, stream, session, policy=policy, description=offer, ice=ice)
        stream.start(session)
        self._calls.add(call)
        watcher = asyncio.ensure_future(self._watch(call))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        log.info("calls.started", call_id=invite.call_id, target=target, codec=session.codec,
                 srtp=session.remote_crypto is not None)  # fmt: skip
        return call

    async def _settle(
        self, target: str, invite: InviteSession, offer: SessionDescription
    ) -> AudioSession:
        """What the 2xx's answer settles (RFC 3264 §6.1); an answer we cannot use ends the
        call at once with BYE (RFC 3261 §13.2.2.4: the ACK is sent, then the BYE)."""
        response = invite.response
        try:
            if response is None or not response.body:
                raise SipParseError("the answer has no SDP", status=488)
            return negotiated_audio(offer, SessionDescription.parse(response.body))
        except SipParseError as exc:
            await invite.bye(f"the answer could not be used: {exc.reason}.")
            if "SRTP" in exc.reason:
                raise CallFailed(
                    f"{target} answered without SRTP, and the bot needs SRTP"
                    f" (media.srtp: {self.config.media.srtp})."
                ) from exc
            raise CallFailed(
                f"{target} answered with audio the bot cannot use ({exc.reason})."
            ) from exc

    async def _watch(self, call: AudioCall) -> None:
        """The call's end, whatever ends it: at ``calls.max_duration`` the bot hangs up; the
        stream is closed either way."""
        limit = self.config.calls.max_duration
        try:
            await asyncio.wait_for(call.ended.wait(), limit)
        except TimeoutError:
            await call.invite.bye(f"the call reached calls.max_duration ({limit:g} s).")
        finally:
            await call.stream.close()
            if call in self._calls:
                self._calls.discard(call)
                stats, (sent, received) = call.stream.stats, self._rtp_ended
                self._rtp_ended = (sent + stats.packets_sent, received + stats.packets_received)

    def _media_host(self) -> str:
        """Where RTP is bound and what SDP names: media.host, else what SIP advertises."""
        configured = self.config.media.host or self.config.sip.advertise
        return configured or self.endpoint.contact().sip_uri.host.strip("[]")

    # --- the end -----------------------------------------------------------------------------

    async def close(self) -> None:
        """BYE every call (CANCEL those not answered), close every stream: the bot stops."""
        ends = [s.bye("the bot stopped.") for s in self._sessions if not s.ended.is_set()]
        if ends:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*ends, return_exceptions=True),
                                       SHUTDOWN_WAIT)  # fmt: skip
        for call in list(self._calls):
            await call.stream.close()
        for watcher in list(self._watchers):
            watcher.cancel()
        self._sessions.clear()
        self._calls.clear()


def _sip_uri(target: str) -> SipUri:
    try:
        uri = parse_uri(target) if target.startswith(("sip:", "sips:")) else None
    except SipParseError:
        uri = None
    if not isinstance(uri, SipUri):
        raise CallFailed(f"{target} is not a SIP address the bot can call.")
    return uri
