"""The protocol core stays sans-IO: no asyncio, socket, ssl or time imports (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import bot.sip

FORBIDDEN = {"asyncio", "socket", "ssl", "time", "selectors", "threading"}


def test_bot_sip_imports_no_io_or_clock() -> None:
    offenders = []
    for path in Path(bot.sip.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
