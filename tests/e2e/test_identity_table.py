"""Issue 16 step 0 (issue 15 identity table): who a request to ``sipbot run`` is from, by mode ×
source × P-Asserted-Identity form × From, seen only from outside.

Requests are raw bytes (``bench/flood.py``), digest answers computed there from RFC 7616; the
bot's replies are caught by UDP sockets standing for the user (embedded mode: the reply goes to
the request's Contact over its flow) or for the proxy (external mode: to the user's address-of-
record via ``registrar.server``). alice organises "Weekly sync", bob "Design review" (the demo
data): a reply says whose conferences the bot believed it was asked for.

- embedded: the digest-authenticated user (here always alice), whatever From, P-Asserted-Identity
  or source say (RFC 3261 §22.4);
- external with trusted proxy 127.0.0.1: from the proxy, the P-Asserted-Identity's sip URI
  (RFC 3325 §9.1, a display name with a comma included, a second tel value allowed); none or an
  unreadable one is 403 and never falls back to From; from any other address, 403.

Each (mode, source) runs one bot and all ten (P-Asserted-Identity, From) rows against it, and
compares the whole table at once, so a failure shows every wrong row.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from bench.flood import Client, Digest, request, tag
from tests.e2e.conftest import RunningBot, StartBot

URI = "sip:bot@example.test"
TRUSTED, OTHER = "127.0.0.1", "127.0.0.2"
IDENTITIES = {
    "none": None,
    "name-addr": "<sip:bob@example.test>",
    "quoted-comma": '"Doe, John" <sip:bob@example.test>',
    "garbage": "<<sip:bob@@ %%",
    "sip-and-tel": "<sip:bob@example.test>, <tel:+15551234567>",
}
OWNERS = {b"Weekly sync": "alice", b"Design review": "bob"}
Row = tuple[int, str | None]
"""The final status, and whose conferences came back (None: no reply at all)."""


def expected(mode: str, source: str, identity: str) -> Row:
    if mode == "embedded":
        return 200, "alice"  # the digest user, never From or P-Asserted-Identity
    if source != TRUSTED or IDENTITIES[identity] is None or identity == "garbage":
        return 403, None
    return 200, "bob"


class Inbox(Client):
    """``bench.flood.Client`` that also keeps the MESSAGEs the bot sends it (its replies)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[bytes] = []

    def _answer_request(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"MESSAGE "):
            self.messages.append(data)
            self._changed.set()
        super()._answer_request(data, addr)

    async def next_message(self, seen: int) -> bytes:
        """The first MESSAGE after the ``seen`` first ones (10 s at most)."""
        assert await self.until(lambda: len(self.messages) > seen, 10), "no reply came"
        return self.messages[seen]


async def commands_logged(bot: RunningBot, at_least: int) -> int:
    """How many commands the bot logged as answered, once ``at_least`` are (a command's log
    line may follow its reply on the wire)."""
    after = 0
    for _ in range(at_least):
        line = await bot.event("im.command.answered", after=after)
        after = bot.lines.index(line, after) + 1
    return sum(1 for line in bot.lines if line.get("event") == "im.command.answered")


async def open_inbox(host: str) -> Inbox:
    _, inbox = await asyncio.get_running_loop().create_datagram_endpoint(
        Inbox, local_addr=(host, 0)
    )
    return inbox


def owner(message: bytes) -> str:
    found = {who for title, who in OWNERS.items() if title in message}
    assert len(found) == 1, message
    (who,) = found
    to = re.search(rb"^(?:To|t)\s*:.*<sip:(\w+)@", message, re.M | re.I)
    assert to is not None and to.group(1).decode() == who, message  # sent to that user
    return who


async def ask(client: Client, bot: RunningBot, *, sender: str, identity: str | None) -> int:
    """``sender`` (the From) says "my meetings", with ``identity`` as P-Asserted-Identity; in
    embedded mode the challenge is answered as alice. The final status."""
    call_id = tag()
    extra = f"P-Asserted-Identity: {identity}\r\n" if identity is not None else ""
    target = ("127.0.0.1", bot.port)

    def message(cseq: int, headers: str) -> bytes:
        return request(
            "MESSAGE", URI, local=client.local, user=sender, call_id=call_id, cseq=cseq,
            headers=headers + "Content-Type: text/plain\r\n", body=b"my meetings",
        )  # fmt: skip

    response = await client.exchange(message(1, extra), call_id, target)
    if response.startswith(b"SIP/2.0 401 "):
        digest = Digest.from_challenge(response, "alice", "alice-demo")
        answer = digest.header("MESSAGE", URI)
        response = await client.exchange(message(2, extra + answer), call_id, target)
    return int(response[8:11])


@pytest.mark.parametrize("source", [TRUSTED, OTHER], ids=["trusted-address", "other-address"])
@pytest.mark.parametrize("mode", ["embedded", "external"])
async def test_identity_table(start_bot: StartBot, mode: str, source: str) -> None:
    plenty = {"rate_limit": {"rate": 100.0, "burst": 100}, "loop_breaker": {"max_replies": 100}}
    proxy = await open_inbox(TRUSTED)
    user = await open_inbox(source)
    try:
        if mode == "embedded":
            bot = await start_bot(im=plenty)
            inbox = user
        else:
            bot = await start_bot(
                im=plenty,
                sip={"mode": "external", "trusted_proxies": [TRUSTED]},
                registrar={"server": f"sip:127.0.0.1:{proxy.local[1]}"},
            )
            await bot.event("registration.succeeded")
            inbox = proxy
        # the requests come from `user` (bound to `source`); the proxy's socket, also on
        # 127.0.0.1, only stands for where the bot's own requests go
        got: dict[tuple[str, str], Row] = {}
        want: dict[tuple[str, str], Row] = {}
        for identity, value in IDENTITIES.items():
            for sender in ("alice", "bob"):
                seen = len(inbox.messages)
                status = await ask(user, bot, sender=sender, identity=value)
                whose: str | None = None
                if status == 200:  # its reply: the next MESSAGE to the inbox
                    whose = owner(await inbox.next_message(seen))
                got[identity, sender] = status, whose
                want[identity, sender] = expected(mode, source, identity)
        assert got == want
        # a last request that is believed (alice's), answered after all the others: once its
        # reply is in, every earlier transaction is long over, and the inbox holds exactly one
        # reply per accepted request and the log one command each
        marker = proxy if mode == "external" else user
        seen = len(inbox.messages)
        alice = "<sip:alice@example.test>"
        assert await ask(marker, bot, sender="alice", identity=alice) == 200
        assert owner(await inbox.next_message(seen)) == "alice"
        replies = sum(1 for status, _ in want.values() if status == 200) + 1
        assert len(inbox.messages) == replies, inbox.messages
        assert await commands_logged(bot, replies) == replies
    finally:
        for client in (proxy, user):
            if client.transport is not None:
                client.transport.close()
