"""The layering of DESIGN.md, read from the source with ``ast`` (every import, those under
``if TYPE_CHECKING:`` and inside functions too): the protocol core stays sans-IO, the
conferencing domain knows nothing of the chat layer, and no import cycle - not even a type-only
one - joins the commands to the domain packages."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import bot

BOT = Path(bot.__file__).parent
FORBIDDEN_IN_SIP = {"asyncio", "socket", "ssl", "time", "selectors", "threading"}
COMMANDS = "bot.commands"
DOMAIN = ("bot.conferencing", "bot.im", "bot.services")


def imported(source: str) -> set[str]:
    """Every module ``source`` imports, wherever the import statement sits."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def package_of(module: str) -> str | None:
    """``bot.x`` for any module under bot/x (or bot/x.py itself); None outside bot."""
    parts = module.split(".")
    if parts[0] != "bot" or len(parts) < 2:
        return None
    if not ((BOT / parts[1]).is_dir() or (BOT / f"{parts[1]}.py").is_file()):
        return None  # a name imported from bot/__init__.py (bot.__version__)
    return ".".join(parts[:2])


def package_graph(root: Path = BOT) -> dict[str, set[str]]:
    """bot.x -> the other bot.y packages its modules import."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        source = package_of(".".join(path.relative_to(root.parent).with_suffix("").parts))
        assert source is not None
        targets = {package_of(name) for name in imported(path.read_text(encoding="utf-8"))}
        graph.setdefault(source, set()).update(t for t in targets if t and t != source)
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()) - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def cycles_between(graph: dict[str, set[str]], one: str, others: Iterable[str]) -> list[str]:
    """The packages of ``others`` that ``one`` reaches and that reach ``one`` back."""
    return [o for o in others if o in reachable(graph, one) and one in reachable(graph, o)]


def test_bot_sip_imports_no_io_or_clock() -> None:
    offenders = [
        f"{path.name}: {name}"
        for path in (BOT / "sip").rglob("*.py")
        for name in imported(path.read_text(encoding="utf-8"))
        if name.split(".")[0] in FORBIDDEN_IN_SIP
    ]
    assert offenders == []


def test_conferencing_imports_nothing_from_the_chat_layer_or_im() -> None:
    offenders = [
        f"{path.name}: {name}"
        for path in (BOT / "conferencing").rglob("*.py")
        for name in imported(path.read_text(encoding="utf-8"))
        if package_of(name) in {COMMANDS, "bot.im"}
    ]
    assert offenders == []


def test_no_import_cycle_joins_the_commands_to_the_domain_packages() -> None:
    graph = package_graph()
    assert set(DOMAIN) | {COMMANDS} <= set(graph)  # the packages this guards are all read
    assert cycles_between(graph, COMMANDS, DOMAIN) == []


def test_the_reader_sees_type_only_and_late_imports_and_finds_indirect_cycles() -> None:
    """The checks above would pass on a reader that missed imports: prove it does not."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from bot.commands.context import Sender\n"
        "def later() -> None:\n"
        "    import asyncio\n"
    )
    assert {"bot.commands.context", "asyncio"} <= imported(source)
    graph = {"bot.commands": {"bot.config"}, "bot.config": {"bot.im"}, "bot.im": {"bot.commands"}}
    assert cycles_between(graph, "bot.commands", DOMAIN) == ["bot.im"]
    assert cycles_between({"bot.commands": {"bot.im"}}, "bot.commands", DOMAIN) == []
