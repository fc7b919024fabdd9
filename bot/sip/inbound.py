"""An incoming request's top Via: the server transaction it belongs to (RFC 3261 §17.2.3), the
``received`` and ``rport`` it gets (§18.2.1, RFC 3581 §4) and where its responses go (§18.2.2).
"""

from __future__ import annotations

from bot.sip.grammar import has_param, replace_param
from bot.sip.headers import Via
from bot.sip.message import Request
from bot.sip.transaction import Peer


def server_key(request: Request, via: Via) -> tuple[object, ...]:
    """Server transaction key (RFC 3261 §17.2.3); ACK and CANCEL are keyed by their own method
    except that ACK matches its INVITE."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.rfc3261_branch
    if branch is not None:
        return ("3261", branch, via.host, via.port, method)
    # RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number and top Via
    return (
        "2543",
        str(request.uri),
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        str(via),
        method,
    )


def reply_address(via: Via, peer: Peer) -> Peer:
    """Where responses go: the connection the request came on (RFC 3261 §18.2.2), or over UDP
    the address it really came from, at the port it came from when the Via asks for rport
    (RFC 3581 §4) or else the sent-by port (§18.2.2: the ``received`` address, which is always
    the source). Never a host name: nothing is resolved to answer, and nothing the client
    wrote in its Via picks another address."""
    if peer.reliable:
        return peer
    port = peer.port if has_param(via.params, "rport") else (via.port or 5060)
    # the source itself, most often: one Peer fewer kept per transaction for Timer J
    return peer if port == peer.port else Peer(peer.transport, peer.host, port)


def apply_rport(request: Request, via: Via, peer: Peer) -> Via:
    """The top Via with ``received`` and ``rport`` written from the real source, replacing any
    value the client put there. RFC 3261 §18.2.1: ``received`` when the sent-by host is not the
    source address; RFC 3581 §4: with ``rport``, ``received`` always and ``rport`` set to the
    source port."""
    params = via.params
    rport = received = False
    for name, _ in params:  # one pass for both (a call each cost more than the loop)
        if name == "rport":
            rport = True
        elif name == "received":
            received = True
    if rport or received or via.host.strip("[]") != peer.host:
        params = replace_param(params, "received", peer.host)
    if rport:
        params = replace_param(params, "rport", str(peer.port))
    if params == via.params:
        return via
    top = Via(transport=via.transport, host=via.host, port=via.port, params=params)
    request.headers.remove_first("via")
    request.headers.prepend("Via", str(top))
    return top
