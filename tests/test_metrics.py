"""/metrics of a running bot, read with pytest-aiohttp's client: every series named, counted
from zero, under labels from fixed sets - a flood of made-up methods and statuses adds none."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bench.flood import open_client, request, tag
from bot.admin import AdminApi
from bot.commands.latency import BUCKETS, Histogram
from bot.config import AdminConfig, AuthSecurityConfig, Config
from bot.im.imdn import Notification
from bot.runtime import Runtime
from bot.services.guard import AuthGuard
from bot.sip import Request, Response, make_response
from bot.sip.tally import SENT_STATUSES, status_label
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.im.test_pager_content import Alice

Client = TestClient[web.Request, web.Application]
Scrape = Callable[[], Awaitable[str]]
ROOT = Path(__file__).resolve().parents[1]


BATCH = 25
"""Requests sent before their answers are awaited, in the flood."""


def odd_response(status: int, method: str) -> bytes:
    """A response to nothing the bot sent, of a made-up status to a made-up method."""
    return (
        f"SIP/2.0 {status} Odd\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{tag()}\r\n"
        f"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: {tag()}\r\n"
        f"CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def bot_config(tmp_path: Path, transport: str = "udp") -> Config:
    return Config.model_validate(
        {
            "sip": {"listen": [{"transport": transport, "host": "127.0.0.1", "port": 0}]},
            "admin": {"enabled": False},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        }
    )


@pytest.fixture
def serve(aiohttp_client: Any) -> Callable[[AdminApi], Awaitable[Scrape]]:
    """The admin app of ``api`` behind the test client: a function that scrapes /metrics."""

    async def serve(api: AdminApi) -> Scrape:
        client: Client = await aiohttp_client(api.app())

        async def scrape() -> str:
            response = await client.get("/metrics")
            assert response.status == 200
            return await response.text()

        return scrape

    return serve


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    bot = Runtime(bot_config(tmp_path))
    await bot.start()
    yield bot
    await bot.stop()


def figure(text: str, series: str) -> float:
    """The value of one series in a Prometheus text page."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    raise AssertionError(f"{series} is not in /metrics")


def series(text: str) -> set[str]:
    """Every series (name and labels) on the page."""
    return {line.rpartition(" ")[0] for line in text.splitlines() if not line.startswith("#")}


async def test_guard_failures_by_reason_and_active_bans(
    serve: Callable[[AdminApi], Awaitable[Scrape]],
) -> None:
    guard = AuthGuard(AuthSecurityConfig(max_failures=2))
    scrape = await serve(AdminApi(AdminConfig(port=0), guard))
    now = asyncio.get_running_loop().time()
    guard.failed("198.51.100.7", "alice", "wrong credentials", now)
    guard.failed("198.51.100.7", "zed", "nonce count replayed", now)
    guard.allows("198.51.100.7", now)  # banned: dropped
    text = await scrape()
    assert 'sipbot_auth_failures_total{reason="wrong credentials"} 1.0' in text
    assert 'sipbot_auth_failures_total{reason="nonce count replayed"} 1.0' in text
    assert "sipbot_bans_active 1.0" in text
    assert "sipbot_banned_requests_dropped_total 1.0" in text


async def test_im_receipts_keep_to_their_fixed_labels(
    runtime: Runtime, serve: Callable[[AdminApi], Awaitable[Scrape]]
) -> None:
    scrape = await serve(runtime.admin)
    assert runtime.im is not None
    runtime.im.receipts.record(
        Notification(message_id="m1", kind="delivery", status="delivered"), "alice@x"
    )
    for n in range(3_000):  # issue 15 item 12: a label per made-up status element
        runtime.im.receipts.record(
            Notification(message_id=f"x{n}", kind="display", status=f"made-up-{n}"), "m@x"
        )
    text = await scrape()
    assert 'sipbot_im_receipts_total{kind="delivery",status="delivered"} 1.0' in text
    assert 'sipbot_im_receipts_total{kind="display",status="other"} 3000.0' in text
    assert 'sipbot_im_receipts_total{kind="processing",status="stored"} 0.0' in text
    assert text.count("sipbot_im_receipts_total{") == 14
    assert "sipbot_im_replies_suppressed_total 0.0" in text


