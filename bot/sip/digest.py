"""HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760, RFC 2617).

Client: :class:`DigestClient` answers 401/407 challenges for one set of credentials.
Server: :class:`DigestServer` issues HMAC-signed nonces and verifies answers, refusing replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.sip.errors import SipParseError
from bot.sip.grammar import is_token, quote, read_quoted
from bot.sip.message import Request, Response

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


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``Scheme name=value, name="quoted, value"`` (RFC 3261 §25.1 challenge/credentials;
    RFC 7616 §3.3). Commas inside quoted strings do not separate parameters."""
    text = value.strip()
    scheme, _, rest = text.partition(" ")
    if not is_token(scheme):
        raise SipParseError(f"bad authentication scheme in {value!r}")
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
    return scheme, params


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


@dataclass(slots=True)
class DigestClient:
    """Answers Digest challenges for one user (RFC 3261 §22.2, §22.3)."""

    username: str
    password: str
    cnonce: Callable[[], str] = field(default=lambda: secrets.token_hex(8))
    _nc: dict[str, int] = field(default_factory=dict)
    _last: dict[tuple[str, bool], Challenge] = field(default_factory=dict)

    def authorize(self, request: Request, response: Response) -> bool:
        """Add credentials to ``request`` (the retry, with its CSeq already raised) for every
        realm challenged in ``response``; False when none of its challenges can be answered.
        Whether retrying makes sense at all is the caller's call (RFC 3261 §22.2: a second
        challenge to a fresh answer means the credentials are wrong, unless ``stale=true``)."""
        challenges = self.challenges(response)
        if not challenges:
            return False
        for name in ("authorization", "proxy-authorization"):
            request.headers.remove(name)
        for challenge in challenges:
            self._last[(challenge.realm, challenge.proxy)] = challenge
            self._add(request, challenge)
        return True

    def preauthorize(self, request: Request) -> bool:
        """Answer the last challenges again before being asked, with a rising nonce count
        (RFC 7616 §3.4, RFC 3261 §22.3); False when there is nothing to reuse."""
        if not self._last:
            return False
        for challenge in self._last.values():
            self._add(request, challenge)
        return True

    @staticmethod
    def is_stale(response: Response) -> bool:
        """The server refused only the nonce, not the credentials (RFC 7616 §3.3)."""
        return any(c.stale for c in DigestClient.challenges(response))

    def _add(self, request: Request, challenge: Challenge) -> None:
        header = "Proxy-Authorization" if challenge.proxy else "Authorization"
        request.headers.add(header, self.credentials(challenge, request))

    @staticmethod
    def challenges(response: Response) -> list[Challenge]:
        """The best challenge we can answer per realm, in the order the realms appeared."""
        best: dict[tuple[str, bool], Challenge] = {}
        for header, proxy in (("www-authenticate", False), ("proxy-authenticate", True)):
            for value in response.headers.rows(header):
                try:
                    challenge = Challenge.parse(value, proxy=proxy)
                except SipParseError:
                    continue
                if not supported(challenge.algorithm):
                    continue
                key = (challenge.realm, proxy)
                current = best.get(key)
                if (
                    current is None
                    or _STRENGTH[_base_algorithm(challenge.algorithm)]
                    > _STRENGTH[_base_algorithm(current.algorithm)]
                ):
                    best[key] = challenge
        return list(best.values())

    def credentials(self, challenge: Challenge, request: Request) -> str:
        """The Authorization value answering ``challenge`` for ``request`` (RFC 7616 §3.4)."""
        uri = str(request.uri)
        qop = ""
        if "auth" in challenge.qop:
            qop = "auth"
        elif "auth-int" in challenge.qop:
            qop = "auth-int"
        nc = cnonce = ""
        if qop or challenge.algorithm.upper().endswith("-SESS"):
            cnonce = self.cnonce()
        if qop:
            count = self._nc.get(challenge.nonce, 0) + 1
            self._nc[challenge.nonce] = count
            nc = f"{count:08x}"  # RFC 7616 §3.4: nc is exactly 8 hex digits
        response = compute_response(
            algorithm=challenge.algorithm,
            username=self.username,
            realm=challenge.realm,
            password=self.password,
            method=request.method,
            uri=uri,
            nonce=challenge.nonce,
            nc=nc,
            cnonce=cnonce,
            qop=qop,
            body=request.body,
        )
        parts = [
            f"Digest username={quote(self.username)}",
            f"realm={quote(challenge.realm)}",
            f"nonce={quote(challenge.nonce)}",
            f"uri={quote(uri)}",
            f"response={quote(response)}",
            f"algorithm={challenge.algorithm}",
        ]
        if cnonce:
            parts.append(f"cnonce={quote(cnonce)}")
        if challenge.opaque is not None:
            parts.append(f"opaque={quote(challenge.opaque)}")
        if qop:
            parts += [f"qop={qop}", f"nc={nc}"]
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Outcome of checking a request's credentials."""

    ok: bool
    username: str | None = None
    stale: bool = False
    """The nonce was ours but expired: challenge again with ``stale=true`` (RFC 7616 §3.3)."""
    reason: str = ""

    @property
    def wrong_answer(self) -> bool:
        """A wrong response to a nonce we issued to this very source: the only verdict that
        says someone there guessed (a forged or replayed nonce proves nothing about them)."""
        return self.reason == WRONG_CREDENTIALS


WRONG_CREDENTIALS = "wrong credentials"
NOT_OURS = "nonce not ours"


