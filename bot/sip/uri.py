"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966) and opaque absolute URIs."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from bot.sip.errors import SipParseError
from bot.sip.grammar import (
    Params,
    digits_value,
    escape,
    format_params,
    get_param,
    has_param,
    parse_params,
    rendered_once,
    unescape,
)

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UNRESERVED = frozenset(_ALNUM + "-_.!~*'()")
# RFC 3261 §25.1 user-unreserved, password, paramchar and hvalue character sets
USER_SAFE = _UNRESERVED | frozenset("&=+$,;?/")
PASSWORD_SAFE = _UNRESERVED | frozenset("&=+$,")
PARAM_SAFE = _UNRESERVED | frozenset("[]/:&+$")
HEADER_SAFE = _UNRESERVED | frozenset("[]/?:+$")
_PARAM_RAW = PARAM_SAFE | {"%"}
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9\-.]*[A-Za-z0-9.])?\Z")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
# characters that may never appear unescaped anywhere in a URI (RFC 3986 §2, RFC 3261 §25.1)
_FORBIDDEN_RE = re.compile(r'[ \t\r\n<>"{}|\\^`\x00]')


@dataclass(frozen=True, slots=True, kw_only=True)
class SipUri:
    """``sip:`` or ``sips:`` URI. ``user``/``password`` hold decoded text; ``host`` is
    lower-cased and keeps the brackets of an IPv6 reference (RFC 5118 §4.1)."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    _text: str | None = field(default=None, init=False, repr=False, compare=False)
    """The URI as text, rendered on first use (see :func:`rendered_once`)."""

    @rendered_once
    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, USER_SAFE))
            if self.password is not None:
                out += [":", escape(self.password, PASSWORD_SAFE)]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params:
            out += [";", escape(name, PARAM_SAFE)]
            if value is not None:
                out += ["=", escape(value, PARAM_SAFE)]
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{escape(k, HEADER_SAFE)}={escape(v, HEADER_SAFE)}" for k, v in self.headers
                )
            )
        return "".join(out)

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return has_param(self.params, name)

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TelUri:
    """``tel:`` URI (RFC 3966): a number and its parameters."""

    number: str
    params: Params = ()
    scheme: str = "tel"

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsoluteUri:
    """Any other absolute URI (RFC 3986), kept opaque: it parses, and a UAS answers 416."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


PARSE_CACHE_SIZE = 4096
"""Distinct values the memoised parsers (URIs, addresses) remember: their results are
immutable, and the same few values come back in every message of a dialog."""
MAX_CACHED_VALUE = 256
"""Longest value, in characters, the memoised parsers remember: real URIs and addresses are
far shorter, and a cache filled by what peers send must be bounded in bytes (4096 entries of
at most 256 characters), not only in entries."""


def parse_uri(text: str) -> Uri:
    """Parse a URI as found in a Request-URI or inside ``<...>``. Memoised up to
    :data:`MAX_CACHED_VALUE` characters."""
    if len(text) > MAX_CACHED_VALUE:
        return _parse_uri(text)
    return _parse_uri_cached(text)


def _parse_uri(text: str) -> Uri:
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.match(scheme) is None:
        raise SipParseError(f"not an absolute URI: {text!r}")
    if _FORBIDDEN_RE.search(text) is not None:
        raise SipParseError(f"illegal character in URI: {text!r}")
    scheme = scheme.lower()
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise SipParseError(f"tel URI without a number: {text!r}")
        return TelUri(number=number, params=parse_params(params, "tel URI") if params else ())
    if not rest:
        raise SipParseError(f"empty URI after scheme: {text!r}")
    return AbsoluteUri(scheme=scheme, rest=rest)


_parse_uri_cached = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(_parse_uri)


# The shape almost every URI on the wire has - no escapes, no URI headers - matched in one go;
# anything else takes the general path below. Same grammar, just faster.
_COMMON_SIP_RE = re.compile(
    r"(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,]*))?@)?"
    r"([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::([0-9]{1,5}))?((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$=]+)*)\Z"
)


def _parse_sip(scheme: str, rest: str, text: str) -> SipUri:
    if "%" not in rest:
        m = _COMMON_SIP_RE.match(rest)
        if m is not None:
            user, password, host, port, params = m.groups()
            if port is None or int(port) <= 65535:
                return SipUri(
                    scheme=scheme,
                    user=user,
                    password=password,
                    host=host.lower(),
                    port=int(port) if port else None,
                    params=_parse_uri_params(params[1:], text) if params else (),
                )
    return _parse_sip_general(scheme, rest, text)


def _parse_sip_general(scheme: str, rest: str, text: str) -> SipUri:
    # RFC 3261 §19.1.1: "sip:" [ userinfo "@" ] hostport uri-parameters [ headers ];
    # user and password cannot hold an unescaped "@", so the first "@" ends userinfo.
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        if not raw_user:
            raise SipParseError(f"empty user part: {text!r}")
        user = unescape(raw_user, "URI user")
        password = unescape(raw_password, "URI password") if colon else None
    rest, qmark, raw_headers = rest.partition("?")
    hostport, semi, raw_params = rest.partition(";")
    host, port = parse_hostport(hostport, text)
    params: Params = ()
    if semi:
        params = _parse_uri_params(raw_params, text)
    headers: tuple[tuple[str, str], ...] = ()
    if qmark:
        pairs = []
        for item in raw_headers.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise SipParseError(f"bad URI header {item!r} in {text!r}")
            pairs.append((unescape(name, "URI header"), unescape(value, "URI header")))
        headers = tuple(pairs)
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=params,
        headers=headers,
    )


def _parse_uri_params(raw: str, context: str) -> Params:
    # RFC 3261 §19.1.1 uri-parameters: *( ";" pname [ "=" pvalue ] ), pname/pvalue = 1*paramchar
    params = []
    for item in raw.split(";"):
        name, eq, value = item.partition("=")
        if not name or (eq and not value) or not _PARAM_RAW.issuperset(item.replace("=", "", 1)):
            raise SipParseError(f"bad URI parameter {item!r} in {context!r}")
        params.append(
            (
                unescape(name, "URI parameter").lower(),
                unescape(value, "URI parameter") if eq else None,
            )
        )
    return tuple(params)


def parse_hostport(hostport: str, context: str) -> tuple[str, int | None]:
    """Split ``host[:port]``; an IPv6 reference must be bracketed (RFC 5118 §4.2)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or not all(c in _IPV6_CHARS for c in hostport[1:end]) or end == 1:
            raise SipParseError(f"bad IPv6 reference in {context!r}")
        host, tail = hostport[: end + 1].lower(), hostport[end + 1 :]
        if tail and not tail.startswith(":"):
            raise SipParseError(f"junk after IPv6 reference in {context!r}")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_text_raw = hostport.partition(":")
        port_text = port_text_raw if colon else None
        if _HOSTNAME_RE.match(host) is None:
            raise SipParseError(f"bad host {host!r} in {context!r}")
        host = host.lower()
    if port_text is None:
        return host, None
    port = digits_value(port_text, 65535)
    if port is None:
        raise SipParseError(f"bad port {port_text!r} in {context!r}")
    return host, port
