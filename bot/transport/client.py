"""The one client path for requests we originate (DESIGN "Outgoing requests"): where the request
goes (RFC 3263, RFC 3261 §8.1.2), failover between targets, the digest retry (decided sans-IO by
:meth:`DigestClient.retry`), TCP for large requests with a UDP retry on refusal (RFC 3261
§18.1.1), and the ACK and CANCEL of our INVITEs. The endpoint (bot.transport.endpoint) runs
the transactions; this module decides what to send, where, and whether to send again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.sip.digest import DigestClient
from bot.sip.headers import Address, Via
from bot.sip.message import Request, Response, make_response, new_branch
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri
from bot.transport.resolver import Resolver, Target

log = logging.getLogger(__name__)

MTU_THRESHOLD = 1300
"""RFC 3261 §18.1.1: a request larger than this (path MTU unknown) goes over TCP."""

Provisional = Callable[[Response], None]


@dataclass(slots=True)
class Outcome:
    """A final response, and whether we made it up ourselves (timeout, transport error)."""

    response: Response
    local: bool = False
    refused: bool = False
    """The peer refused the connection (a TCP reset, RFC 3261 §18.1.1)."""


class Transactions(Protocol):
    """What the client needs of the endpoint that owns the sockets and the transaction layer."""

    resolver: Resolver

    @property
    def outbound_proxy(self) -> SipUri | None: ...

    def via(self, transport: str = "UDP") -> Via: ...

    def via_text(self, transport: str, branch: str) -> str: ...

    def name_server(self, peer: Peer, server_name: str) -> None: ...

    def transact(
        self,
        request: Request,
        peer: Peer,
        wire: bytes,
        branch: str,
        on_provisional: Provisional | None,
    ) -> Awaitable[Outcome]: ...

    def acknowledge(self, ack: Request, peer: Peer) -> None: ...

    def cancel_transaction(self, invite: Request) -> None: ...


class SipClient:
    """Sends requests through ``endpoint`` and returns their final responses."""

    def __init__(self, endpoint: Transactions):
        self.endpoint = endpoint

    async def request(
        self,
        request: Request,
        *,
        destination: Peer | Target | None = None,
        credentials: DigestClient | None = None,
        on_provisional: Provisional | None = None,
    ) -> Response:
        """Send ``request`` and return its final response.

        A 401/407 is answered with ``credentials`` as :meth:`DigestClient.retry` decides; later
        requests reuse the last challenge with a rising nonce count (RFC 3261 §22.3). Targets
        come from RFC 3263 unless ``destination`` is given; on a timeout, a transport error or
        a 503 the next target is tried (§4.3). A timeout surfaces as 408 and a transport error
        as 503, as RFC 3261 §8.1.3.1 prescribes.
        """
        if destination is not None and credentials is None:
            # one target, no digest retry (the requests of a dialog): its one transaction
            peer = destination if isinstance(destination, Peer) else self._reach(destination)
            return (await self._send_once(request, peer, on_provisional)).response
        targets = [destination] if destination is not None else await self.targets(request)
        if not targets:
            return make_response(request, 503, "Service Unavailable (no DNS targets)")
        outcome: Outcome | None = None
        for index, target in enumerate(targets):
            peer = self._reach(target) if isinstance(target, Target) else target
            outcome = await (
                self._send_once(request, peer, on_provisional)
                if credentials is None  # no digest retry: the transaction itself
                else self._send_with_auth(request, peer, credentials, on_provisional)
            )
            if not (outcome.local or outcome.response.status == 503):
                break
            if index + 1 < len(targets):  # RFC 3263 §4.3: on to the next target
                log.warning(
                    "sip.request.failed_over method=%s call_id=%s peer=%s status=%d reason=%s",
                    request.method,
                    request.call_id,
                    peer,
                    outcome.response.status,
                    outcome.response.reason,
                )
        assert outcome is not None
        return outcome.response

    def _reach(self, target: Target) -> Peer:
        """The peer of an RFC 3263 target, whose TLS name the endpoint is told (RFC 5922 §4:
        only a TLS connection presents one; no entry per UDP or TCP peer ever reached)."""
        if target.peer.transport == "TLS":
            self.endpoint.name_server(target.peer, target.server_name)
        return target.peer

    async def _send_with_auth(
        self,
        request: Request,
        peer: Peer,
        credentials: DigestClient,
        on_provisional: Provisional | None,
    ) -> Outcome:
        credentials.preauthorize(request)
        while True:
            outcome = await self._send_once(request, peer, on_provisional)
            retry = credentials.retry(request, outcome.response)
            if retry is None:
                return outcome
            request = retry

    def _send_once(
        self, request: Request, peer: Peer, on_provisional: Provisional | None
    ) -> Awaitable[Outcome]:
        """One transaction for ``request`` to ``peer``: the endpoint's future of its outcome,
        or for a large request over UDP the coroutine that tries TCP first."""
        if "max-forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")  # RFC 3261 §8.1.1.6
        wire, branch = self._add_via(request, peer)
        if peer.transport == "UDP" and len(wire) > MTU_THRESHOLD:
            return self._over_tcp(request, peer, len(wire), on_provisional)
        return self.endpoint.transact(request, peer, wire, branch, on_provisional)

    async def _over_tcp(
        self, request: Request, peer: Peer, size: int, on_provisional: Provisional | None
    ) -> Outcome:
        """RFC 3261 §18.1.1: over 1300 bytes and the path MTU unknown -> a congestion-
        controlled transport; the top Via then names it."""
        endpoint = self.endpoint
        stream = Peer("TCP", peer.host, peer.port)
        wire, branch = self._add_via(request, stream)
        outcome = await endpoint.transact(request, stream, wire, branch, on_provisional)
        if not outcome.refused:
            return outcome
        # §18.1.1: "If the attempt to establish the connection generates either an ICMP
        # Protocol Not Supported, or results in a TCP reset, the element SHOULD retry the
        # request, using UDP" (a softphone that listens on UDP only).
        log.info(
            "sip.request.retried_over_udp method=%s call_id=%s peer=%s size=%d",
            request.method,
            request.call_id,
            peer,
            size,
        )
        wire, branch = self._add_via(request, peer)
        return await endpoint.transact(request, peer, wire, branch, on_provisional)

    def _add_via(self, request: Request, peer: Peer) -> tuple[bytes, str]:
        """We originate the request: exactly one Via, ours, with a fresh branch (§8.1.1.7).
        The request as it goes on the wire, and that branch."""
        branch = new_branch()
        # replaces the Via of an earlier send (a digest retry, another target); on the usual
        # first send there is none yet (Dialog.create_request, new_request)
        request.headers.put_first("Via", self.endpoint.via_text(peer.transport, branch))
        return request.serialize(), branch

    def send_ack(self, ack: Request, peer: Peer) -> None:
        """Send the ACK for a 2xx to an INVITE we sent (RFC 3261 §13.2.2.4), with a Via of its
        own (§17.1.1.3); the layer re-sends it whenever that 2xx is retransmitted."""
        ack.set_via(self.endpoint.via(peer.transport))
        self.endpoint.acknowledge(ack, peer)

    def cancel(self, invite: Request) -> None:
        """CANCEL our pending INVITE (RFC 3261 §9.1); nothing when it is no longer pending."""
        self.endpoint.cancel_transaction(invite)

    async def targets(self, request: Request) -> list[Target]:
        """Where ``request`` goes: the outbound proxy, else the first Route, else the
        Request-URI (RFC 3261 §8.1.2), located with RFC 3263."""
        uri = self.endpoint.outbound_proxy
        if uri is None:
            routes = request.headers.values("route")
            first = Address.parse(routes[0]).uri if routes else request.uri
            if not isinstance(first, SipUri):
                return []
            uri = first
        return await self.endpoint.resolver.resolve(uri)
