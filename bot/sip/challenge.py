"""Digest challenges and the response computation shared by client and server (RFC 3261
§22.4, RFC 7616, RFC 8760, RFC 2617)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.sip.errors import SipParseError
from bot.sip.grammar import is_token, quote, read_quoted

# RFC 8760 §2: algorithms by name; the -sess variants hash the nonce and cnonce into HA1.
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "SHA-512-256": lambda b: hashlib.new("sha512_256", b).hexdigest(),
}
# Preference when a server offers several (RFC 8760 §2.4 lets the client pick; we pick the
# strongest it understands).
_STRENGTH = {"SHA-512-256": 3, "SHA-256": 2, "MD5": 1}


def _base_algorithm(algorithm: str) -> str:
    upper = algorithm.upper()
    return upper[:-5] if upper.endswith("-SESS") else upper


def supported(algorithm: str) -> bool:
    return _base_algorithm(algorithm) in _HASHES


_PLAIN_PARAM = re.compile(
    r"[ \t,]*+([A-Za-z0-9\-.!%*_+`\'~]++)[ \t]*+=[ \t]*+"
    r'(?:"([^"\\]*+)"|([^",\s]*+)[ \t]*+(?=,|\Z))'
)
"""One ``name=token`` or ``name="quoted"`` without escapes, as clients write them: the fast
path of :func:`parse_auth_params` (every request of a pre-authorizing client is parsed).
Possessive (``*+``, ``++``): what follows each repeat is a character it cannot take, so
giving some back could never let the rest match, and the engine keeps no place to return to."""


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Scheme name=value, name="quoted, value"`` (RFC 3261 §25.1 challenge/credentials;
    RFC 7616 §3.3). Commas inside quoted strings do not separate parameters."""
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not is_token(scheme):
        raise SipParseError(f"bad authentication scheme in {value!r}")
    params: dict[str, str] = {}
    end, match = 0, _PLAIN_PARAM.match(rest)
    while match is not None:
        quoted = match[2]
        params[match[1].lower()] = quoted if quoted is not None else match[3]
        end = match.end()
        match = _PLAIN_PARAM.match(rest, end)
    if not rest[end:].strip(" \t,"):
        return scheme, params
    return scheme, _read_params(rest, value)  # escapes, odd spacing, errors: read exactly


def _read_params(rest: str, value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise SipParseError(f"auth parameter without '=' in {value!r}")
        name = rest[i:eq].strip().lower()
        if not is_token(name):
            raise SipParseError(f"bad auth parameter name {name!r}")
        j = eq + 1
        while j < n and rest[j] in " \t":
            j += 1
        if j < n and rest[j] == '"':
            content, j = read_quoted(rest, j)
        else:
            end = rest.find(",", j)
            end = n if end < 0 else end
            content = rest[j:end].strip()
            j = end
        params[name] = content
        i = j
    return params


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate Digest challenge (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False
    """From Proxy-Authenticate (407): answered in Proxy-Authorization."""

    @classmethod
    def parse(cls, value: str, *, proxy: bool = False) -> Challenge:
        scheme, params = parse_auth_params(value)
        if scheme.lower() != "digest":
            raise SipParseError(f"not a Digest challenge: {scheme}")
        if "realm" not in params or "nonce" not in params:
            raise SipParseError("Digest challenge without realm or nonce")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=params.get("algorithm", "MD5"),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
            proxy=proxy,
        )

    def header_value(self) -> str:
        parts = [f"Digest realm={quote(self.realm)}", f"nonce={quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.stale:
            parts.append("stale=true")
        return ", ".join(parts)


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str = "",
    cnonce: str = "",
    qop: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1, RFC 2617 §3.2.2)."""
    # header text from the wire may hold non-UTF-8 bytes as surrogates: hash the bytes sent
    h = _HASHES[_base_algorithm(algorithm)]
    ha1 = h(f"{username}:{realm}:{password}".encode("utf-8", "surrogateescape"))
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode("utf-8", "surrogateescape"))
    if qop == "auth-int":
        ha2 = h(f"{method}:{uri}:{h(body)}".encode("utf-8", "surrogateescape"))
    else:
        ha2 = h(f"{method}:{uri}".encode("utf-8", "surrogateescape"))
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode("utf-8", "surrogateescape"))
    return h(f"{ha1}:{nonce}:{ha2}".encode("utf-8", "surrogateescape"))


def strength(algorithm: str) -> int:
    """How strongly ``algorithm`` hashes (higher is stronger); only for supported ones."""
    return _STRENGTH[_base_algorithm(algorithm)]
