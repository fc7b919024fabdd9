"""DialogRouter: in-dialog requests reach the owner of their dialog (or of the SUBSCRIBE a
NOTIFY answers before its 2xx, RFC 6665 §4.1.2.4); anything else is not the router's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.calls.router import NOT_MINE, DialogRouter, NotMine
from bot.config import Config
from bot.sender import Sender
from bot.services.identity import IdentityGate
from bot.sip.message import Request, Response, make_response, new_request
from bot.sip.transaction import Peer
from bot.sip.uri import parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

from .conftest import FAST, POLICY


class Owner:
    """A dialog owner: answers with ``status`` and keeps what it got."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.got: list[Request] = []

    def __call__(self, incoming: ServerRequest) -> Response:
        self.got.append(incoming.request)
        return make_response(incoming.request, self.status)


@pytest.fixture
async def wire() -> AsyncIterator[tuple[DialogRouter, SipEndpoint, Peer]]:
    """A router behind a real endpoint (481 for what is not its), and a client endpoint."""
    router = DialogRouter()

    def route(incoming: ServerRequest) -> Response | None:
        routed = router.route(incoming)
        return make_response(incoming.request, 481) if isinstance(routed, NotMine) else routed

    config = EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST, policy=POLICY)
    async with SipEndpoint(config, handler=route) as server, SipEndpoint(config) as client:
        yield router, client, Peer("UDP", *server.address())


def in_dialog(method: str, call_id: str, to_tag: str, from_tag: str) -> Request:
    return new_request(
        method,
        parse_uri("sip:bot@127.0.0.1"),
        from_=f"<sip:focus@example.test>;tag={from_tag}",
        to=f"<sip:bot@example.test>;tag={to_tag}",
        call_id=call_id,
        headers=[("Event", "conference"), ("Subscription-State", "active")],
    )


async def test_requests_reach_their_dialog_and_nothing_else(
    wire: tuple[DialogRouter, SipEndpoint, Peer],
) -> None:
    router, client, server = wire

    async def info(from_tag: str) -> int:
        request = in_dialog("INFO", "c1", "ours", from_tag)
        return (await client.request(request, destination=server)).status

    owner = Owner(200)
    router.add(("c1", "ours", "theirs"), owner)
    assert await info("theirs") == 200
    assert await info("other") == 481
    router.remove(("c1", "ours", "theirs"))
    assert await info("theirs") == 481
    assert len(owner.got) == 1 and len(router) == 0


async def test_a_notify_before_the_subscribe_2xx_reaches_the_subscriber(
    wire: tuple[DialogRouter, SipEndpoint, Peer],
) -> None:
    router, client, server = wire
    subscriber = Owner(200)
    router.add_pending("c2", "ours", subscriber)
    notify = in_dialog("NOTIFY", "c2", "ours", "focus-tag")
    assert (await client.request(notify, destination=server)).status == 200
    assert subscriber.got[0].from_.tag == "focus-tag"
    router.remove(pending=("c2", "ours"))
    again = in_dialog("NOTIFY", "c2", "ours", "focus-tag")
    assert (await client.request(again, destination=server)).status == 481
    assert repr(NOT_MINE) == "NOT_MINE"


async def test_a_pending_dialog_passes_the_identity_gate_too() -> None:
    """add_pending with ``flows``: a NOTIFY before the SUBSCRIBE's 2xx from elsewhere than
    where the SUBSCRIBE went is identified like a new request (embedded: challenged)."""
    router = DialogRouter(IdentityGate(Config.model_validate({})))

    def route(incoming: ServerRequest) -> Response | None:
        routed = router.route(incoming)
        return make_response(incoming.request, 481) if isinstance(routed, NotMine) else routed

    config = EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST, policy=POLICY)
    async with SipEndpoint(config, handler=route) as server, SipEndpoint(config) as client:
        subscriber = Owner(200)
        focus = Peer("UDP", "127.0.0.1", 9)  # where the SUBSCRIBE went: not the client
        router.add_pending("c3", "ours", subscriber, flows=frozenset({focus}),
                           remote=Sender("focus", "example.test"))  # fmt: skip
        notify = in_dialog("NOTIFY", "c3", "ours", "focus-tag")
        response = await client.request(notify, destination=Peer("UDP", *server.address()))
    assert response.status == 401 and subscriber.got == []
