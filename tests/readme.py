"""The README's recipes, read from README.md itself, so that the tests run what a reader types.

A recipe is the fenced block after a line ``<!-- recipe: NAME -->`` (invisible once rendered).
A ``console`` recipe is a transcript: ``$ `` starts the command, then lines the reader types
and lines the program shows.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BOT_ADDRESS = "127.0.0.1:5060"
"""The bot's address in the recipes (its embedded default); tests put a free port there."""


def recipe(name: str, *, bot_port: int | None = None) -> str:
    """The text of the recipe ``name``; with ``bot_port``, the bot's address moved there (the
    one substitution a test must make: it cannot take port 5060)."""
    marker = f"<!-- recipe: {name} -->"
    text = README.read_text(encoding="utf-8")
    found = re.search(re.escape(marker) + r"\s*\n[ \t]*```[^\n]*\n(.*?)\n[ \t]*```", text, re.S)
    if found is None:
        raise AssertionError(f"README.md has no fenced block after {marker}")
    body = textwrap.dedent(found.group(1)) + "\n"
    if bot_port is None:
        return body
    if BOT_ADDRESS not in body:
        raise AssertionError(f"recipe {name!r} no longer names the bot at {BOT_ADDRESS}")
    return body.replace(BOT_ADDRESS, f"127.0.0.1:{bot_port}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript:
    command: list[str]
    """The command line after ``$ ``, split as a shell would (``~`` left as it is)."""
    typed: list[str]
    """What the reader types at the program's prompt, in order."""
    shown: list[str]
    """The output lines the transcript shows, in order."""


def transcript(name: str, *, typed: str, keep: bool = False) -> Transcript:
    """The console recipe ``name``: lines that start with ``typed`` (a prompt such as
    ``linphonec> ``, removed unless ``keep``, or a menu's command character) are typed, the
    others are output."""
    lines = recipe(name).splitlines()
    if not lines or not lines[0].startswith("$ "):
        raise AssertionError(f"recipe {name!r} does not start with a '$ ' command line")
    said = [line for line in lines[1:] if line.startswith(typed)]
    return Transcript(
        command=shlex.split(lines[0][2:]),
        typed=[line if keep else line.removeprefix(typed) for line in said],
        shown=[line for line in lines[1:] if not line.startswith(typed)],
    )
