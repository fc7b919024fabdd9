"""runtime.event_loop: which loop `sipbot run` serves on."""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType

import pytest

from bot import eventloop
from bot.config import Config, ConfigError


async def _running() -> str:
    return eventloop.name(asyncio.get_running_loop())


def test_auto_runs_on_uvloop_which_comes_with_the_bot() -> None:
    assert Config().runtime.event_loop == "auto"
    assert eventloop.run(_running(), "auto") == "uvloop"
    assert eventloop.run(_running(), "uvloop") == "uvloop"


def test_asyncio_runs_on_the_standard_library_loop() -> None:
    assert eventloop.loop_factory("asyncio") is None
    assert eventloop.run(_running(), "asyncio") == "asyncio"


def test_without_uvloop_auto_falls_back_and_a_demand_for_it_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.import_module

    def without_uvloop(name: str, package: str | None = None) -> ModuleType:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_uvloop)
    assert eventloop.run(_running(), "auto") == "asyncio"
    with pytest.raises(ConfigError) as caught:
        eventloop.loop_factory("uvloop")
    assert caught.value.messages[0].startswith("runtime.event_loop: uvloop cannot be imported")


async def test_async_tests_run_on_the_loop_the_bot_ships_with() -> None:
    assert eventloop.name(asyncio.get_running_loop()) == "uvloop"


@pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])
async def test_a_test_can_ask_for_both_loops(request: pytest.FixtureRequest) -> None:
    assert eventloop.name(asyncio.get_running_loop()) == request.node.callspec.id
