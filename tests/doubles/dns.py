"""A small DNS server on loopback (dnspython), answering from a zone held in a dict.

It answers what it holds, an empty NOERROR for a name it holds under another type, and NXDOMAIN
for a name it does not hold (RFC 1035 §4.1.1, RFC 2308 §2.1), which is all RFC 3263 location
needs (NAPTR, SRV, A/AAAA).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Zone = dict[tuple[str, str], list[str]]
"""(absolute name, type) -> records in zone-file text, e.g. ("_sip._udp.a.test.", "SRV")."""


class FakeDns(asyncio.DatagramProtocol):
    """Answers from ``zone``; NXDOMAIN for names it does not hold."""

    def __init__(self, zone: Zone):
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None
        self.queries: list[tuple[str, str]] = []
        self.last_query_at: float | None = None
        """Wall-clock time (``time.time()``) of the last query answered."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        records = self.zone.get((name, rdtype))
        if records:
            response.answer.append(dns.rrset.from_text_list(name, 60, "IN", rdtype, records))
        elif not any(key[0] == name for key in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)
        self.last_query_at = time.time()


@contextlib.asynccontextmanager
async def serving(zone: Zone) -> AsyncIterator[tuple[FakeDns, int]]:
    """The server on 127.0.0.1 and a free UDP port: itself and the port."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: FakeDns(zone), local_addr=("127.0.0.1", 0)
    )
    try:
        yield protocol, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()
