"""In-dialog requests for the dialogs the bot originates (calls, subscriptions), handed to the
dialog's owner (RFC 3261 §12.2.2) - after the identity gate's dialog-flow decision
(bot.services.identity), as requests inside IM sessions are."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from bot.sender import Sender
from bot.services.identity import Identified, IdentityGate, Refused
from bot.sip.dialog import DialogId
from bot.sip.errors import SipParseError
from bot.sip.message import Response
from bot.sip.transaction import Peer
from bot.transport.endpoint import ServerRequest

log = structlog.get_logger("bot.calls")
DialogHandler = Callable[[ServerRequest], "Response | None"]
"""Answers one in-dialog request: the response, or None when it answered (or will) itself."""


class NotMine:
    """The request names no dialog of the router's: the runtime routes it on (IM sessions)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_MINE"


NOT_MINE = NotMine()


@dataclass(frozen=True, slots=True)
class _Entry:
    handler: DialogHandler
    flows: frozenset[Peer]
    """Where the dialog's requests are believed from (the peers the dialog's first request
    went to); empty: the owner checks for itself."""
    remote: Identified | None
    """Who the dialog is with, as the identity gate answers for its requests on ``flows``."""


def _entry(handler: DialogHandler, flows: frozenset[Peer], remote: Sender | None) -> _Entry:
    return _Entry(handler, flows, Identified(remote) if remote is not None else None)


class DialogRouter:
    def __init__(self, gate: IdentityGate | None = None):
        self.gate = gate
        self._dialogs: dict[DialogId, _Entry] = {}
        self._pending: dict[tuple[str, str], _Entry] = {}

    def __len__(self) -> int:
        return len(self._dialogs) + len(self._pending)

    def add(
        self,
        dialog_id: DialogId,
        handler: DialogHandler,
        *,
        flows: frozenset[Peer] = frozenset(),
        remote: Sender | None = None,
    ) -> None:
        """Requests of dialog (Call-ID, our tag, their tag) go to ``handler``; with ``flows``
        only from there (or a trusted proxy), else identified like new ones as ``remote``."""
        self._dialogs[dialog_id] = _entry(handler, flows, remote)

    def add_pending(
        self,
        call_id: str,
        local_tag: str,
        handler: DialogHandler,
        *,
        flows: frozenset[Peer] = frozenset(),
        remote: Sender | None = None,
    ) -> None:
        """Requests naming our tag before the dialog exists: a NOTIFY that beats the
        SUBSCRIBE's 2xx (RFC 6665 §4.1.2.4); ``flows`` and ``remote`` as for :meth:`add`."""
        self._pending[(call_id, local_tag)] = _entry(handler, flows, remote)

    def remove(self, dialog_id: DialogId | None = None, *, pending: tuple[str, str] | None = None
               ) -> None:  # fmt: skip
        """Forget a dialog (by id) or a pending one (by Call-ID and local tag)."""
        if dialog_id is not None:
            self._dialogs.pop(dialog_id, None)
        if pending is not None:
            self._pending.pop(pending, None)

    def route(self, incoming: ServerRequest) -> Response | None | NotMine:
        """Hand ``incoming`` to its dialog's owner; NOT_MINE when no dialog here matches."""
        if not self._dialogs and not self._pending:
            return NOT_MINE  # the bot has no dialog of its own (no call): nothing to look up
        request = incoming.request
        try:
            key = (request.call_id, request.to.tag or "", request.from_.tag or "")
        except SipParseError:
            return NOT_MINE
        entry = self._dialogs.get(key) or self._pending.get(key[:2])
        if entry is None:
            return NOT_MINE
        if not entry.flows or entry.remote is None or self.gate is None:
            return entry.handler(incoming)
        peer = incoming.peer
        flow = peer if peer in entry.flows else next(iter(entry.flows))
        loop = asyncio.get_running_loop()
        who = self.gate.in_dialog(incoming, entry.remote, flow, loop.time())
        if isinstance(who, Refused):
            log.info("calls.request_refused", method=request.method, call_id=request.call_id,
                     peer=f"{peer.host}:{peer.port}", status=who.response.status)  # fmt: skip
            who.send(incoming)
            return None
        if who.hold <= 0:
            return entry.handler(incoming)

        def later() -> None:  # the per-user pace of the gate (bot.services.guard)
            response = entry.handler(incoming)
            if response is not None:
                incoming.respond(response)

        loop.call_later(who.hold, later)
        return None
