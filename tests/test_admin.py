"""The admin API over real HTTP on loopback: a token is required, bans are listed and lifted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.admin import AdminApi
from bot.config import AdminConfig, AuthSecurityConfig, Config, ConfigError
from bot.im.imdn import Notification
from bot.reload import Reload, merge
from bot.runtime import Runtime
from bot.services.guard import AuthGuard
from bot.sip import Request, Response, make_response
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.im.test_pager_content import Alice

TOKEN = "s3cret-admin-token"


@pytest.fixture
async def api() -> AsyncIterator[AdminApi]:
    guard = AuthGuard(AuthSecurityConfig(max_failures=2))
    admin = AdminApi(AdminConfig(port=0, token=TOKEN), guard)
    await admin.start()
    yield admin
    await admin.close()


def url(api: AdminApi, path: str) -> str:
    return f"http://127.0.0.1:{api.port}{path}"


async def test_without_the_token_nothing_is_shown(api: AdminApi) -> None:
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            async with http.get(url(api, "/admin/bans"), headers=headers) as response:
                assert response.status == 401
                assert "Bearer" in (await response.json())["error"]


async def test_bans_are_listed_and_lifted_at_once(api: AdminApi) -> None:
    now = asyncio.get_running_loop().time()
    for _ in range(2):
        api.guard.failed("198.51.100.7", "alice", "wrong credentials", now)
    assert not api.guard.allows("198.51.100.7", now)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(url(api, "/admin/bans")) as response:
            listing = await response.json()
        [ban] = listing["bans"]
        assert ban["address"] == "198.51.100.7" and ban["users_tried"] == ["alice"]
        assert 590 < ban["seconds_left"] <= 600
        assert listing["auth_failures_total"] == {"wrong credentials": 2}
        async with http.delete(url(api, "/admin/bans/198.51.100.7")) as response:
            assert response.status == 204
        assert api.guard.allows("198.51.100.7", now)
        async with http.delete(url(api, "/admin/bans/198.51.100.7")) as response:
            assert response.status == 404
        async with http.get(url(api, "/admin/bans")) as response:
            assert (await response.json())["bans"] == []


async def test_metrics_count_failures_by_reason_and_active_bans(api: AdminApi) -> None:
    now = asyncio.get_running_loop().time()
    api.guard.failed("198.51.100.7", "alice", "wrong credentials", now)
    api.guard.failed("198.51.100.7", "zed", "nonce count replayed", now)
    api.guard.allows("198.51.100.7", now)  # banned: dropped
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.get(url(api, "/metrics")) as response:
            text = await response.text()
    assert 'sipbot_auth_failures_total{reason="wrong credentials"} 1.0' in text
    assert 'sipbot_auth_failures_total{reason="nonce count replayed"} 1.0' in text
    assert "sipbot_bans_active 1.0" in text
    assert "sipbot_banned_requests_dropped_total 1.0" in text


async def test_reload_reports_what_waits_for_a_restart_and_refuses_a_bad_file() -> None:
    outcomes: list[Reload | ConfigError] = [
        merge(Config(), Config(sip={"domain": "other.test"})),
        ConfigError(["config.yaml:3: features.help: Input should be a valid boolean"]),
    ]

    def reload() -> Reload:
        outcome = outcomes.pop(0)
        if isinstance(outcome, ConfigError):
            raise outcome
        return outcome

    admin = AdminApi(AdminConfig(port=0, token=TOKEN), AuthGuard(AuthSecurityConfig()), reload)
    await admin.start()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.post(url(admin, "/admin/reload")) as response:
                assert response.status == 200
                assert (await response.json())["restart_needed"] == ["sip.domain"]
            async with http.post(url(admin, "/admin/reload")) as response:
                assert response.status == 422
                assert "features.help" in (await response.json())["errors"][0]
    finally:
        await admin.close()


async def test_im_figures_are_in_the_metrics_of_a_running_bot(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "port": 0}]},
            "admin": {"port": 0, "token": TOKEN},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        assert runtime.im is not None
        runtime.im.receipts.record(
            Notification(message_id="m1", kind="delivery", status="delivered"), "alice@x"
        )
        for n in range(3_000):  # issue 15 item 12: a label per made-up status element
            runtime.im.receipts.record(
                Notification(message_id=f"x{n}", kind="display", status=f"made-up-{n}"), "m@x"
            )
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.get(url(runtime.admin, "/metrics")) as response:
                text = await response.text()
        assert 'sipbot_im_receipts_total{kind="delivery",status="delivered"} 1.0' in text
        assert 'sipbot_im_receipts_total{kind="display",status="other"} 3000.0' in text
        assert 'sipbot_im_receipts_total{kind="processing",status="stored"} 0.0' in text
        assert text.count("sipbot_im_receipts_total{") == 14
        assert "sipbot_im_replies_suppressed_total 0.0" in text
        status = runtime.status()  # what the admins' `status` command shows
        assert status["user endpoints"] == 0 and status["banned addresses"] == 0
    finally:
        await runtime.stop()


async def test_no_token_configured_means_no_api() -> None:
    admin = AdminApi(AdminConfig(port=0), AuthGuard(AuthSecurityConfig()))
    await admin.start()
    assert admin.port is None
    await admin.close()


def figure(text: str, series: str) -> float:
    """The value of one series in a Prometheus text page."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    raise AssertionError(f"{series} is not in /metrics")


