"""Issue 18 item 2: the file watcher, SIGHUP and POST /admin/reload take one path, checked with
the same assertions for each - against the bot in this process (its real sockets), with alice
in a Lync-style IM session (INVITE with m=message) and her registration, both kept through
every reload."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import yaml
from structlog.testing import capture_logs

from bot.cli import reload_on_sighup
from bot.config import load_config
from bot.reload import LastReload
from bot.runtime import Runtime
from bot.sip import Headers, Request, parse_uri
from bot.sip.dialog import Dialog
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.transaction import Peer
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.im.test_sessions import FAST, Alice, open_session

TOKEN = "triggers-test-token"
TRIGGERS = ("file", "sighup", "api")
TURNED_OFF = b"'my meetings' is turned off here"


def settings(tmp_path: Path, trigger: str, **overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
        "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"},
        "admin": {"port": 0, "token": TOKEN},
        "reload": {"watch": trigger == "file"},  # only the watcher, when it is the trigger
    }
    for section, values in overrides.items():
        config[section] = {**config.get(section, {}), **values}  # type: ignore[dict-item]
    return config


class Reloads:
    """The bot under test, and each reload it records as it records it."""

    def __init__(self, runtime: Runtime, trigger: str, monkeypatch: pytest.MonkeyPatch):
        self.runtime = runtime
        self.trigger = trigger
        self.seen: asyncio.Queue[LastReload] = asyncio.Queue()
        recorded = runtime._recorded

        def spy(outcome: LastReload) -> None:
            recorded(outcome)
            self.seen.put_nowait(outcome)

        monkeypatch.setattr(runtime, "_recorded", spy)

    async def next(self) -> LastReload:
        return await asyncio.wait_for(self.seen.get(), 5)


@pytest.fixture
async def bot(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Reloads]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings(tmp_path, request.param)))
    runtime = Runtime(load_config(path), config_path=path)
    await runtime.start()
    loop = asyncio.get_running_loop()
    reload_on_sighup(runtime)
    try:
        if runtime.watcher is not None:
            await asyncio.wait_for(runtime.watcher.ready.wait(), 5)
        yield Reloads(runtime, request.param, monkeypatch)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await runtime.stop()


def register(alice: SipEndpoint, bot: Peer) -> Request:
    return Request(
        "REGISTER",
        parse_uri(f"sip:{bot.host}:{bot.port}"),
        Headers.of(
            ("From", f"<sip:alice@example.test>;tag={new_tag()}"),
            ("To", "<sip:alice@example.test>"),
            ("Call-ID", new_tag()),
            ("CSeq", "1 REGISTER"),
            ("Contact", str(alice.contact("alice"))),
            ("Expires", "600"),
        ),
    )


def trigger_of(runtime: Runtime, name: str) -> Callable[[], Awaitable[None]]:
    """What makes the bot read its file again, after the test wrote it."""

    async def file() -> None:
        """Nothing: the watcher sees the change."""

    async def sighup() -> None:
        os.kill(os.getpid(), signal.SIGHUP)

    async def api() -> None:
        url = f"http://127.0.0.1:{runtime.admin.port}/admin/reload"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http, http.post(url, headers=headers) as answer:
            assert answer.status in (200, 422), await answer.text()

    return {"file": file, "sighup": sighup, "api": api}[name]


@pytest.mark.parametrize("bot", TRIGGERS, indirect=True)
async def test_every_trigger_reloads_by_one_path_and_the_session_lives_on(
    bot: Reloads, tmp_path: Path
) -> None:
    runtime, trigger = bot.runtime, bot.trigger
    assert runtime.config_path is not None
    path = runtime.config_path
    reload = trigger_of(runtime, trigger)
    user = Alice()
    peer = Peer("UDP", *runtime.endpoint.address())
    async with SipEndpoint(
        EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=user
    ) as alice:
        invite, ok = await open_session(alice, peer)
        dialog = Dialog.as_uac(invite, ok)
        alice.client.send_ack(dialog.create_ack(invite.cseq.seq, via=alice.via()), peer)

        async def says(text: str) -> bytes:
            message = dialog.create_request(
                "MESSAGE", via=alice.via(), body=text.encode(), content_type="text/plain"
            )
            assert (await alice.request(message, destination=peer)).status == 200
            reply = await asyncio.wait_for(user.received.get(), 5)
            assert reply.call_id == invite.call_id  # answered inside the same session
            return reply.body

        assert b"Weekly sync" in await says("my meetings")
        registered = await alice.request(
            register(alice, peer), destination=peer, credentials=DigestClient("alice", "alice-demo")
        )
        assert registered.status == 200

        # a live change: applied at once, inside the open session
        off = settings(tmp_path, trigger, features={"my_meetings": False})
        path.write_text(yaml.safe_dump(off))
        loop = asyncio.get_running_loop()
        edited = loop.time()
        await reload()
        applied = await bot.next()
        assert loop.time() - edited < 2.0
        assert applied["trigger"] == trigger and applied["result"] == "ok", applied
        assert applied["errors"] == [] and applied["restart_needed"] == []
        assert TURNED_OFF in await says("my meetings")

        # an invalid edit: refused, said where and why, the running config kept
        path.write_text(yaml.safe_dump(off).replace("my_meetings: false", "my_meetings: maybe"))
        line = next(
            number
            for number, text in enumerate(path.read_text().splitlines(), 1)
            if "my_meetings" in text
        )
        with capture_logs() as logs:
            await reload()
            refused = await bot.next()
        assert refused["trigger"] == trigger and refused["result"] == "invalid", refused
        (error,) = refused["errors"]
        assert re.match(rf"{re.escape(str(path))}:{line}: features\.my_meetings: ", error), error
        assert [entry["errors"] for entry in logs if entry["event"] == "config.reload_failed"] == [
            [error]
        ]
        assert TURNED_OFF in await says("my meetings")

        # a restart-only change: named, not applied; the live part of the same edit is
        elsewhere = settings(tmp_path, trigger, sip={"domain": "elsewhere.test"})
        path.write_text(yaml.safe_dump(elsewhere))
        await reload()
        pending = await bot.next()
        assert pending["result"] == "restart_needed" and pending["restart_needed"] == ["sip.domain"]
        assert runtime.config.sip.domain == "example.test"
        assert b"Weekly sync" in await says("my meetings")

        assert runtime.reloads == {"ok": 1, "invalid": 1, "restart_needed": 1}
        assert runtime.last_reload == pending
        assert runtime.im is not None and runtime.im.session_count == 1
        assert runtime.registrar is not None and runtime.registrar.registered_users == 1
        assert bot.seen.empty()
