"""Requests handed to the application: the Route entries naming us taken off
(:func:`consume_own_routes`), the means to answer (:class:`ServerRequest`), the application's
handler run on it (:class:`HandlerRunner`). Which handler gets which request is the
application's decision (bot.runtime)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from bot.sip.errors import ProtocolStateError, SipParseError
from bot.sip.headers import Address
from bot.sip.layer import TransactionLayer
from bot.sip.message import Request, Response, make_response
from bot.sip.transaction import Peer, ServerTransaction
from bot.sip.uri import SipUri

log = logging.getLogger(__name__)


class Answerer(Protocol):
    """What answering needs of the endpoint."""

    layer: TransactionLayer

    def respond(self, transaction: ServerTransaction, response: Response) -> None: ...

    def flush(self) -> None: ...


class ServerRequest:
    """A request handed to the application, with the means to answer it."""

    __slots__ = ("request", "transaction", "peer", "_endpoint")

    def __init__(self, request: Request, transaction: ServerTransaction, endpoint: Answerer):
        self.request = request
        self.transaction = transaction
        self.peer: Peer = transaction.peer
        """Where the request came from (its transaction's peer)."""
        self._endpoint = endpoint

    def respond(self, response: Response | int, reason: str | None = None) -> Response:
        if isinstance(response, int):
            response = make_response(self.request, response, reason)
        self._endpoint.respond(self.transaction, response)
        return response

    def respond_stateless(self, response: Response) -> None:
        """Answer without keeping the transaction (RFC 3261 §8.2.7): see
        TransactionLayer.respond_stateless."""
        self._endpoint.layer.respond_stateless(self.transaction, response)
        self._endpoint.flush()

    def respond_after(self, delay: float, response: Response) -> None:
        """Answer in ``delay`` seconds; the transaction absorbs retransmissions meanwhile."""
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._endpoint.respond, self.transaction, response)


Handler = Callable[[ServerRequest], "Response | None | Awaitable[Response | None]"]


class HandlerRunner:
    """Runs a handler on each request: its response is sent, an awaitable one from a task; a
    handler that raises answers 500 (RFC 3261 §21.5.1) - nothing a remote sends escapes."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def run(self, handler: Handler, incoming: ServerRequest) -> None:
        request = incoming.request
        try:
            result = handler(incoming)
        except Exception:
            log.exception(
                "sip.handler.failed method=%s call_id=%s", request.method, request.call_id
            )
            incoming.respond(make_response(request, 500))
            return
        if result is None:
            return
        if isinstance(result, Response):
            incoming.respond(result)
            return
        task = asyncio.ensure_future(self._finish(incoming, result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        """Stop every handler still running (the endpoint closes)."""
        for task in list(self._tasks):
            task.cancel()

    async def _finish(self, incoming: ServerRequest, result: Awaitable[Response | None]) -> None:
        request = incoming.request
        try:
            response = await result
        except Exception:
            log.exception(
                "sip.handler.failed method=%s call_id=%s", request.method, request.call_id
            )
            response = make_response(request, 500)
        if response is None:
            return
        try:
            incoming.respond(response)
        except ProtocolStateError:  # e.g. the handler had answered already: ours, not the peer's
            log.exception(
                "sip.handler.answer_refused method=%s call_id=%s status=%d",
                request.method,
                request.call_id,
                response.status,
            )


def consume_own_routes(request: Request, ours: Iterable[tuple[str, int]]) -> None:
    """RFC 3261 §16.4: a Route entry naming us (one of ``ours``, the addresses we listen on) is
    ours to remove (Linphone puts its outbound proxy - the bot - there); what stays is the
    application's to judge."""
    mine = {(host.strip("[]"), port) for host, port in ours}
    while (top := request.headers.first_value("route")) is not None:
        try:
            uri = Address.parse(top).uri
        except SipParseError:
            return
        if not isinstance(uri, SipUri) or (uri.host.strip("[]"), uri.port or 5060) not in mine:
            return
        request.headers.remove_first("route")
