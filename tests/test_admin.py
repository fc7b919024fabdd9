"""The admin listener over HTTP (pytest-aiohttp's client): the probes and /metrics answer
without a token, /admin/* only with the right one - 401 without a word otherwise, refused
altogether while no token is set - and /admin/status tells ops how the bot is doing."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from bot import __version__
from bot.admin import AdminApi
from bot.config import AdminConfig, AuthSecurityConfig, Config, ConfigError
from bot.health import Heartbeat
from bot.reload import Reload, merge
from bot.runtime import Runtime
from bot.services.guard import AuthGuard

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
ADMIN_ROUTES = (
    ("GET", "/admin/status"),
    ("GET", "/admin/bans"),
    ("DELETE", "/admin/bans/198.51.100.7"),
    ("POST", "/admin/reload"),
)


@pytest.fixture
def make_client(aiohttp_client: Any) -> MakeClient:
    async def make(app: web.Application) -> Client:
        client: Client = await aiohttp_client(app)
        return client

    return make


def guard_only(token: str | None = TOKEN, **kwargs: Any) -> AdminApi:
    guard = AuthGuard(AuthSecurityConfig(max_failures=2))
    return AdminApi(AdminConfig(port=0, token=token), guard, **kwargs)


def bot_config(tmp_path: Path, **sections: Any) -> Config:
    """A bot on a free UDP port and its own SQLite file; its admin listener off (the tests
    serve its admin app with the test client instead)."""
    return Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
            "admin": {"enabled": False, "token": TOKEN},
            **sections,
        }
    )


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    bot = Runtime(bot_config(tmp_path))
    await bot.start()
    yield bot
    await bot.stop()


# --- the probes -------------------------------------------------------------------------------


async def test_the_probes_and_metrics_answer_without_a_token(
    runtime: Runtime, make_client: MakeClient
) -> None:
    client = await make_client(runtime.admin.app())
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["ok"] is True
    response = await client.get("/readyz")
    assert response.status == 200, await response.text()
    assert await response.json() == {
        "ready": True,
        "checks": ["listeners", "store"],  # embedded mode: no registration to check
        "failing": {},
    }
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "sipbot_heartbeat_age_seconds " in await response.text()


async def test_healthz_turns_503_when_the_heartbeat_stops_beating(
    make_client: MakeClient,
) -> None:
    """The loop answers the probe, but its heartbeat is stale: timers no longer fire on time
    (a clock of the test's moves past the stale limit with no beat in between)."""
    now = [100.0]
    heartbeat = Heartbeat(interval=3600.0, stale=5.0, clock=lambda: now[0])
    client = await make_client(guard_only(heartbeat=heartbeat).app())
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["heartbeat_age"] == 0
    now[0] += 5.5
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"ok": False, "heartbeat_age": 5.5}
    metrics = await (await client.get("/metrics")).text()
    assert "sipbot_heartbeat_age_seconds 5.5" in metrics


async def test_readyz_names_a_closed_listener(runtime: Runtime, make_client: MakeClient) -> None:
    client = await make_client(runtime.admin.app())
    await runtime.endpoint.close()
    with capture_logs() as logs:
        for _ in range(3):
            response = await client.get("/readyz")
            assert response.status == 503
            assert (await response.json())["failing"] == {"listeners": "not listening on UDP"}
    changes = [e for e in logs if e["event"] == "admin.readiness_changed"]
    assert len(changes) == 1 and changes[0]["ready"] is False  # once, not at every probe


async def test_readyz_names_a_store_that_cannot_answer(
    tmp_path: Path, make_client: MakeClient
) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    bot = Runtime(bot_config(tmp_path, conferences={
        "database_url": f"sqlite+aiosqlite:///{folder / 'db'}"}))  # fmt: skip
    await bot.start()
    try:
        client = await make_client(bot.admin.app())
        assert (await client.get("/readyz")).status == 200
        await bot.store.engine.dispose()  # the pooled connection goes, with its folder
        shutil.rmtree(folder)  # the database and the schema lock beside it
        response = await client.get("/readyz")
        assert response.status == 503
        failing = (await response.json())["failing"]
        assert list(failing) == ["store"] and "unable to open database file" in failing["store"]
    finally:
        await bot.stop()


