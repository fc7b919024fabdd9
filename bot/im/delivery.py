"""Replies in pager mode (RFC 3428): each a new MESSAGE, to every contact of the user at once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import structlog

from bot.config import Config
from bot.im.loops import AUTO_SUBMITTED
from bot.im.outgoing import Payload
from bot.logs import resolved
from bot.sender import Sender
from bot.services.registrar import Registrar
from bot.sip.headers import Address
from bot.sip.message import Request, new_call_id, new_request
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri
from bot.transport.endpoint import SipEndpoint

log = structlog.get_logger("bot.im")
DELIVERY_WAIT = 32.0
"""Seconds a pager reply may take to reach one of the user's contacts (64*T1, RFC 3261
§17.1.2.2: a non-INVITE transaction's own limit), all contacts tried at once."""


@dataclass(slots=True)
class Pager:
    """A pager-mode conversation (RFC 3428): what we send goes as new MESSAGEs. One is made
    for every pager command and nothing changes it: not frozen, as a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__`` (under callgrind 5.7k
    instructions an object instead of 1.8k)."""

    sender: Sender
    request: Request
    peer: Peer


class PagerDelivery:
    def __init__(
        self, endpoint: SipEndpoint, config: Config, registrar: Registrar | None, identity: Address
    ):
        self.endpoint = endpoint
        self.config = config
        self.registrar = registrar
        self._from = str(identity)
        """The bot's own address (``identity``) as text, formatted once (it is fixed): the From
        of each reply with a fresh tag appended (bot.sip.message.new_request) - given the
        Address, every reply would make and render a tagged copy of it."""
        self._loop = asyncio.get_running_loop()
        self._log = resolved(log)
        """Where each delivery is logged (bot.logs.resolved)."""

    async def deliver(self, to: Pager, payload: Payload, what: str) -> None:
        """A pager MESSAGE to every contact of the user at once (parallel forking, RFC 3261
        §16.7), one deadline for all: the first 2xx delivers it, the rest stop being waited.
        One contact (the usual case) is simply its transaction, whose own limit (Timer F,
        64*T1, RFC 3261 §17.1.2.2) is that deadline."""
        targets = self._targets(to.sender, to.request, to.peer)
        if not targets:
            log.warning(f"im.{what}.no_target", sender=to.sender.address)
            return
        if len(targets) == 1:
            uri, peer = targets[0]
            message = self._new_message(uri, to.sender, payload)
            response = await self.endpoint.request(message, destination=peer)
            self._report(what, to.sender, uri, response.status)
            return
        tries = {
            asyncio.ensure_future(
                self.endpoint.request(self._new_message(uri, to.sender, payload), destination=peer)
            ): uri
            for uri, peer in targets
        }
        pending = set(tries)
        deadline = self._loop.time() + DELIVERY_WAIT
        try:
            while pending:
                done, pending = await asyncio.wait(
                    pending,
                    timeout=max(0.0, deadline - self._loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    log.warning(f"im.{what}.failed", sender=to.sender.address, status=408)
                    return
                for task in done:
                    if self._report(what, to.sender, tries[task], task.result().status):
                        return
        finally:
            for task in pending:
                task.cancel()

    def _targets(
        self, sender: Sender, request: Request, peer: Peer
    ) -> list[tuple[SipUri, Peer | None]]:
        """Where a pager reply goes: the sender's registered contacts (over the connection a
        TCP/TLS binding was made on, RFC 5626 §5.3); else the request's Contact over the flow
        it came on; in external mode the sender's address-of-record, via the outbound proxy."""
        out: list[tuple[SipUri, Peer | None]] = []
        if self.registrar is not None:
            for binding in self.registrar.lookup(sender.user, self._loop.time()):
                out.append((binding.uri, binding.peer if binding.peer.reliable else None))
            if out:
                return out
            contacts = request.contacts
            if contacts and isinstance(contacts[0].uri, SipUri):
                out.append((contacts[0].uri, peer))
            return out
        return [(SipUri(user=sender.user, host=sender.domain), None)]

    def _new_message(self, uri: SipUri, sender: Sender, payload: Payload) -> Request:
        return new_request(
            "MESSAGE",
            uri,
            from_=self._from,
            to=f"<{sender.uri}>",
            call_id=new_call_id(self.config.sip.domain),
            content_type=payload.content_type,
            headers=[(AUTO_SUBMITTED, "auto-replied")],  # bot.im.loops: no other bot answers this
            body=payload.body,
        )

    def _report(self, what: str, sender: Sender, target: SipUri, status: int) -> bool:
        """Log how one try went (a delivery at DEBUG - its fields made only when that level
        is on: the command's own line is the one at INFO; a failure at WARNING); True when it
        delivered."""
        if 200 <= status < 300:
            if self._log.is_enabled_for(logging.DEBUG):
                self._log.debug(f"im.{what}.delivered", sender=sender.address,
                                target=str(target), status=status)  # fmt: skip
            return True
        log.warning(f"im.{what}.failed", sender=sender.address, status=status, target=str(target))
        return False
