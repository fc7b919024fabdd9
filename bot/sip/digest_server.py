"""The server side of HTTP Digest for SIP (RFC 3261 §22.4, RFC 7616 §3.3-§3.5, §5): issues
HMAC-signed nonces and verifies answers, refusing replays; accepts pre-authorization (the last
nonce again with a higher nonce count, RFC 7616 §3.4) and offers the next nonce before one
expires (RFC 7616 §3.5 ``nextnonce``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.sip.challenge import Challenge, compute_response, parse_auth_params
from bot.sip.errors import SipParseError
from bot.sip.grammar import quote
from bot.sip.message import Request

NC_TRACKED = 16_384
"""Nonces whose highest nonce count is remembered (the replay guard, RFC 7616 §3.4): one per
client active within a nonce lifetime. Beyond it the least recently used are forgotten, and a
forgotten nonce is answered ``stale=true`` (its client retries with a fresh one, unasked): at
worst one more round trip, never a replay accepted."""
NEXTNONCE_LEAD = 0.25
"""Fraction of the nonce lifetime: once less than this is left, a successful answer carries
the next nonce (RFC 7616 §3.5), so a pre-authorizing client never meets a stale challenge."""
VERDICTS = ("accepted", "preauthorized", "stale", "replayed")
"""Counted outcomes of right answers: to a fresh nonce, to one used before with a higher nonce
count (pre-authorization), to an expired or forgotten nonce, with a count not above the last."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Outcome of checking a request's credentials."""

    ok: bool
    username: str | None = None
    stale: bool = False
    """The nonce was ours but expired: challenge again with ``stale=true`` (RFC 7616 §3.3)."""
    reason: str = ""
    next_nonce: str | None = None
    """A fresh nonce for the client's next requests, when this one nears its expiry (RFC 7616
    §3.5): the ``nextnonce`` of the response's Authentication-Info."""

    @property
    def authentication_info(self) -> str | None:
        """The Authentication-Info value for the 2xx answer (RFC 7616 §3.5), when there is a
        next nonce to offer."""
        return None if self.next_nonce is None else f"nextnonce={quote(self.next_nonce)}"

    @property
    def wrong_answer(self) -> bool:
        """A wrong response to a nonce we issued to this very source: the only verdict that
        says someone there guessed (a forged or replayed nonce proves nothing about them)."""
        return self.reason == WRONG_CREDENTIALS


_NO_CREDENTIALS = Verdict(ok=False, reason="no credentials for this realm")
"""The verdict on a request without credentials for the realm (most first requests): one
object for all, as verdicts are immutable."""
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")  # nc-value = 8LHEX (RFC 7616 §3.4), any case
WRONG_CREDENTIALS = "wrong credentials"
NOT_OURS = "nonce not ours"


class DigestServer:
    """Issues and checks Digest challenges for one realm (RFC 7616 §3.3, §3.4, §5).

    Nonces are ``base64(issued_at | random | HMAC(secret, issued_at | random | realm | source))``:
    no state is kept per challenge, only the highest nonce count seen per nonce in use (replay
    guard). ``source`` is the address the challenge went to; a nonce answered from another
    address is not ours (RFC 7616 §5.5 lets the server bind a nonce to the client's address),
    so a forged answer from a spoofed address cannot pass for a guess made there.

    Pre-authorization (RFC 7616 §3.4, RFC 2617 §3.2.2): a client may send its next request
    with the nonce it last used and the nonce count raised; it is accepted while the nonce is
    fresh, from the address it was issued to, with a count strictly above the highest seen for
    that nonce. The counts are kept for at most ``NC_TRACKED`` nonces, each until it expires; a
    nonce issued no later than the newest one forgotten is stale unless its count is known.
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
        self._seen_nc: OrderedDict[str, tuple[int, float, str]] = OrderedDict()
        """nonce -> (highest nonce count, issue time, the source it was issued to), least
        recently used first."""
        self._forgotten = float("-inf")
        """The latest issue time of a nonce whose count was dropped: an unknown count of a
        nonce issued no later than this may have been forgotten, so it is not trusted."""
        self._next_sweep = float("-inf")
        self.verdicts: Counter[str] = Counter()
        """Right answers by outcome (``VERDICTS``), for /metrics."""
        self.next_nonces = 0
        """Authentication-Info nextnonce values offered, for /metrics."""

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
        return _NO_CREDENTIALS

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
        known = self._seen_nc.get(nonce)
        # a nonce whose count is kept was checked when first answered: from the same source
        # its MAC needs no second look
        if known is not None and known[2] == source:
            issued: float | None = known[1]
        else:
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
        if qop and (len(nc_text) != 8 or not _HEX_DIGITS.issuperset(nc_text)):
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
            self.verdicts["stale"] += 1
            return Verdict(ok=False, username=username, stale=True, reason="nonce expired")
        reused = False
        if qop:
            nc = int(nc_text, 16)
            last = known
            if last is None and issued <= self._forgotten:
                self.verdicts["stale"] += 1
                return Verdict(ok=False, username=username, stale=True, reason="nonce forgotten")
            if last is not None and nc <= last[0]:
                self.verdicts["replayed"] += 1
                return Verdict(ok=False, username=username, reason="nonce count replayed")
            reused = last is not None
            self._seen_nc[nonce] = (nc, issued, source)
            self._seen_nc.move_to_end(nonce)
            self._prune(now)
        self.verdicts["preauthorized" if reused else "accepted"] += 1
        return Verdict(ok=True, username=username, next_nonce=self._next(issued, now, source))

    def _next(self, issued: float, now: float, source: str) -> str | None:
        """A fresh nonce for ``source`` once less than ``NEXTNONCE_LEAD`` of the nonce's
        lifetime is left (RFC 7616 §3.5)."""
        if issued + self.nonce_lifetime - now >= self.nonce_lifetime * NEXTNONCE_LEAD:
            return None
        self.next_nonces += 1
        return self._new_nonce(now, source)

    def _new_nonce(self, now: float, source: str) -> str:
        body = struct.pack(">d", now) + secrets.token_bytes(12)
        return base64.urlsafe_b64encode(body + self._mac(body, source)).decode().rstrip("=")

    def _mac(self, body: bytes, source: str) -> bytes:
        signed = body + self.realm.encode() + b"\0" + source.encode()
        return hmac.digest(self._secret, signed, hashlib.sha256)[:16]

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
        """Drop the counts of expired nonces (once per lifetime, or when over the cap); over
        the cap, then the least recently used down to three quarters of it (so the sweep runs
        once per ``NC_TRACKED // 4`` new nonces at most); remember the latest issue time
        dropped."""
        seen = self._seen_nc
        over = len(seen) > NC_TRACKED
        if not over and now < self._next_sweep:
            return
        self._next_sweep = now + self.nonce_lifetime
        horizon = now - self.nonce_lifetime
        for nonce in [n for n, (_, issued, _) in seen.items() if issued < horizon]:
            self._forget(nonce)
        keep = NC_TRACKED - NC_TRACKED // 4 if over else NC_TRACKED
        while len(seen) > keep:
            self._forget(next(iter(seen)))

    def _forget(self, nonce: str) -> None:
        _, issued, _ = self._seen_nc.pop(nonce)
        self._forgotten = max(self._forgotten, issued)

    @property
    def tracked(self) -> int:
        """Nonces whose count is remembered now."""
        return len(self._seen_nc)
