"""Locating SIP servers (RFC 3263 §4): NAPTR, SRV, then A/AAAA, with dnspython.

Skype for Business publishes ``_sipinternaltls._tcp`` for its internal pools (MS-SIPRE,
"DNS SRV records for automatic client sign-in"), so it is tried after the RFC 3263 SRVs.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from bot.sip.transaction import Peer
from bot.sip.uri import SipUri

_NAPTR_SERVICES = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}  # RFC 3263 §4.1
_SRV_PREFIXES = (
    ("_sips._tcp", "TLS"),
    ("_sip._tcp", "TCP"),
    ("_sip._udp", "UDP"),
    ("_sipinternaltls._tcp", "TLS"),
)
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send to, in order; ``server_name`` is the name TLS must verify (SNI)."""

    peer: Peer
    server_name: str


class Resolver:
    def __init__(
        self,
        *,
        nameservers: list[str] | None = None,
        port: int = 53,
        transports: tuple[str, ...] = ("UDP", "TCP", "TLS"),
        lifetime: float = 3.0,
    ):
        self._resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            self._resolver.nameservers = nameservers
            self._resolver.port = port
        self._resolver.lifetime = lifetime
        self.transports = transports

    async def resolve(self, uri: SipUri) -> list[Target]:
        """Targets for ``uri`` in the order to try them (RFC 3263 §4.1–§4.2)."""
        host = uri.param("maddr") or uri.host
        bare = host.strip("[]")
        transport = _uri_transport(uri)
        if _is_ip(bare):
            # §4.1/§4.2: a numeric host needs no DNS
            chosen = transport or ("TLS" if uri.secure else "UDP")
            return [Target(Peer(chosen, bare, uri.port or DEFAULT_PORTS[chosen]), bare)]
        if uri.port is not None:
            chosen = transport or ("TLS" if uri.secure else "UDP")
            return await self._addresses(host, uri.port, chosen)
        services = await self._naptr(host, uri.secure, transport)
        if not services:
            services = [
                (f"{prefix}.{host}", kind)
                for prefix, kind in _SRV_PREFIXES
                if kind in self.transports
                and (transport is None or kind == transport)
                and (not uri.secure or kind == "TLS")
            ]
        targets: list[Target] = []
        for name, kind in services:
            targets += await self._srv(name, kind, host)
        if targets:
            return targets
        chosen = transport or ("TLS" if uri.secure else "UDP")
        return await self._addresses(host, DEFAULT_PORTS[chosen], chosen)

    async def _naptr(self, host: str, secure: bool, transport: str | None) -> list[tuple[str, str]]:
        answer = await self._query(host, "NAPTR")
        records = sorted(answer, key=lambda r: (r.order, r.preference))
        out = []
        for record in records:
            service = record.service.decode().upper()
            kind = _NAPTR_SERVICES.get(service)
            if kind is None or kind not in self.transports or record.flags.decode().lower() != "s":
                continue
            if (secure and kind != "TLS") or (transport and kind != transport):
                continue
            out.append((record.replacement.to_text(omit_final_dot=True), kind))
        return out

    async def _srv(self, name: str, kind: str, domain: str) -> list[Target]:
        answer = await self._query(name, "SRV")
        # RFC 2782: lowest priority first; weight order within a priority (deterministic here)
        records = sorted(answer, key=lambda r: (r.priority, -r.weight))
        targets: list[Target] = []
        for record in records:
            target = record.target.to_text(omit_final_dot=True)
            if target in ("", "."):
                continue
            for resolved in await self._addresses(target, record.port, kind):
                targets.append(Target(resolved.peer, target))
        return targets

    async def _addresses(self, host: str, port: int, kind: str) -> list[Target]:
        out = []
        for rdtype in ("A", "AAAA"):
            for record in await self._query(host, rdtype):
                out.append(Target(Peer(kind, record.address, port), host))
        return out

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        try:
            answer = await self._resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers, dns.exception.Timeout):
            return []
        return list(answer) if answer.rrset is not None else []


def _uri_transport(uri: SipUri) -> str | None:
    value = uri.transport
    if value is None:
        return None
    kind = value.upper()
    if kind == "TCP" and uri.secure:
        return "TLS"
    return kind if kind in DEFAULT_PORTS else None


@functools.lru_cache(maxsize=1024)
def _is_ip(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address (remembered: ipaddress parses in Python,
    and the bot sends to the same few contact addresses again and again)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