class DigestServer:
    """Issues and checks Digest challenges for one realm (RFC 7616 §3.3, §3.4, §5).

    Nonces are ``base64(issued_at | random | HMAC(secret, issued_at | random | realm | source))``:
    no state is kept per challenge, only the highest nonce count seen per nonce in use (replay
    guard). ``source`` is the address the challenge went to; a nonce answered from another
    address is not ours (RFC 7616 §5.5 lets the server bind a nonce to the client's address),
    so a forged answer from a spoofed address cannot pass for a guess made there.
    """

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        algorithms: tuple[str, ...] = ("MD5",),
        nonce_lifetime: float = 300.0,
        qop: tuple[str, ...] = ("auth",),
    ):
        self.realm = realm
        self.algorithms = algorithms
        self.nonce_lifetime = nonce_lifetime
        self.qop = qop
        self._secret = secret or secrets.token_bytes(32)
        self._seen_nc: dict[str, tuple[int, float]] = {}

    def challenges(self, now: float, *, source: str, stale: bool = False) -> list[str]:
        """Challenge header values for a request from ``source`` (an IP address), one per
        algorithm in order of preference."""
        nonce = self._new_nonce(now, source)
        return [
            Challenge(
                realm=self.realm, nonce=nonce, algorithm=alg, qop=self.qop, stale=stale
            ).header_value()
            for alg in self.algorithms
        ]

    def verify(
        self,
        request: Request,
        password_of: Callable[[str], str | None],
        now: float,
        *,
        source: str,
        proxy: bool = False,
    ) -> Verdict:
        """Check the request's Authorization (or Proxy-Authorization) for this realm, as sent
        from ``source`` (the IP address the request came from)."""
        header = "proxy-authorization" if proxy else "authorization"
        for value in request.headers.rows(header):
            try:
                scheme, params = parse_auth_params(value)
            except SipParseError:
                continue
            if scheme.lower() == "digest" and params.get("realm") == self.realm:
                return self._check(request, params, password_of, now, source)
        return Verdict(ok=False, reason="no credentials for this realm")

    def _check(
        self,
        request: Request,
        p: dict[str, str],
        password_of: Callable[[str], str | None],
        now: float,
        source: str,
    ) -> Verdict:
        username = p.get("username")
        nonce = p.get("nonce", "")
        algorithm = p.get("algorithm", "MD5")
        if not username or "response" not in p or "uri" not in p:
            return Verdict(ok=False, username=username, reason="incomplete credentials")
        if algorithm not in self.algorithms:
            return Verdict(ok=False, username=username, reason="algorithm not offered")
        issued = self._nonce_issued(nonce, source)
        if issued is None:
            return Verdict(ok=False, username=username, reason=NOT_OURS)
        if p["uri"] != str(request.uri):  # RFC 7616 §3.4.6: the uri must be the Request-URI
            return Verdict(ok=False, username=username, reason="digest uri is not the Request-URI")
        qop = p.get("qop", "")
        if qop and qop not in self.qop:
            return Verdict(ok=False, username=username, reason="qop not offered")
        if self.qop and not qop:
            return Verdict(ok=False, username=username, reason="qop missing")
        nc_text = p.get("nc", "")
        if qop and (len(nc_text) != 8 or any(c not in "0123456789abcdefABCDEF" for c in nc_text)):
            return Verdict(ok=False, username=username, reason="bad nonce count")
        password = password_of(username)
        # Compute even for unknown users so both paths cost the same (no user enumeration).
        expected = compute_response(
            algorithm=algorithm,
            username=username,
            realm=self.realm,
            password=password if password is not None else secrets.token_hex(16),
            method=request.method,
            uri=p["uri"],
            nonce=nonce,
            nc=nc_text,
            cnonce=p.get("cnonce", ""),
            qop=qop,
            body=request.body,
        )
        if (
            not hmac.compare_digest(
                expected.encode(), p["response"].encode("utf-8", "surrogateescape")
            )
            or password is None
        ):
            return Verdict(ok=False, username=username, reason=WRONG_CREDENTIALS)
        if now - issued > self.nonce_lifetime:
            return Verdict(ok=False, username=username, stale=True, reason="nonce expired")
        if qop:
            nc = int(nc_text, 16)
            last = self._seen_nc.get(nonce)
            if last is not None and nc <= last[0]:
                return Verdict(ok=False, username=username, reason="nonce count replayed")
            self._seen_nc[nonce] = (nc, issued)
            self._prune(now)
        return Verdict(ok=True, username=username)

    def _new_nonce(self, now: float, source: str) -> str:
        body = struct.pack(">d", now) + secrets.token_bytes(12)
        return base64.urlsafe_b64encode(body + self._mac(body, source)).decode().rstrip("=")

    def _mac(self, body: bytes, source: str) -> bytes:
        signed = body + self.realm.encode() + b"\0" + source.encode()
        return hmac.new(self._secret, signed, hashlib.sha256).digest()[:16]

    def _nonce_issued(self, nonce: str, source: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 36:
            return None
        body, mac = raw[:20], raw[20:]
        if not hmac.compare_digest(mac, self._mac(body, source)):
            return None
        issued: float = struct.unpack(">d", body[:8])[0]
        return issued

    def _prune(self, now: float) -> None:
        if len(self._seen_nc) < 10_000:
            return
        horizon = now - self.nonce_lifetime
        self._seen_nc = {n: v for n, v in self._seen_nc.items() if v[1] >= horizon}
