"""Lexical pieces of the SIP grammar (RFC 3261 §25.1) shared by URIs and header values."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Protocol, TypeVar

from bot.sip.errors import SipParseError

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
"""The token rule as a regular expression, to build others from."""
_TOKEN_RE = re.compile(TOKEN + r"\Z")
# parameters that are all ``token [= token]`` with no LWS, the shape nearly every one has;
# possessive (``++``, ``?+``, ``*+``): a token holds neither "=" nor ";", so giving back what a
# repeat took could never let the rest match, and the engine keeps no place to return to
_TOKEN_PARAMS_RE = re.compile(f"{TOKEN}+(?:={TOKEN}+)?+(?:;{TOKEN}+(?:={TOKEN}+)?+)*+\\Z")
_HEX = "0123456789abcdefABCDEF"

Params = tuple[tuple[str, str | None], ...]
"""Ordered ``;name=value`` parameters; names lower-cased, a ``None`` value for a bare name."""


def is_digits(text: str) -> bool:
    """``1*DIGIT`` (RFC 5234 B.1: %x30-39 only). ``str.isdigit`` also accepts "²" and other
    Unicode digits that ``int`` then refuses: never use it on input from the wire."""
    return text.isascii() and text.isdigit()


def digits_value(text: str, limit: int) -> int | None:
    """The value of ``1*DIGIT`` text (ASCII digits only) when it is at most ``limit`` (below
    10**18), else None. Leading zeros are allowed; overlong text is refused before ``int``
    reads it (``int`` refuses strings past 4,300 digits with ValueError, and is slow below)."""
    if not (text.isascii() and text.isdigit()):
        return None
    if len(text) > 18 and len(text.lstrip("0")) > 18:
        return None
    value = int(text)
    return value if value <= limit else None


def is_token(text: str) -> bool:
    return _TOKEN_RE.match(text) is not None


def unescape(text: str, what: str) -> str:
    """Decode %HH escapes (RFC 3261 §19.1.2, RFC 3986 §2.1); a stray % is an error."""
    if "%" not in text:
        return text
    out = bytearray()
    raw = text.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:
            pair = raw[i + 1 : i + 3].decode("latin-1")
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise SipParseError(f"bad %-escape in {what}: {text!r}")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return out.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    """%-escape every character outside ``safe`` (RFC 3261 §19.1.2)."""
    if safe.issuperset(text):
        return text
    return "".join(
        ch if ch in safe else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
        for ch in text
    )


def quote(text: str) -> str:
    """A quoted-string (RFC 3261 §25.1) holding ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted-string starting at ``text[start] == '"'``; return (content, end index)."""
    out = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise SipParseError(f"unterminated quoted string: {text!r}")


def split_outside_quotes(text: str, sep: str, *, brackets: bool = True) -> list[str]:
    """Split on ``sep`` where it is outside quoted strings (and, optionally, ``<...>``).

    RFC 3261 §7.3.1: list headers are comma-separated, but commas inside a quoted display name
    or an angle-bracketed URI do not separate values.
    """
    if '"' not in text and not (brackets and "<" in text):
        return text.split(sep)
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            _, i = read_quoted(text, i)
            continue
        if brackets and ch == "<":
            depth += 1
        elif brackets and ch == ">":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def parse_params(text: str, what: str) -> Params:
    """Parse ``;name[=value]`` pairs (RFC 3261 §25.1 generic-param); ``text`` starts after the
    first ``;``. Values may be tokens, hosts (IPv6 references) or quoted strings; LWS around
    ``;`` and ``=`` is allowed (§7.3.1)."""
    if _TOKEN_PARAMS_RE.match(text) is None:
        return parse_params_general(text, what)
    return token_params(text)


def common_params(text: str) -> Params | None:
    """:func:`parse_params` of ``token [= token]`` pairs separated by ``;`` without LWS, the
    shape nearly every parameter list has; None for any other (read it with parse_params)."""
    if _TOKEN_PARAMS_RE.match(text) is None:
        return None
    return token_params(text)


def token_params(text: str) -> Params:
    """:func:`parse_params` for text already known to be ``token [= token]`` pairs separated
    by ``;`` without LWS (what ``_TOKEN_PARAMS_RE`` matches): nothing more to check."""
    if ";" not in text:  # one parameter, as a Via's branch or an address's tag most often is
        name, eq, value = text.partition("=")
        return ((name.lower(), value if eq else None),)
    params: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        params.append((name.lower(), value if eq else None))
    return tuple(params)


def parse_params_general(text: str, what: str) -> Params:
    """:func:`parse_params` for any text, without the shortcut for the usual shape."""
    params: list[tuple[str, str | None]] = []
    for part in split_outside_quotes(text, ";", brackets=False):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not name or not is_token(name):
            raise SipParseError(f"bad parameter {part.strip()!r} in {what}")
        if not eq:
            params.append((name.lower(), None))
            continue
        value = value.strip()
        if value.startswith('"'):
            content, end = read_quoted(value, 0)
            if end != len(value):
                raise SipParseError(f"junk after quoted parameter {name!r} in {what}")
            params.append((name.lower(), quote(content)))
        elif value and (is_token(value) or _is_host_value(value)):
            params.append((name.lower(), value))
        else:
            raise SipParseError(f"bad value for parameter {name!r} in {what}: {value!r}")
    return tuple(params)


def _is_host_value(value: str) -> bool:
    # gen-value = token / host / quoted-string; a host adds IPv6 references (RFC 5118 §4.5)
    if value.startswith("["):
        return value.endswith("]") and all(c in _HEX or c in ":." for c in value[1:-1])
    return all(c in _HEX or c in ":." for c in value)


def format_params(params: Params) -> str:
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params])


def get_param(params: Params, name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v
    return None


def has_param(params: Params, name: str) -> bool:
    for k, _ in params:
        if k == name:
            return True
    return False


def replace_param(params: Params, name: str, value: str | None) -> Params:
    """``params`` with ``name`` set to ``value`` (appended when absent)."""
    if has_param(params, name):
        return tuple((k, value if k == name else v) for k, v in params)
    return (*params, (name, value))


class _Rendered(Protocol):
    @property
    def _text(self) -> str | None: ...


_R = TypeVar("_R", bound=_Rendered)


def rendered_once(render: Callable[[_R], str]) -> Callable[[_R], str]:
    """``__str__`` for a frozen dataclass with a ``_text`` field (``init=False``,
    ``compare=False``, ``repr=False``, default None): ``render`` runs on first use and its text
    is kept in ``_text``, which nothing invalidates because the fields never change."""

    @functools.wraps(render)
    def __str__(self: _R) -> str:
        text = self._text
        if text is None:
            text = render(self)
            object.__setattr__(self, "_text", text)
        return text

    return __str__