async def scrape(runtime: Runtime) -> str:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.get(url(runtime.admin, "/metrics")) as response:
            return await response.text()


async def test_a_fresh_bot_lists_every_counter_at_zero_and_counts_from_there(
    tmp_path: Path,
) -> None:
    """Issue 14 item 10: /metrics shows every counter from the start, commands by name and
    outcome, registrations; and the sizes a flood test watches (issue 15)."""
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "tcp", "port": 0}]},
            "admin": {"port": 0, "token": TOKEN},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        fresh = await scrape(runtime)
        for command in ("help", "my meetings", "meeting", "more", "schedule", "unknown"):
            for outcome in ("ok", "usage", "unknown", "rate-limited", "error"):
                series = f'sipbot_im_commands_total{{command="{command}",outcome="{outcome}"}}'
                assert figure(fresh, series) == 0
        for outcome in ("ok", "challenged", "refused", "invalid", "error"):
            assert figure(fresh, f'sipbot_register_requests_total{{outcome="{outcome}"}}') == 0
        for series in (
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
            "sipbot_user_endpoints",
            "sipbot_listing_cache_entries",
            "sipbot_command_memory_senders",
        ):
            assert figure(fresh, series) == 0, series

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
            for text in (b"my meetings", b"meeting 9", b"xyzzy"):
                assert (await alice.say("text/plain", text)).status == 200
                await asyncio.wait_for(inbox.get(), 5)
            busy = await scrape(runtime)
        commands = 'sipbot_im_commands_total{{command="{}",outcome="{}"}}'
        assert figure(busy, commands.format("my meetings", "ok")) == 1
        assert figure(busy, commands.format("meeting", "usage")) == 1
        assert figure(busy, commands.format("unknown", "unknown")) == 1
        assert figure(busy, 'sipbot_register_requests_total{outcome="challenged"}') == 1
        assert figure(busy, 'sipbot_register_requests_total{outcome="ok"}') == 1
        assert figure(busy, "sipbot_registered_users") == 1
        assert figure(busy, "sipbot_sip_connections") == 1  # alice's, both ways on one
        assert figure(busy, "sipbot_user_endpoints") == 1
        assert figure(busy, "sipbot_listing_cache_entries") == 1
        assert figure(busy, "sipbot_command_memory_senders") == 1
        assert figure(busy, "sipbot_sip_messages_received_total") >= 8
        assert figure(busy, "sipbot_sip_transactions") == 0  # TCP: Timer J is 0 (§17.2.2)
        assert busy.count("sipbot_im_commands_total{") == fresh.count("sipbot_im_commands_total{")
    finally:
        await runtime.stop()
