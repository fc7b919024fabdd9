"""RTP/RTCP port pairs from the configured range (RFC 3550 §11)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.errors import Refusal
from bot.media.ports import NoFreePort, PortError, PortRange
from tests.media.ports import some_range


def quiet() -> asyncio.DatagramProtocol:
    return asyncio.DatagramProtocol()


def can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_pairs_are_even_and_odd_and_both_bound() -> None:
    ports = some_range()
    pair = await ports.open("127.0.0.1", quiet, quiet)
    try:
        assert pair.port % 2 == 0 and ports.low <= pair.port < pair.port + 1 <= ports.high
        assert pair.rtp.get_extra_info("sockname")[1] == pair.port
        assert pair.rtcp.get_extra_info("sockname")[1] == pair.port + 1
        assert ports.in_use == {pair.port}
    finally:
        await pair.aclose()
    assert ports.in_use == frozenset()


async def test_exhausted_range_says_so_in_a_sentence() -> None:
    ports = some_range(size=4)  # two pairs
    pairs = []
    try:
        while len(pairs) < 2:
            pairs.append(await ports.open("127.0.0.1", quiet, quiet))
        with pytest.raises(NoFreePort) as caught:
            await ports.open("127.0.0.1", quiet, quiet)
        assert isinstance(caught.value, Refusal)
        assert str(caught.value).startswith(f"No free RTP port in {ports.low}-{ports.high}")
    finally:
        for pair in pairs:
            await pair.aclose()
    again = await ports.open("127.0.0.1", quiet, quiet)  # freed pairs come back
    await again.aclose()


async def test_ports_other_programs_hold_are_skipped() -> None:
    ports = some_range(size=4)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", ports.low + 1))  # the RTCP port of the first pair
        pair = await ports.open("127.0.0.1", quiet, quiet)
        try:
            assert pair.port == ports.low + 2
            assert can_bind(ports.low)  # the RTP socket of the failed pair was closed
        finally:
            await pair.aclose()


async def test_an_address_not_on_this_machine_is_said_at_once() -> None:
    ports = some_range()
    with pytest.raises(PortError) as caught:
        await ports.open("192.0.2.1", quiet, quiet)  # TEST-NET-1 (RFC 5737)
    assert not isinstance(caught.value, NoFreePort)
    assert str(caught.value).startswith("Cannot open RTP ports on 192.0.2.1: ")
    assert ports.in_use == frozenset()


def test_a_range_without_a_pair_is_refused() -> None:
    with pytest.raises(ValueError):
        PortRange(5001, 5002)
