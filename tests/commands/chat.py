"""A bot to chat with in tests: the real dispatcher, handlers and SQLite store, no SIP."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.commands.dispatcher import Dispatcher
from bot.commands.registry import Registry
from bot.conferencing.endpoints import UserEndpointPool
from bot.conferencing.store import ConferenceStore
from bot.config import Config
from bot.runtime import load_handlers
from bot.sender import Sender


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ChatServices:
    def __init__(self, store: ConferenceStore, zone: str):
        self.conferences = store
        self.zone = ZoneInfo(zone)
        self.endpoints = UserEndpointPool(store)
        self.announcer: Any = None  # set by the announcement tests (tests/commands/test_announce*)
        self.sounds: Any = None

    def status(self) -> dict[str, Any]:
        return {"uptime": "42 s", "IM sessions": 0}


class ChatBot:
    def __init__(self, config: Config, store: ConferenceStore, registry: Registry | None = None):
        self.clock = FakeClock()
        self.store = store
        self.dispatcher = Dispatcher(
            config,
            registry or load_handlers(),
            ChatServices(store, config.conferences.time_zone),
            clock=self.clock,
        )

    async def say(self, who: str, text: str) -> str:
        user, _, domain = who.partition("@")
        return await self.dispatcher.dispatch(Sender(user, domain or "example.test"), text)


async def chat_bot(tmp_path: Path, config: Config | None = None, **sections: Any) -> ChatBot:
    config = config or Config(**sections)
    store = ConferenceStore(f"sqlite+aiosqlite:///{tmp_path / 'conferences.db'}")
    await store.open()
    await store.seed_demo("example.test", datetime.now(UTC))
    return ChatBot(config, store)
