"""Issue 18 item 3 against the bot in this process: while it stops, new requests get 503 with
Retry-After and the open IM session is ended with BYE; a peer that never answers the BYE is cut
at ``shutdown.deadline`` and the stop still completes (listeners and store closed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.config import Config
from bot.runtime import Runtime
from bot.shutdown import RETRY_AFTER, run_steps
from bot.sip import Headers, Request, parse_uri
from bot.sip.dialog import Dialog
from bot.sip.message import Response, make_response, new_tag
from bot.sip.transaction import Peer
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.im.test_sessions import FAST, open_session

DEADLINE = 1.5


class HoldsBye:
    """alice's phone: answers 200 to everything but BYE, which it keeps unanswered."""

    def __init__(self) -> None:
        self.byes: asyncio.Queue[ServerRequest] = asyncio.Queue()

    def __call__(self, incoming: ServerRequest) -> Response | None:
        if incoming.request.method == "BYE":
            self.byes.put_nowait(incoming)
            return None
        return make_response(incoming.request, 200)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = Config(
        sip={"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
        conferences={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        shutdown={"deadline": DEADLINE},
    )
    bot = Runtime(config)
    await bot.start()
    yield bot
    if not bot.stopping:
        await bot.stop()


def options(endpoint: SipEndpoint, bot: Peer) -> Request:
    return Request(
        "OPTIONS",
        parse_uri(f"sip:bot@{bot.host}:{bot.port}"),
        Headers.of(
            ("From", f"<sip:carol@example.test>;tag={new_tag()}"),
            ("To", "<sip:bot@example.test>"),
            ("Call-ID", new_tag()),
            ("CSeq", "1 OPTIONS"),
            ("Contact", str(endpoint.contact("carol"))),
        ),
    )


async def session_of(alice: SipEndpoint, bot: Peer) -> str:
    invite, ok = await open_session(alice, bot)
    assert ok.status == 200
    dialog = Dialog.as_uac(invite, ok)
    alice.client.send_ack(dialog.create_ack(invite.cseq.seq, via=alice.via()), bot)
    return invite.call_id


def endpoint(handler: HoldsBye | None = None) -> SipEndpoint:
    return SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=handler)


async def test_stopping_refuses_new_requests_and_ends_the_session(runtime: Runtime) -> None:
    phone = HoldsBye()
    bot = Peer("UDP", *runtime.endpoint.address())
    async with endpoint(phone) as alice, endpoint() as carol:
        call_id = await session_of(alice, bot)
        assert (await carol.request(options(carol, bot), destination=bot)).status == 200
        stopping = asyncio.create_task(runtime.stop())
        bye = await asyncio.wait_for(phone.byes.get(), DEADLINE)
        assert bye.request.call_id == call_id
        # the bot is now waiting for alice's answer: anything new is turned away, for now
        refused = await carol.request(options(carol, bot), destination=bot)
        assert refused.status == 503 and refused.headers.get("Retry-After") == str(RETRY_AFTER)
        with capture_logs() as logs:
            bye.respond(200)
            await asyncio.wait_for(stopping, DEADLINE)
        closed = [e for e in logs if e["event"] == "im.session.closed"]
        assert [(e["by"], e["status"]) for e in closed] == [("bot", 200)]
        assert [e["cut"] for e in logs if e["event"] == "bot.stopped"] == [[]]


async def test_a_peer_that_never_answers_is_cut_at_the_deadline(runtime: Runtime) -> None:
    phone = HoldsBye()
    bot = Peer("UDP", *runtime.endpoint.address())
    async with endpoint(phone) as alice:
        await session_of(alice, bot)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with capture_logs() as logs:
            await asyncio.wait_for(runtime.stop(), DEADLINE + 1)
        took = loop.time() - began
        await asyncio.wait_for(phone.byes.get(), 1)  # it was asked
    assert DEADLINE - 0.5 <= took < DEADLINE + 0.1, took
    assert [e["steps"] for e in logs if e["event"] == "bot.shutdown_cut"] == [["IM sessions"]]
    # only that step: the listeners and the store were closed in the time kept for them
    assert [e["cut"] for e in logs if e["event"] == "bot.stopped"] == [["IM sessions"]]


async def test_a_step_that_hangs_leaves_the_later_steps_their_time() -> None:
    """A call whose peer never answers the BYE must not keep the IM sessions' BYEs, the
    un-REGISTER or the closing of the listeners from happening."""
    ran: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    def quick(name: str) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            await asyncio.sleep(0)  # one turn of the loop, as a peer's answer takes
            ran.append(name)

        return step

    loop = asyncio.get_running_loop()
    began = loop.time()
    cut = await run_steps(
        [("calls", hangs), ("IM sessions", quick("IM sessions")), ("registration", hangs)],
        [("SIP listeners", quick("SIP listeners"))],
        deadline=1.0,
    )
    assert cut == ["calls", "registration"] and ran == ["IM sessions", "SIP listeners"]
    assert loop.time() - began < 1.0


async def test_a_bot_still_starting_answers_probes_and_turns_commands_away_for_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SIP endpoint listens before the IM service exists (a proxy such as Kamailio's
    dispatcher probes with OPTIONS from the first moment): the probe is answered, a command is
    a 503 with Retry-After - not a handler failure - and is served once the bot has started."""
    config = Config(
        sip={"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
        conferences={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
    )
    bot = Runtime(config)
    listening, go_on = asyncio.Event(), asyncio.Event()
    start_endpoint = bot.endpoint.start

    async def start_and_hold() -> None:
        await start_endpoint()
        listening.set()
        await go_on.wait()

    monkeypatch.setattr(bot.endpoint, "start", start_and_hold)
    starting = asyncio.create_task(bot.start())
    try:
        await asyncio.wait_for(listening.wait(), 5)
        peer = Peer("UDP", *bot.endpoint.address())
        async with endpoint() as carol:

            def command() -> Request:
                probe = options(carol, peer)
                message = Request("MESSAGE", probe.uri, probe.headers, b"help")
                message.headers.set("CSeq", "1 MESSAGE")
                message.headers.set("Content-Type", "text/plain")
                return message

            with capture_logs() as logs:
                probed = await carol.request(options(carol, peer), destination=peer)
                early = await carol.request(command(), destination=peer)
            assert probed.status == 200
            assert early.status == 503 and early.headers.get("Retry-After") == "1", early
            assert "starting" in early.reason
            assert not [e for e in logs if e["event"].startswith("sip.handler.failed")], logs
            go_on.set()
            await asyncio.wait_for(starting, 10)
            later = await carol.request(command(), destination=peer)
            assert later.status == 401  # the IM service now: who is asking? (RFC 3261 §22)
    finally:
        go_on.set()
        await asyncio.wait_for(starting, 10)
        await bot.stop()