async def test_a_fresh_bot_lists_every_counter_at_zero_and_counts_from_there(
    tmp_path: Path, serve: Callable[[AdminApi], Awaitable[Scrape]]
) -> None:
    """Issue 14 item 10 and issue 18 item 1: every counter from the start; SIP requests and
    responses by method and code, commands by name and outcome and their latency,
    registrations, calls and RTP, reloads; and the sizes a flood test watches (issue 15)."""
    runtime = Runtime(bot_config(tmp_path, "tcp"))
    await runtime.start()
    try:
        scrape = await serve(runtime.admin)
        fresh = await scrape()
        for command in ("help", "my meetings", "meeting", "more", "schedule", "unknown"):
            for outcome in ("ok", "usage", "unknown", "rate-limited", "error"):
                name = f'sipbot_im_commands_total{{command="{command}",outcome="{outcome}"}}'
                assert figure(fresh, name) == 0
            assert figure(fresh, f'sipbot_im_command_seconds_count{{command="{command}"}}') == 0
        for outcome in ("ok", "challenged", "refused", "invalid", "error"):
            assert figure(fresh, f'sipbot_register_requests_total{{outcome="{outcome}"}}') == 0
        for direction in ("in", "out"):
            for method in ("INVITE", "MESSAGE", "REGISTER", "BENOTIFY", "other"):
                name = f'sipbot_sip_requests_total{{direction="{direction}",method="{method}"}}'
                assert figure(fresh, name) == 0
        for name in (
            *(f'sipbot_registrar_bindings_total{{change="{c}"}}'
              for c in ("added", "refreshed", "removed")),
            *(f'sipbot_registration_requests_total{{outcome="{o}"}}'
              for o in ("registered", "refreshed", "failed")),
            *(f'sipbot_config_reloads_total{{result="{r}"}}'
              for r in ("ok", "invalid", "restart_needed")),
            'sipbot_rtp_packets_total{direction="sent"}',
            'sipbot_rtp_packets_total{direction="received"}',
            'sipbot_im_receipts_total{kind="delivery",status="delivered"}',
            "sipbot_im_replies_suppressed_total",
            "sipbot_banned_requests_dropped_total",
            "sipbot_sip_messages_received_total",
            "sipbot_sip_messages_dropped_total",
            "sipbot_sip_retransmissions_absorbed_total",
            "sipbot_sip_retransmissions_sent_total",
            "sipbot_bans_active",
            "sipbot_registered_users",
            "sipbot_registered_with_server",
            "sipbot_sip_transactions",
            "sipbot_sip_connections",
            "sipbot_im_sessions",
            "sipbot_calls",
            "sipbot_user_endpoints",
            "sipbot_listing_cache_entries",
            "sipbot_command_memory_senders",
            *(f'sipbot_digest_answers_total{{outcome="{o}"}}'
              for o in ("accepted", "preauthorized", "stale", "replayed")),
            "sipbot_digest_nextnonces_total",
            "sipbot_digest_nonces_tracked",
        ):  # fmt: skip
            assert figure(fresh, name) == 0, name
        assert "sipbot_sip_responses_total{" not in fresh  # none yet: they come as seen

        inbox: asyncio.Queue[Request] = asyncio.Queue()

        def handler(incoming: ServerRequest) -> Response:
            inbox.put_nowait(incoming.request)
            return make_response(incoming.request, 200)

        bot = Peer("TCP", *runtime.endpoint.address("TCP"))
        client = EndpointConfig(
            listen=(Listen(transport="TCP", port=0),), timers=TimerConfig(t1=0.05, t2=0.4, t4=0.5)
        )
        async with SipEndpoint(client, handler=handler) as endpoint:
            alice = Alice(endpoint, bot)
            await alice.register()  # challenged, then registered
            await alice.register()  # again (with the nonce she has): a refresh of the binding
            for text in (b"my meetings", b"meeting 9", b"xyzzy"):
                assert (await alice.say("text/plain", text)).status == 200
                await asyncio.wait_for(inbox.get(), 5)
            busy = await scrape()
        commands = 'sipbot_im_commands_total{{command="{}",outcome="{}"}}'
        assert figure(busy, commands.format("my meetings", "ok")) == 1
        assert figure(busy, commands.format("meeting", "usage")) == 1
        assert figure(busy, commands.format("unknown", "unknown")) == 1
        took = 'sipbot_im_command_seconds_{}{{command="my meetings"{}}}'
        assert figure(busy, took.format("count", "")) == 1
        assert figure(busy, took.format("bucket", ',le="+Inf"')) == 1
        assert 0 < figure(busy, took.format("sum", "")) < 5
        assert figure(busy, 'sipbot_im_command_seconds_count{command="help"}') == 0
        assert figure(busy, 'sipbot_register_requests_total{outcome="challenged"}') == 1
        # the second REGISTER reused the nonce with a higher count: no challenge round
        assert figure(busy, 'sipbot_digest_answers_total{outcome="accepted"}') == 1
        assert figure(busy, 'sipbot_digest_answers_total{outcome="preauthorized"}') >= 1
        assert figure(busy, 'sipbot_digest_answers_total{outcome="stale"}') == 0
        assert figure(busy, "sipbot_digest_nonces_tracked") == 1
        assert figure(busy, 'sipbot_register_requests_total{outcome="ok"}') == 2
        assert figure(busy, 'sipbot_registrar_bindings_total{change="added"}') == 1
        assert figure(busy, 'sipbot_registrar_bindings_total{change="refreshed"}') == 1
        requests = 'sipbot_sip_requests_total{{direction="{}",method="{}"}}'
        responses = 'sipbot_sip_responses_total{{code="{}",direction="{}",method="{}"}}'
        assert figure(busy, requests.format("in", "REGISTER")) == 3
        assert figure(busy, requests.format("in", "MESSAGE")) == 3
        assert figure(busy, requests.format("out", "MESSAGE")) == 3  # the replies
        assert figure(busy, responses.format("401", "out", "REGISTER")) == 1
        assert figure(busy, responses.format("200", "out", "REGISTER")) == 2
        assert figure(busy, responses.format("200", "out", "MESSAGE")) == 3
        assert figure(busy, responses.format("200", "in", "MESSAGE")) == 3  # alice's
        assert figure(busy, "sipbot_registered_users") == 1
        assert figure(busy, "sipbot_sip_connections") == 1  # alice's, both ways on one
        assert figure(busy, "sipbot_user_endpoints") == 1
        assert figure(busy, "sipbot_listing_cache_entries") == 1
        assert figure(busy, "sipbot_command_memory_senders") == 1
        assert figure(busy, "sipbot_sip_messages_received_total") == 9  # 6 requests, 3 answers
        assert figure(busy, "sipbot_sip_transactions") == 0  # TCP: Timer J is 0 (§17.2.2)
        assert busy.count("sipbot_im_commands_total{") == fresh.count("sipbot_im_commands_total{")
    finally:
        await runtime.stop()


