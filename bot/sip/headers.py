"""Header fields: an ordered, case-insensitive container and the typed values the core reads.

RFC 3261 §7.3: names are case-insensitive and have compact forms (§7.3.3, §20); several header
field rows with the same name equal one row with comma-separated values (§7.3.1), except for
the authentication headers whose values contain commas themselves.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields

from bot.sip.errors import SipParseError
from bot.sip.grammar import (
    TOKEN,
    Params,
    common_params,
    digits_value,
    format_params,
    get_param,
    is_token,
    parse_params,
    quote,
    read_quoted,
    rendered_once,
    split_outside_quotes,
)
from bot.sip.uri import MAX_CACHED_VALUE, PARSE_CACHE_SIZE, SipUri, Uri, parse_hostport, parse_uri

# RFC 3261 §7.3.3 and §20, RFC 3265 §7.2 (o, u), RFC 3515 (r), RFC 3892 (b), RFC 4028 (x),
# RFC 3841 (a, j, d), RFC 4474 (y): compact form -> canonical lower-case name
COMPACT_FORMS = {
    "i": "call-id", "m": "contact", "v": "via", "f": "from", "t": "to", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
    "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by",
    "x": "session-expires", "a": "accept-contact", "j": "reject-contact",
    "d": "request-disposition", "y": "identity",
}  # fmt: skip

# Headers whose rows are comma-separated lists (RFC 3261 §7.3.1 and the grammar of §25.1).
LIST_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "in-reply-to",
        "path",
        "proxy-require",
        "record-route",
        "require",
        "route",
        "service-route",
        "supported",
        "unsupported",
        "via",
        "warning",
        "p-asserted-identity",
        "p-preferred-identity",
    }
)

MAX_CACHED_NAME = 128
"""Longest header name, in characters, whose key is remembered: real names are short, and a
table filled by what peers send must be bounded in bytes, not only in entries."""
MAX_CACHED_NAMES = 4096
"""Distinct header names whose key is remembered."""


class _HeaderKeys(dict[str, str]):
    """Header name -> its canonical key, computed on a miss and remembered within the bounds
    above: a hit is a plain dict lookup."""

    def __missing__(self, name: str) -> str:
        lower = name.lower()
        key = COMPACT_FORMS.get(lower, lower)
        if len(self) < MAX_CACHED_NAMES and len(name) <= MAX_CACHED_NAME:
            self[name] = key
        return key


_key_cache = _HeaderKeys()


header_key: Callable[[str], str] = _key_cache.__getitem__
"""Canonical lookup key of a header name: lower-case, compact form expanded."""


class Headers:
    """Header fields in wire order. Lookups ignore case and compact forms.

    Two things derive from the rows and follow every change of them, so they are never stale:
    the first value of each key (lookups and presence checks without a scan), and
    :attr:`parsed`, the typed values bot.sip.model parsed from the rows of a key (each header
    is parsed once however often it is read), dropped when that key changes."""

    __slots__ = ("_rows", "_first", "parsed")

    def __init__(
        self, rows: list[tuple[str, str, str]] | None = None, first: dict[str, str] | None = None
    ):
        """``rows``: (key, name as written, value with folding undone) in wire order, kept as
        they are; ``first``: each key's value in its first row, when the caller worked it out
        while making the rows (else it is worked out here)."""
        if rows is None:
            self._rows: list[tuple[str, str, str]] = []
            self._first: dict[str, str] = {}
        else:
            self._rows = rows
            if first is None:
                # reversed: the first row of a key is written last, so its value is the one
                # kept (a loop, not a comprehension: that would be a function call of its own)
                first = {}
                for key, _, value in reversed(rows):
                    first[key] = value
            self._first = first
        self.parsed: dict[str, object] = {}

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        rows: list[tuple[str, str, str]] = []
        first: dict[str, str] = {}
        for name, value in pairs:  # the rows and their first values in one pass
            key = _key_cache[name]
            rows.append((key, name, value))
            first.setdefault(key, value)
        return cls(rows, first)

    def first_values(self) -> dict[str, str]:
        """Each key present -> the value of its first row (read it, never change it)."""
        return self._first

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._rows:
            yield name, value

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return _key_cache[name] in self._first

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._rows] == [(k, v) for k, _, v in other._rows]

    def __repr__(self) -> str:
        return f"Headers({[(n, v) for _, n, v in self._rows]!r})"

    def copy(self) -> Headers:
        copy = Headers(list(self._rows))
        copy.parsed = dict(self.parsed)  # the same rows: the same (immutable) values
        return copy

    def get(self, name: str) -> str | None:
        """The first row's value, or None."""
        return self._first.get(_key_cache[name])

    def rows(self, name: str) -> list[str]:
        """Every row's value, unsplit."""
        key = _key_cache[name]
        if key not in self._first:  # none: no scan (as for Authorization in most requests)
            return []
        return [row[2] for row in self._rows if row[0] == key]

    def values(self, name: str) -> list[str]:
        """All values: rows of list headers split on commas outside quotes and ``<>``."""
        key = _key_cache[name]
        if key not in self._first:
            return []
        rows = [row[2] for row in self._rows if row[0] == key]
        if key not in LIST_HEADERS:
            return rows
        out: list[str] = []
        for value in rows:
            if "," in value:
                out.extend(part.strip() for part in split_outside_quotes(value, ","))
            else:
                out.append(value)
        return out

    def first_value(self, name: str) -> str | None:
        """The first value of a list header (the top Via, the first Route), or None."""
        key = _key_cache[name]
        value = self._first.get(key)
        if value is not None and "," in value and key in LIST_HEADERS:
            return split_outside_quotes(value, ",")[0].strip()
        return value

    def add(self, name: str, value: str) -> None:
        key = _key_cache[name]
        self._rows.append((key, name, value))
        if key in self.parsed:
            del self.parsed[key]
        if key not in self._first:
            self._first[key] = value

    def prepend(self, name: str, value: str) -> None:
        key = _key_cache[name]
        self._rows.insert(0, (key, name, value))
        self.parsed.pop(key, None)
        self._first[key] = value

    def set(self, name: str, value: str) -> None:
        """Replace every row of ``name`` by one row, where the first one stood."""
        key = _key_cache[name]
        self.parsed.pop(key, None)
        self._first[key] = value
        for i, row in enumerate(self._rows):
            if row[0] == key:
                self._rows[i] = (key, name, value)
                self._rows[i + 1 :] = [r for r in self._rows[i + 1 :] if r[0] != key]
                return
        self._rows.append((key, name, value))

    def put_first(self, name: str, value: str) -> None:
        """Replace every row of ``name`` by one row at the top."""
        key = _key_cache[name]
        if key in self._first:
            self._rows = [(key, name, value), *[row for row in self._rows if row[0] != key]]
        else:  # none to replace, as in a request the bot builds before its Via is added
            self._rows.insert(0, (key, name, value))
        self.parsed.pop(key, None)
        self._first[key] = value

    def remove(self, name: str) -> None:
        key = _key_cache[name]
        self._rows = [row for row in self._rows if row[0] != key]
        self.parsed.pop(key, None)
        self._first.pop(key, None)

    def remove_first(self, name: str) -> None:
        """Remove the first value of a list header (e.g. the top Via, RFC 3261 §8.1.3.3)."""
        key = _key_cache[name]
        self.parsed.pop(key, None)
        for i, row in enumerate(self._rows):
            if row[0] != key:
                continue
            parts = split_outside_quotes(row[2], ",")
            if len(parts) > 1 and key in LIST_HEADERS:
                self._rows[i] = (key, row[1], ",".join(parts[1:]).strip())
            else:
                del self._rows[i]
            self._first = {key: value for key, _, value in reversed(self._rows)}
            return


