"""The server side of HTTP Digest for SIP (RFC 3261 §22.4, RFC 7616 §3.3, §3.4, §5): issues
HMAC-signed nonces and verifies answers, refusing replays."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

from bot.sip.challenge import Challenge, compute_response, parse_auth_params
from bot.sip.errors import SipParseError
from bot.sip.message import Request


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