async def test_a_flood_of_made_up_methods_and_statuses_adds_no_series(
    runtime: Runtime, serve: Callable[[AdminApi], Awaitable[Scrape]]
) -> None:
    scrape = await serve(runtime.admin)
    bot = runtime.endpoint.address("UDP")
    client = await open_client()
    try:

        async def flood(first: int, count: int) -> None:
            """``count`` requests of made-up methods, each after a response of a made-up
            status to nothing the bot sent, BATCH at a time (UDP: no more than the sockets
            hold); every request is answered (501, RFC 3261 §8.2.1), so the responses before
            it were read too (one socket, in order)."""
            for start in range(first, first + count, BATCH):
                batch = range(start, min(start + BATCH, first + count))
                for n in batch:
                    client.send(odd_response(100 + n % 600, f"ODD{n}"), bot)
                    client.send(request(f"MADEUP{n}", "sip:bot@example.test",
                                        local=client.local, call_id=tag()), bot)  # fmt: skip
                expected = client.answered + len(batch)
                assert await client.until(lambda n=expected: client.answered == n, 10)

        fresh = await scrape()
        await flood(0, 600)  # every status there is, once: all the series they can reach
        before = await scrape()
        await flood(600, 600)
        after = await scrape()
    finally:
        assert client.transport is not None
        client.transport.close()
    assert series(after) == series(before)
    assert client.statuses == {501: 1200}
    assert figure(after, 'sipbot_sip_requests_total{direction="in",method="other"}') == 1200
    sent = 'sipbot_sip_responses_total{code="501",direction="out",method="other"}'
    assert figure(after, sent) == 1200
    assert series(after) - series(fresh) == {sent} | {
        f'sipbot_sip_responses_total{{code="{code}",direction="in",method="other"}}'
        for code in [*map(str, SENT_STATUSES), "1xx", "2xx", "3xx", "4xx", "5xx", "6xx"]
    }


def test_every_status_the_bot_sends_is_counted_by_its_own_value() -> None:
    """SENT_STATUSES holds every status bot/ answers with (``make_response(..., NNN``): those
    get their own series; a status only a peer uses goes under its class."""
    written = {
        int(status)
        for path in (ROOT / "bot").rglob("*.py")
        for status in re.findall(r"make_response\([^,()]+, (\d{3})\b", path.read_text())
    }
    assert written and written <= SENT_STATUSES, sorted(written - SENT_STATUSES)
    assert status_label(487) == "487" and status_label(299) == "2xx"
    assert status_label(699) == "6xx" and status_label(42) == "other"


def test_the_latency_histogram_counts_each_answer_in_its_bucket() -> None:
    took = Histogram()
    for seconds in (0.0005, 0.001, 0.03, 7.0):
        took.observe(seconds)
    buckets = dict(took.cumulative())
    assert list(buckets) == [*map(str, BUCKETS), "+Inf"]
    assert buckets["0.001"] == 2  # "le": at or below the bound
    assert buckets["0.025"] == 2 and buckets["0.05"] == 3
    assert buckets["5.0"] == 3 and buckets["+Inf"] == 4
    assert took.total == pytest.approx(7.0315)
