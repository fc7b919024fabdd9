"""The client side of HTTP Digest for SIP (RFC 3261 §22.2, §22.3; RFC 7616 §3.4): answers
401/407 challenges for one set of credentials, and decides - sans-IO - whether a challenged
request is worth one more try."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.sip.challenge import Challenge, compute_response, strength, supported
from bot.sip.errors import SipParseError
from bot.sip.grammar import quote
from bot.sip.message import Request, Response

MAX_CHAINS = 256
"""Retries remembered at once (each until its answer comes back challenged, or it is pushed out)."""


@dataclass(slots=True)
class DigestClient:
    """Answers Digest challenges for one user (RFC 3261 §22.2, §22.3)."""

    username: str
    password: str
    cnonce: Callable[[], str] = field(default=lambda: secrets.token_hex(8))
    _nc: dict[str, int] = field(default_factory=dict)
    _last: dict[tuple[str, bool], Challenge] = field(default_factory=dict)
    _answers: dict[tuple[str, int], int] = field(default_factory=dict)
    """(Call-ID, CSeq) of each retry we built -> how many challenges its chain has answered."""

    def retry(self, request: Request, response: Response) -> Request | None:
        """The request to send after ``response`` answered ``request``: a copy with CSeq + 1
        (RFC 3261 §22.2, §8.1.3.5) and credentials for every realm challenged, or None when
        there is nothing (more) to try. A fresh challenge is answered once; a second challenge
        to that answer means the credentials are wrong - unless the server says only the nonce
        was stale (``stale=true``, RFC 7616 §3.3), which earns one more try. A pre-authorized
        first request refused with a challenge is not yet an answer: it gets its try."""
        if response.status not in (401, 407):
            return None
        try:
            key = (request.call_id, request.cseq.seq)
        except SipParseError:
            return None
        answered = self._answers.pop(key, 0)
        if answered >= 2 or (answered == 1 and not self.is_stale(response)):
            return None
        retry = request.copy()
        retry.headers.set("CSeq", f"{key[1] + 1} {request.method}")
        if not self.authorize(retry, response):
            return None
        self._answers[(key[0], key[1] + 1)] = answered + 1
        while len(self._answers) > MAX_CHAINS:  # chains answered with no challenge again
            self._answers.pop(next(iter(self._answers)))
        return retry

    def authorize(self, request: Request, response: Response) -> bool:
        """Add credentials to ``request`` (the retry, with its CSeq already raised) for every
        realm challenged in ``response``; False when none of its challenges can be answered.
        Whether retrying makes sense at all is :meth:`retry`'s call."""
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
                if current is None or strength(challenge.algorithm) > strength(current.algorithm):
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
