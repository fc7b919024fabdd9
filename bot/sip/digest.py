"""HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760, RFC 2617): the one
import path for both sides.

Client: :class:`DigestClient` (bot.sip.digest_client) answers 401/407 challenges for one set of
credentials and decides whether a challenged request gets another try.
Server: :class:`DigestServer` (bot.sip.digest_server) issues HMAC-signed nonces and verifies
answers, refusing replays.
"""

from bot.sip.challenge import Challenge, compute_response, parse_auth_params, supported
from bot.sip.digest_client import DigestClient
from bot.sip.digest_server import NOT_OURS, WRONG_CREDENTIALS, DigestServer, Verdict

__all__ = [
    "NOT_OURS",
    "WRONG_CREDENTIALS",
    "Challenge",
    "DigestClient",
    "DigestServer",
    "Verdict",
    "compute_response",
    "parse_auth_params",
    "supported",
]
