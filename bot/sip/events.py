"""What the transaction layer tells the transaction user (RFC 3261 §17: the TU)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.sip.headers import slot_setters
from bot.sip.message import Request, Response
from bot.sip.transaction import ClientTransaction, Peer, ServerTransaction


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new request passed validation; answer it with ``TransactionLayer.respond``."""

    request: Request
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """An ACK for a 2xx (RFC 3261 §13.3.1.4, §17.1.1.3): it belongs to the dialog, not to the
    INVITE transaction. ``transaction`` is the accepted INVITE it acknowledges, if still known."""

    request: Request
    peer: Peer
    transaction: ServerTransaction | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReceived:
    """A CANCEL matched a pending INVITE (RFC 3261 §9.2); the layer already answered the CANCEL
    with 200 and the INVITE with 487."""

    request: Request
    """The CANCEL."""
    invite: Request
    """The INVITE it cancelled."""
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response to one of our requests. ``transaction`` is None for a 2xx to an INVITE whose
    transaction is gone (a late retransmission or another fork, RFC 6026 §7.2)."""

    response: Response
    transaction: ClientTransaction | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """Timer B or F fired (no final response: the TU sees a 408, RFC 3261 §8.1.3.1), or Timer H
    or L fired on a server transaction (no ACK for our final response, §13.3.1.4)."""

    transaction: ClientTransaction | ServerTransaction


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed:
    """The transport could not deliver for this transaction (RFC 3261 §17.1.4, §17.2.4)."""

    transaction: ClientTransaction | ServerTransaction
    reason: str


_new = object.__new__
_set_request, _set_request_transaction = slot_setters(RequestReceived, "request", "transaction")
_set_response, _set_response_transaction = slot_setters(ResponseReceived, "response", "transaction")


# The layer makes one of these two per message it hands up (thousands a second): made with the
# slots' own setters, every field set (slot_setters checks the names are all the fields), at
# half the cost of a frozen dataclass's __init__, which sets each through object.__setattr__.
def request_received(request: Request, transaction: ServerTransaction) -> RequestReceived:
    """``RequestReceived(request=request, transaction=transaction)``."""
    event = _new(RequestReceived)
    _set_request(event, request)
    _set_request_transaction(event, transaction)
    return event


def response_received(
    response: Response, transaction: ClientTransaction | None
) -> ResponseReceived:
    """``ResponseReceived(response=response, transaction=transaction)``."""
    event = _new(ResponseReceived)
    _set_response(event, response)
    _set_response_transaction(event, transaction)
    return event


Event = (
    RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | TransactionTimedOut
    | TransportFailed
)
