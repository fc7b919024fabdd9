"""Answering ICE connectivity checks on our host candidate, sans-IO: a STUN Binding request
with short-term credentials (RFC 8445 §7.3, RFC 5389 §10.1) gets a success response carrying
XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT. Enough for an ICE-lite-like peer role:
we never send checks ourselves."""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field

from aioice import stun


def is_stun(data: bytes) -> bool:
    """RFC 7983 §7: a first octet of 0-3 is STUN; RFC 5389 §6: the magic cookie follows."""
    return len(data) >= stun.HEADER_LENGTH and data[0] < 4 and data[4:8] == b"\x21\x12\xa4\x42"


@dataclass(frozen=True, slots=True)
class IceCredentials:
    """Our ice-ufrag and ice-pwd (RFC 8445 §5.3: at least 24 and 128 bits of randomness; hex
    digits are ice-chars, RFC 8839 §5.4)."""

    ufrag: str = field(default_factory=lambda: secrets.token_hex(4))
    pwd: str = field(default_factory=lambda: secrets.token_hex(16))

    def answer(self, data: bytes, source: tuple[str, int]) -> bytes | None:
        """The response to a Binding request in ``data`` from ``source``; None for anything
        else (responses, indications, garbage: nothing is answered that is not asked)."""
        try:
            request = stun.parse_message(data)
        except (ValueError, struct.error):  # aioice: truncated attributes raise struct.error
            return None
        if request.message_method != stun.Method.BINDING:
            return None
        if request.message_class != stun.Class.REQUEST:
            return None
        username = request.attributes.get("USERNAME")
        if username is None or "MESSAGE-INTEGRITY" not in request.attributes:
            return self._error(request, 400, "Bad Request")  # RFC 5389 §10.1.2
        # RFC 8445 §7.3: USERNAME is "our-ufrag:their-ufrag", integrity keyed with our pwd
        if not (
            str(username).startswith(f"{self.ufrag}:")
            and request.check_message_integrity(self.pwd.encode())
        ):
            return self._error(request, 401, "Unauthorized")
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=request.transaction_id,
        )
        response.attributes["XOR-MAPPED-ADDRESS"] = (source[0], source[1])
        response.add_message_integrity(self.pwd.encode())
        response.add_fingerprint()
        return bytes(response)

    @staticmethod
    def _error(request: stun.Message, code: int, reason: str) -> bytes:
        # RFC 5389 §10.1.2: the error responses carry no MESSAGE-INTEGRITY
        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.ERROR,
            transaction_id=request.transaction_id,
        )
        response.attributes["ERROR-CODE"] = (code, reason)
        response.add_fingerprint()
        return bytes(response)