# --- typed header values -------------------------------------------------------------------

_VIA_RE = re.compile(
    r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:\s*:\s*([0-9]{1,5}))?\s*(?:;(.*))?\Z",
    re.DOTALL | re.ASCII,  # RFC 3261 §25.1: DIGIT and LWS are ASCII; "²" is no port
)
# the sent-by of nearly every Via - no LWS, a host name or IPv4 address - matched in one go;
# with token parameters (grammar.common_params) the Via takes the fast path, anything else the
# general one. Same grammar, just faster.
_COMMON_SENT_BY_RE = re.compile(
    f"SIP/2\\.0/({TOKEN}) ([A-Za-z0-9](?:[A-Za-z0-9\\-.]*[A-Za-z0-9.])?)(?::([0-9]{{1,5}}))?\\Z"
)
BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7


@dataclass(frozen=True, slots=True, kw_only=True)
class Via:
    """One Via value (RFC 3261 §20.42, §18.2.2; ``rport``/``received`` from RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Via:
        text, semi, rest = value.partition(";")  # a sent-by holds no ";" (RFC 3261 §25.1)
        sent_by = _common_sent_by(text) if len(text) <= MAX_CACHED_VALUE else None
        if sent_by is not None:
            params = common_params(rest) if semi else ()
            if params is not None:
                via = _new(cls)  # Via(...) for checked values, at half the cost
                _set_via_transport(via, sent_by[0])
                _set_via_host(via, sent_by[1])
                _set_via_port(via, sent_by[2])
                _set_via_params(via, params)
                return via
        return cls._parse_general(value)

    @classmethod
    def _parse_general(cls, value: str) -> Via:
        m = _VIA_RE.match(value)
        if m is None:
            raise SipParseError(f"malformed Via: {value!r}")
        transport, host, port, params = m.groups()
        host, parsed_port = parse_hostport(host + (f":{port}" if port else ""), "Via")
        return cls(
            transport=transport.upper(),
            host=host,
            port=parsed_port,
            params=parse_params(params, "Via") if params is not None else (),
        )

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    @property
    def rfc3261_branch(self) -> str | None:
        """The branch if it carries the RFC 3261 magic cookie and something after it."""
        branch = get_param(self.params, "branch")
        if branch and branch.startswith(BRANCH_MAGIC) and len(branch) > len(BRANCH_MAGIC):
            return branch
        return None


def _read_common_sent_by(text: str) -> tuple[str, str, int | None] | None:
    """(transport, host, port) of a sent-by of the usual shape, None for any other."""
    m = _COMMON_SENT_BY_RE.match(text)
    if m is None:
        return None
    transport, host, port = m.groups()
    number = int(port) if port is not None else None
    if number is not None and number > 65535:
        return None
    return transport.upper(), host.lower(), number


# a peer's Vias differ in their branch only: its sent-by comes back in every request
_common_sent_by = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(_read_common_sent_by)


def slot_setters(cls: type, *names: str) -> tuple[Callable[[object, object], None], ...]:
    """The slot setters of the frozen slotted dataclass ``cls``, for a parser's fast path that
    makes instances of it from values it has checked: the ``__init__`` a frozen dataclass gets
    sets each field through ``object.__setattr__``, twice the cost. ``names`` must be all of
    its fields (checked here), so that an instance made with them has every field set."""
    if tuple(f.name for f in fields(cls)) != names:
        raise TypeError(f"{cls.__name__} fields are not {names}")
    return tuple(vars(cls)[name].__set__ for name in names)


_new = object.__new__
_set_via_transport, _set_via_host, _set_via_port, _set_via_params = slot_setters(
    Via, "transport", "host", "port", "params"
)

# ``["quoted name"] <uri> [;params]``, the shape nearly every From/To/Contact has
_COMMON_ADDRESS_RE = re.compile(
    r'\s*(?:"((?:[^"\\]|\\.)*)"\s*)?<([^<>\s]*)>\s*(;.*)?\Z', re.DOTALL | re.ASCII
)
_UNQUOTE_RE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """A name-addr or addr-spec with header parameters: From, To, Contact, Route…
    (RFC 3261 §20.10, §20.20, §20.39, §25.1)."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()
    _text: str | None = field(default=None, init=False, repr=False, compare=False)
    """The address as text, rendered on first use (see :func:`rendered_once`)."""
    tag: str | None = field(default=None, init=False, repr=False, compare=False)
    """The ``tag`` parameter (RFC 3261 §19.3): read for every dialog match, so found once,
    when the address is made (it derives from ``params``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", get_param(self.params, "tag"))

    @staticmethod
    def parse(value: str) -> Address:
        """Memoised up to :data:`MAX_CACHED_VALUE` characters: addresses are immutable, and
        From and To repeat for a whole dialog."""
        if len(value) > MAX_CACHED_VALUE:
            return _parse_address(value)
        return _parse_address_cached(value)

    @classmethod
    def _parse_common(cls, value: str) -> Address:
        m = _COMMON_ADDRESS_RE.match(value)
        if m is not None:
            display, uri, tail = m.groups()
            return Address(
                uri=parse_uri(uri),
                display_name=_UNQUOTE_RE.sub(r"\1", display) if display is not None else None,
                params=parse_params(tail[1:], "address") if tail else (),
            )
        return cls._parse_general(value)

    @classmethod
    def _parse_general(cls, value: str) -> Address:
        text = value.strip()
        if not text:
            raise SipParseError("empty address")
        display: str | None = None
        rest = text
        if text.startswith('"'):
            display, end = read_quoted(text, 0)
            rest = text[end:].lstrip()
            if not rest.startswith("<"):
                raise SipParseError(f"quoted display name without <URI>: {value!r}")
        lt = rest.find("<")
        if lt >= 0:
            if display is None and lt > 0:
                # display-name = *(token LWS) (RFC 3261 §25.1): tokens only, no commas etc.
                words = rest[:lt].split()
                if not all(is_token(w) for w in words):
                    raise SipParseError(f"display name is not tokens: {rest[:lt]!r}")
                display = " ".join(words)
            gt = rest.find(">", lt)
            if gt < 0:
                raise SipParseError(f"unclosed <URI> in {value!r}")
            uri = parse_uri(rest[lt + 1 : gt])
            tail = rest[gt + 1 :].strip()
        else:
            # addr-spec: the URI ends at the first ";" - its parameters are header
            # parameters, and it may not carry ",", ";" or "?" of its own (RFC 3261 §20).
            spec, semi, params_text = rest.partition(";")
            spec = spec.strip()
            if "?" in spec or "," in spec:
                raise SipParseError(f"URI with '?' or ',' must be in <>: {value!r}")
            uri = parse_uri(spec)
            tail = f";{params_text}" if semi else ""
        params: Params = ()
        if tail:
            if not tail.startswith(";"):
                raise SipParseError(f"junk after address: {value!r}")
            params = parse_params(tail[1:], "address")
        return cls(uri=uri, display_name=display, params=params)

    @rendered_once
    def __str__(self) -> str:
        name = f"{quote(self.display_name)} " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def sip_uri(self) -> SipUri:
        if not isinstance(self.uri, SipUri):
            raise SipParseError(f"not a SIP URI: {self.uri}")
        return self.uri


def _parse_address(value: str) -> Address:
    return Address._parse_common(value)


_parse_address_cached = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(_parse_address)


_COMMON_CSEQ_RE = re.compile(f"([0-9]{{1,10}}) ({TOKEN})\\Z")  # "314159 INVITE"
MAX_CACHED_CSEQ_DIGITS = 4
"""Longest sequence number, in digits, whose CSeq value is memoised (see :meth:`CSeq.parse`)."""


@dataclass(frozen=True, slots=True)
class CSeq:
    """CSeq (RFC 3261 §8.1.1.5, §20.16): a 32-bit unsigned sequence number and a method."""

    seq: int
    method: str

    @staticmethod
    def parse(value: str) -> CSeq:
        """Memoised up to :data:`MAX_CACHED_VALUE` characters, for sequence numbers of up to
        :data:`MAX_CACHED_CSEQ_DIGITS` digits: the values are immutable, and the requests of
        every dialog a client opens that counts from 1 come back with the same numbers. A
        dialog counting from a random number (ours, RFC 3261 §8.1.1.5, and those of many
        phones) never repeats one: remembering its values would only cost."""
        if len(value) <= MAX_CACHED_VALUE and value.find(" ", 1, MAX_CACHED_CSEQ_DIGITS + 1) > 0:
            return _parse_cseq_cached(value)
        return _parse_cseq(value)

    @classmethod
    def _parse_general(cls, value: str) -> CSeq:
        number, _, method = value.strip().partition(" ")
        method = method.strip()
        # "The sequence number value MUST be expressible as a 32-bit unsigned integer"
        seq = digits_value(number, 0xFFFFFFFF)
        if seq is None:
            raise SipParseError(f"bad CSeq number: {value!r}")
        if not is_token(method):
            raise SipParseError(f"bad CSeq method: {value!r}")
        return cls(seq, method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def _parse_cseq(value: str) -> CSeq:
    m = _COMMON_CSEQ_RE.match(value)
    if m is not None:
        seq = int(m[1])
        if seq <= 0xFFFFFFFF:
            cseq = _new(CSeq)  # CSeq(...) for checked values, at half the cost
            _set_cseq_seq(cseq, seq)
            _set_cseq_method(cseq, m[2])
            return cseq
    return CSeq._parse_general(value)


_parse_cseq_cached = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(_parse_cseq)
_set_cseq_seq, _set_cseq_method = slot_setters(CSeq, "seq", "method")
