"""Reading config.yaml: YAML with the line of every key, ``${ENV_VAR}`` secrets, and errors
that name the file, line, key path and problem (the schema is bot.config.sections)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.config.base import Problem
from bot.config.sections import Config

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """An invalid config file; ``messages`` each name the file, line, key path and problem."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


Keep = Callable[[dict[str, Any]], dict[str, Any]]
"""Picks the part of a config file a reader needs; the rest is left at its defaults."""


def load_config(path: Path | None, keep: Keep | None = None) -> Config:
    """The config in ``path``, or the embedded defaults when ``path`` is None. With ``keep``,
    only what it picks from the file is read and checked (``sipbot send`` needs no more)."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    return parse_config(text, str(path), keep)


def parse_config(text: str, source: str = "config.yaml", keep: Keep | None = None) -> Config:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: not valid YAML: {problem}"]) from exc
    lines = _lines(root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: the top level must be a mapping of sections"])
    errors: list[str] = []
    if keep is not None:
        data = keep(data)
    data = _expand_env(data, (), lines, source, errors)
    if errors:
        raise ConfigError(errors)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(e, lines, source) for e in exc.errors()]) from exc


def _lines(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Line number (1-based) of every key path in the YAML document."""
    out: dict[tuple[Any, ...], int] = {}
    if node is None:
        return out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            out[child] = key.start_mark.line + 1
            out.update({k: v for k, v in _lines(value, child).items() if k != child})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out.update(_lines(item, (*path, index)))
    return out


def _line_of(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error: Any, lines: dict[tuple[Any, ...], int], source: str) -> str:
    path = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Problem):
        path += cause.path
        if cause.path or cause.secret:
            error = {**error, "input": {}}  # not repeated in the message
    line = _line_of(path, lines)
    where = f"{source}:{line}" if line else source
    if error["type"] == "extra_forbidden":
        return f"{where}: {_dotted(path)}: unknown key (check its spelling in config.yaml)"
    if error["type"] == "missing":
        return f"{where}: {_dotted(path)}: required, but missing"
    value = error.get("input")
    shown = f", got {value!r}" if not isinstance(value, dict | list) else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {_dotted(path)}: {message}{shown}"


def _expand_env(
    value: Any,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    source: str,
    errors: list[str],
) -> Any:
    """Replace ``${NAME}`` by the environment variable NAME; a missing one is an error."""
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, k), lines, source, errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), lines, source, errors) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                errors.append(
                    f"{source}:{_line_of(path, lines)}: {_dotted(path)}: environment variable "
                    f"{name} is not set"
                )
                return ""
            return os.environ[name]

        return _ENV_RE.sub(substitute, value)
    return value
