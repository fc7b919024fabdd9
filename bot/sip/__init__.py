"""The sans-IO SIP core: messages, URIs, transactions, dialogs, digest, SDP.

Nothing here touches a socket or a clock: see ``bot.transport`` for the asyncio shell.
"""

from bot.sip.errors import ProtocolStateError, SipParseError
from bot.sip.headers import Address, CSeq, Headers, Via
from bot.sip.message import Request, Response, make_response, parse_message
from bot.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri

__all__ = [
    "AbsoluteUri",
    "Address",
    "CSeq",
    "Headers",
    "ProtocolStateError",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "TelUri",
    "Uri",
    "Via",
    "make_response",
    "parse_message",
    "parse_uri",
]
