"""The stack registers with digest authentication against a real Kamailio (Debian kamailio)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.sip import Headers, Request, Response, parse_uri
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint

from .conftest import HERE, Process, free_port, module_path, start, wait_for_options

FAST = TimerConfig(t1=0.1, t2=1.0, t4=1.0)


@pytest.fixture
async def kamailio(processes: list[Process], tmp_path: Path) -> AsyncIterator[Peer]:
    port = free_port()
    process = await start(
        "kamailio",
        "-f",
        str(HERE / "kamailio" / "registrar.cfg"),
        "-L",
        module_path(),
        "-l",
        f"udp:127.0.0.1:{port}",
        "-DD",
        "-E",
        "-Y",
        str(tmp_path),
        "-w",
        str(tmp_path),
    )
    processes.append(process)
    peer = Peer("UDP", "127.0.0.1", port)
    await wait_until_answering(peer, process)
    yield peer


async def wait_until_answering(peer: Peer, process: Process) -> None:
    """Kamailio is ready when it answers OPTIONS."""
    if not await wait_for_options(peer, lambda: process.proc.returncode is None):
        await process.stop()
        pytest.fail(f"kamailio did not answer OPTIONS:\n{process.text}")


def register(user: str, client: SipEndpoint, expires: int = 300, cseq: int = 1) -> Request:
    return Request(
        "REGISTER",
        parse_uri("sip:example.test"),
        Headers.of(
            ("From", f"<sip:{user}@example.test>;tag={new_tag()}"),
            ("To", f"<sip:{user}@example.test>"),
            ("Call-ID", f"reg-{user}-{new_tag()}"),
            ("CSeq", f"{cseq} REGISTER"),
            ("Contact", str(client.contact(user))),
            ("Expires", str(expires)),
        ),
    )


async def test_register_with_digest_refresh_and_unregister(kamailio: Peer) -> None:
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as client:
        credentials = DigestClient("alice", "alice-secret")
        request = register("alice", client)
        response = await client.request(request, destination=kamailio, credentials=credentials)
        assert response.status == 200, response.reason
        assert any("expires=" in c for c in response.headers.values("contact"))
        # a refresh reuses the nonce with a higher nonce count, as RFC 7616 §3.4 allows
        refresh = register("alice", client, cseq=3)
        refresh.headers.set("Call-ID", request.call_id)
        first = await client.request(refresh, destination=kamailio, credentials=credentials)
        assert first.status == 200
        gone = register("alice", client, expires=0, cseq=5)
        gone.headers.set("Call-ID", request.call_id)
        removed = await client.request(gone, destination=kamailio, credentials=credentials)
        assert removed.status == 200
        assert not [c for c in removed.headers.values("contact") if "alice" in c]


async def test_wrong_password_is_refused_without_a_challenge_loop(kamailio: Peer) -> None:
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as client:
        response: Response = await client.request(
            register("alice", client),
            destination=kamailio,
            credentials=DigestClient("alice", "not-her-password"),
        )
        assert response.status == 401
