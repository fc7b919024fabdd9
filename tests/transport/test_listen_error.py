"""Issue 14 item 10: "Address already in use" names the transport and address and says what to
do, in an error ``sipbot run`` can print as it is."""

from __future__ import annotations

import errno

import pytest

from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from bot.transport.errors import ListenError


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_second_endpoint_on_the_same_port_names_the_address_and_what_to_do(
    transport: str,
) -> None:
    first = SipEndpoint(EndpointConfig(listen=(Listen(transport=transport, port=0),)))
    async with first:
        _, port = first.address(transport)
        second = SipEndpoint(EndpointConfig(listen=(Listen(transport=transport, port=port),)))
        with pytest.raises(ListenError) as caught:
            await second.start()
    message = str(caught.value)
    assert message.startswith(f"cannot listen on {transport.lower()} 127.0.0.1:{port}: ")
    assert "another sipbot running?" in message and "sip.listen" in message
    assert "[Errno" not in message and caught.value.errno == errno.EADDRINUSE
    assert isinstance(caught.value, OSError)  # what `sipbot run` already reports cleanly


async def test_listeners_opened_before_the_failing_one_are_closed() -> None:
    async with SipEndpoint(EndpointConfig(listen=(Listen(transport="TCP", port=0),))) as first:
        _, taken = first.address("TCP")
        second = SipEndpoint(
            EndpointConfig(listen=(Listen(port=0), Listen(transport="TCP", port=taken)))
        )
        with pytest.raises(ListenError, match=f"tcp 127.0.0.1:{taken}"):
            await second.start()
        udp = second._udp
        assert udp is not None and udp._sock.fileno() == -1


async def test_ipv6_address_is_bracketed() -> None:
    async with SipEndpoint(EndpointConfig(listen=(Listen(host="::1", port=0),))) as first:
        _, port = first.address()
        second = SipEndpoint(EndpointConfig(listen=(Listen(host="::1", port=port),)))
        with pytest.raises(ListenError, match=rf"udp \[::1\]:{port}: "):
            await second.start()
