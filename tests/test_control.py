"""The control channel's protocol: whatever a local client sends, a JSON answer and no harm."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bot.config import AuthSecurityConfig
from bot.control import MAX_REQUEST, ControlChannel, ask, socket_path
from bot.services.guard import AuthGuard


async def test_requests_and_mistakes_are_answered(tmp_path: Path) -> None:
    guard = AuthGuard(AuthSecurityConfig(max_failures=1))
    guard.failed("192.0.2.7", "alice", "wrong password", now=100.0)
    channel = ControlChannel(socket_path(tmp_path), guard, clock=lambda: 160.0)
    assert await channel.start()
    try:
        bans = await ask(tmp_path, {"command": "bans"})
        assert bans["bans"] == [
            {"address": "192.0.2.7", "seconds_left": 540.0, "failures": 1,
             "users_tried": ["alice"], "offence": 1}
        ]  # fmt: skip
        assert await ask(tmp_path, {"command": "unban"}) == {
            "ok": False, "error": "unban needs an address"}  # fmt: skip
        assert (await ask(tmp_path, {"command": "shutdown"}))["ok"] is False
        assert await ask(tmp_path, {"command": "unban", "address": "192.0.2.7"}) == {"ok": True}
        assert guard.bans(160.0) == []
        for junk in (b"not json\n", b"[1, 2]\n", b"x" * (MAX_REQUEST + 10) + b"\n"):
            reader, writer = await asyncio.open_unix_connection(str(socket_path(tmp_path)))
            writer.write(junk)
            answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
            writer.close()
            assert answer["ok"] is False and answer["error"]
        # a second bot on the same data directory leaves the first one's socket alone
        second = ControlChannel(socket_path(tmp_path), guard)
        assert not await second.start()
        await second.close()
        assert (await ask(tmp_path, {"command": "bans"}))["ok"] is True
    finally:
        await channel.close()
    assert not socket_path(tmp_path).exists()


async def test_a_socket_left_behind_is_replaced(tmp_path: Path) -> None:
    guard = AuthGuard(AuthSecurityConfig())
    first = ControlChannel(socket_path(tmp_path), guard)
    await first.start()
    assert first._server is not None
    first._server.close()  # a bot that died without cleaning up
    await first._server.wait_closed()
    assert socket_path(tmp_path).exists()
    second = ControlChannel(socket_path(tmp_path), guard)
    assert await second.start()
    try:
        assert (await ask(tmp_path, {"command": "bans"})) == {"ok": True, "bans": []}
    finally:
        await second.close()


async def test_a_path_too_long_for_a_unix_socket_leaves_the_bot_running(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    channel = ControlChannel(socket_path(deep), AuthGuard(AuthSecurityConfig()))
    assert not await channel.start()
    await channel.close()
