"""What a UAS checks before it hands a request to the application (RFC 3261 §8.2).

Each check answers with the status the RFC gives it; the first one that fails wins, in the
order of §8.2: method (§8.2.1), header fields (§8.2.2), content (§8.2.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.sip.errors import SipParseError
from bot.sip.headers import Address
from bot.sip.message import Request, Response, make_response
from bot.sip.uri import SipUri

# RFC 3261 and the extensions the bot meets: methods we know, whether or not we accept them
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
        "SERVICE",
        "BENOTIFY",
    }
)
DEFAULT_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "SUBSCRIBE",
        "NOTIFY",
        "INFO",
        "MESSAGE",
        "SERVICE",
        "BENOTIFY",
    }
)
DEFAULT_CONTENT_TYPES = frozenset(
    {
        "application/sdp",
        "text/plain",
        "text/html",
        "message/cpim",
        "message/imdn+xml",
        "multipart/alternative",
        "multipart/mixed",
        "multipart/related",
        "application/im-iscomposing+xml",
        "application/xml",
        "application/cccp+xml",
        "application/conference-info+xml",
        "application/pidf+xml",
        "message/sipfrag",
    }
)
SDP = "application/sdp"


@dataclass(frozen=True, slots=True, kw_only=True)
class UasPolicy:
    """What this user agent accepts; anything else is refused with the RFC's answer."""

    methods: frozenset[str] = DEFAULT_METHODS
    """Methods handed to the application; others get 405 (known) or 501 (unknown)."""
    extensions: frozenset[str] = field(default_factory=frozenset)
    """Option tags we support; a Require naming another gets 420 (RFC 3261 §8.2.2.3)."""
    content_types: frozenset[str] = DEFAULT_CONTENT_TYPES
    """Body media types we read; others get 415 with Accept (RFC 3261 §8.2.3)."""
    content_encodings: frozenset[str] = frozenset({"identity"})
    """Content-Encoding values we can undo; others get 415 with Accept-Encoding."""
    uri_schemes: frozenset[str] = frozenset({"sip", "sips"})
    """Request-URI schemes we serve; others get 416 (RFC 3261 §8.2.2.1)."""


def check_request(request: Request, policy: UasPolicy) -> Response | None:
    """The error response ``request`` deserves, or None when it may reach the application."""
    present = request.headers.first_values()
    try:
        _parse_all(request, present)
    except SipParseError as exc:
        return make_response(request, 400, exc.response_reason())
    if isinstance(request.uri, SipUri) and request.uri.headers:
        # RFC 3261 §19.1.1 (table): headers are not allowed in a Request-URI
        return make_response(request, 400, "Bad Request (headers in Request-URI)")
    method = request.method
    if method not in policy.methods:  # §8.2.1
        status = 405 if method in KNOWN_METHODS else 501
        response = make_response(request, status)
        response.headers.add("Allow", ", ".join(sorted(policy.methods)))
        return response
    if request.uri.scheme not in policy.uri_schemes:  # §8.2.2.1
        return make_response(request, 416)
    if method == "REGISTER" and not isinstance(request.to.uri, SipUri):
        # §10.2: the To of a REGISTER holds the address-of-record, a SIP or SIPS URI
        return make_response(request, 400, "Bad Request (To is not a SIP URI)")
    if "require" in present and method not in ("ACK", "CANCEL"):
        # §8.2.2.3: never reject ACK or CANCEL for Require
        unsupported = [
            tag for tag in request.headers.values("require") if tag and tag not in policy.extensions
        ]
        if unsupported:
            response = make_response(request, 420)
            response.headers.add("Unsupported", ", ".join(unsupported))
            return response
    if request.body:
        content_type = request.content_type
        if content_type is None or content_type not in policy.content_types:  # §8.2.3
            response = make_response(request, 415)
            response.headers.add("Accept", ", ".join(sorted(policy.content_types)))
            return response
        for encoding in request.headers.values("content-encoding"):  # none: [] at once
            if encoding and encoding.lower() not in policy.content_encodings:
                response = make_response(request, 415)
                response.headers.add("Accept-Encoding", ", ".join(sorted(policy.content_encodings)))
                return response
    if method == "INVITE" and not _accepts(request, SDP):
        # §21.4.7: we could only answer with a body the caller says it cannot take
        response = make_response(request, 406)
        response.headers.add("Warning", '399 - "Accept does not allow application/sdp"')
        return response
    return None


_PARSED = frozenset({"via", "from", "to"})
"""What the parser parses of every request it returns (Message.parse_core), unless one failed."""


def _parse_all(request: Request, present: dict[str, str]) -> None:
    """Parse every header the core relies on; a SipParseError means 400 (RFC 3261 §8.2.2).
    ``present``: the request's :meth:`Headers.first_values`."""
    headers = request.headers
    if not headers.parsed.keys() >= _PARSED:  # the parser parsed them, unless one failed
        _ = (request.vias, request.from_, request.to)
    if "contact" in present:
        _ = request.contacts
    for name in ("route", "record-route"):
        for value in headers.values(name):  # none: [] at once
            Address.parse(value)


def _accepts(request: Request, media_type: str) -> bool:
    values = request.headers.values("accept")
    if "accept" not in request.headers:
        return True
    major = media_type.split("/")[0]
    for value in values:
        offered = value.partition(";")[0].strip().lower()
        if offered in (media_type, "*/*", f"{major}/*"):
            return True
    return False