async def test_readyz_in_external_mode_wants_the_registration(
    tmp_path: Path, make_client: MakeClient
) -> None:
    """A registrar nobody answers for (a UDP port that was just closed): the bot is not
    registered, and /readyz says so."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    config = bot_config(
        tmp_path,
        sip={"mode": "external", "listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}],
             "timers": {"t1": 0.05, "t2": 0.4, "t4": 0.5}},
        registrar={"server": f"sip:127.0.0.1:{dead}", "username": "bot", "password": "x"},
    )  # fmt: skip
    bot = Runtime(config)
    await bot.start()
    try:
        client = await make_client(bot.admin.app())
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["checks"] == ["listeners", "registration", "store"]
        assert body["failing"] == {"registration": "not registered with the registrar"}
    finally:
        await bot.stop()


# --- the token ---------------------------------------------------------------------------------


async def test_admin_routes_answer_401_without_a_word_to_a_missing_or_wrong_token(
    make_client: MakeClient,
) -> None:
    client = await make_client(guard_only(reload=lambda: merge(Config(), Config())).app())
    wrong = (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},  # no scheme
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"bearer {TOKEN}"},
        {"Authorization": "Bearer ünïcode"},
    )
    for method, path in ADMIN_ROUTES:
        for headers in wrong:
            response = await client.request(method, path, headers=headers)
            assert response.status == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert await response.read() == b"", (method, path, headers)
    dot_segment = "/healthz/" + ".." + "/admin/status"  # RFC 3986 §5.2.4, removed by the server
    for spelt in ("/%61dmin/status", "/admin/nothing-here", dot_segment):
        response = await client.get(spelt)  # however an admin path is spelt, or if none
        assert (response.status, await response.read()) == (401, b""), spelt
    # the right token opens the same doors
    assert (await client.get("/admin/bans", headers=AUTH)).status == 200
    assert (await client.get("/admin/nothing-here", headers=AUTH)).status == 404


async def test_with_no_token_configured_every_admin_route_is_refused(
    make_client: MakeClient,
) -> None:
    client = await make_client(guard_only(token=None).app())
    for method, path in ADMIN_ROUTES:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            response = await client.request(method, path, headers=headers)
            assert response.status == 403, (method, path)
            assert "no admin.token" in await response.text()
    assert (await client.get("/healthz")).status == 200  # the probes still answer
    assert (await client.get("/metrics")).status == 200


# --- /admin/status -----------------------------------------------------------------------------


async def test_admin_status_is_what_the_status_command_shows_and_more(
    tmp_path: Path, make_client: MakeClient
) -> None:
    path = tmp_path / "config.yaml"
    settings = bot_config(tmp_path).model_dump(mode="json")
    path.write_text(yaml.safe_dump(settings))
    bot = Runtime(Config.model_validate(settings), config_path=path)
    await bot.start()
    try:
        client = await make_client(bot.admin.app())
        status = await (await client.get("/admin/status", headers=AUTH)).json()
        assert status["version"] == __version__ and status["mode"] == "embedded"
        summary = json.loads(json.dumps(bot.status()))  # what the `status` command shows
        assert {k: v for k, v in status["status"].items() if k != "uptime"} == {
            k: v for k, v in summary.items() if k != "uptime"
        }
        assert status["registrations"] == {
            "registered_users": 0,
            "registered_with_server": None,
            "server_answering": None,
        }
        assert (status["sessions"], status["calls"], status["user_endpoints"]) == (0, 0, 0)
        assert status["reloads"] == {} and status["last_reload"] is None

        path.write_text("features:\n  help: maybe\n")
        response = await client.post("/admin/reload", headers=AUTH)
        assert response.status == 422
        status = await (await client.get("/admin/status", headers=AUTH)).json()
        last = status["last_reload"]
        assert status["reloads"] == {"invalid": 1} and last["result"] == "invalid"
        assert "features.help" in last["errors"][0] and last["restart_needed"] == []

        settings["sip"]["domain"] = "other.test"
        path.write_text(yaml.safe_dump(settings))
        assert (await client.post("/admin/reload", headers=AUTH)).status == 200
        status = await (await client.get("/admin/status", headers=AUTH)).json()
        assert status["reloads"] == {"invalid": 1, "restart_needed": 1}
        assert status["last_reload"]["restart_needed"] == ["sip.domain"]
        metrics = await (await client.get("/metrics")).text()
        assert 'sipbot_config_reloads_total{result="invalid"} 1.0' in metrics
        assert 'sipbot_config_reloads_total{result="restart_needed"} 1.0' in metrics
        assert 'sipbot_config_reloads_total{result="ok"} 0.0' in metrics
    finally:
        await bot.stop()


# --- bans and reload ---------------------------------------------------------------------------


async def test_bans_are_listed_and_lifted_at_once(make_client: MakeClient) -> None:
    api = guard_only()
    client = await make_client(api.app())
    now = asyncio.get_running_loop().time()
    for _ in range(2):
        api.guard.failed("198.51.100.7", "alice", "wrong credentials", now)
    assert not api.guard.allows("198.51.100.7", now)
    listing = await (await client.get("/admin/bans", headers=AUTH)).json()
    [ban] = listing["bans"]
    assert ban["address"] == "198.51.100.7" and ban["users_tried"] == ["alice"]
    assert 590 < ban["seconds_left"] <= 600
    assert listing["auth_failures_total"] == {"wrong credentials": 2}
    assert (await client.delete("/admin/bans/198.51.100.7", headers=AUTH)).status == 204
    assert api.guard.allows("198.51.100.7", now)
    assert (await client.delete("/admin/bans/198.51.100.7", headers=AUTH)).status == 404
    assert (await (await client.get("/admin/bans", headers=AUTH)).json())["bans"] == []


async def test_reload_reports_what_waits_for_a_restart_and_refuses_a_bad_file(
    make_client: MakeClient,
) -> None:
    outcomes: list[Reload | ConfigError] = [
        merge(Config(), Config(sip={"domain": "other.test"})),
        ConfigError(["config.yaml:3: features.help: Input should be a valid boolean"]),
    ]

    def reload() -> Reload:
        outcome = outcomes.pop(0)
        if isinstance(outcome, ConfigError):
            raise outcome
        return outcome

    client = await make_client(guard_only(reload=reload).app())
    response = await client.post("/admin/reload", headers=AUTH)
    assert response.status == 200
    assert (await response.json())["restart_needed"] == ["sip.domain"]
    response = await client.post("/admin/reload", headers=AUTH)
    assert response.status == 422
    assert "features.help" in (await response.json())["errors"][0]


# --- the listener ------------------------------------------------------------------------------


async def test_the_listener_is_on_by_default_on_loopback() -> None:
    settings = AdminConfig()
    assert settings.enabled and settings.host == "127.0.0.1" and settings.port == 8089
    admin = AdminApi(settings.model_copy(update={"port": 0}), AuthGuard(AuthSecurityConfig()))
    await admin.start()
    try:
        assert admin.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200 OK")
        writer.close()
    finally:
        await admin.close()


async def test_a_port_taken_is_logged_and_the_bot_runs_on() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        admin = AdminApi(AdminConfig(port=port), AuthGuard(AuthSecurityConfig()))
        with capture_logs() as logs:
            await admin.start()
        await admin.close()
    assert admin.port is None
    [event] = [e for e in logs if e["event"] == "admin.unavailable"]
    assert event["port"] == port and event["log_level"] == "error"


async def test_enabled_false_opens_no_port() -> None:
    admin = AdminApi(AdminConfig(enabled=False, port=0), AuthGuard(AuthSecurityConfig()))
    await admin.start()
    assert admin.port is None
    await admin.close()
