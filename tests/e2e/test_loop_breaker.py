"""Two ``sipbot run`` processes messaging each other through one relay. Their replies carry
Auto-Submitted, so neither answers the other; and when something on the path strips that marker
(many gateways drop headers they do not know), a bot's circuit breaker ends the loop within its
limit.

The relay is a raw UDP socket (``bench.flood.Client``: it answers 200 to everything, the bots'
REGISTERs included) that forwards each MESSAGE to the bot of its To domain. That a loop is over
is read from the bot's decision not to answer (its log line), taken when the last message came
in: no quiet period decides it.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest

from bench.flood import Client, request

from .conftest import RunningBot, StartBot

LIMIT = 5
COMPACT = {"t": "to", "f": "from", "c": "content-type"}
"""RFC 3261 §7.3.3 compact header names."""
_HEAD = re.compile(rb"^([\w-]+)[ \t]*:[ \t]*(.*?)\r?$", re.M)


class Relay(Client):
    """The outbound proxy of both bots: forwards each MESSAGE as a new request to the bot of its
    To domain, without Auto-Submitted when ``strip`` (as a careless gateway would)."""

    def __init__(self, strip: bool) -> None:
        super().__init__()
        self.strip = strip
        self.bots: dict[str, int] = {}
        self.forwarded: Counter[str] = Counter()

    def _answer_request(self, data: bytes, addr: tuple[str, int]) -> None:
        super()._answer_request(data, addr)
        if not data.startswith(b"MESSAGE "):
            return
        head, _, body = data.partition(b"\r\n\r\n")
        fields = {
            COMPACT.get(name.decode().lower(), name.decode().lower()): value.decode()
            for name, value in _HEAD.findall(head)
        }
        to = re.search(r"@([\w.]+)", fields["to"])
        sender = re.search(r"<(sip:[^>]+)>", fields["from"])
        assert to is not None and sender is not None, head
        domain = to.group(1)
        extra = f"Content-Type: {fields['content-type']}\r\n"
        if "auto-submitted" in fields and not self.strip:
            extra += f"Auto-Submitted: {fields['auto-submitted']}\r\n"
        self.forward(domain, sender.group(1), extra, body)

    def forward(self, domain: str, sender: str, headers: str, body: bytes) -> None:
        user, _, host = sender.removeprefix("sip:").partition("@")
        copy = request(
            "MESSAGE", f"sip:bot@{domain}", local=self.local, user=user, to=f"<sip:bot@{domain}>",
            headers=headers, body=body,
        )  # fmt: skip
        # bench.flood writes the From in example.test: the sender's own domain instead
        copy = copy.replace(b"@example.test>;tag=", f"@{host}>;tag=".encode(), 1)
        self.forwarded[domain] += 1
        self.send(copy, ("127.0.0.1", self.bots[domain]))


async def two_bots(start_bot: StartBot, relay: Relay, tmp_path: Path) -> dict[str, RunningBot]:
    bots: dict[str, RunningBot] = {}
    for domain in ("a.test", "b.test"):
        bots[domain] = await start_bot(
            sip={"mode": "external", "domain": domain},
            registrar={"server": f"sip:127.0.0.1:{relay.local[1]}", "username": "bot"},
            acl={"allowed_domains": ["a.test", "b.test"]},
            im={"loop_breaker": {"max_replies": LIMIT, "window": 60}},
            conferences={
                "demo_data": False,
                "database_url": f"sqlite+aiosqlite:///{tmp_path / domain}.db",
            },
        )
        relay.bots[domain] = bots[domain].port
    return bots


@pytest.mark.parametrize("strip", [False, True], ids=["marker-kept", "marker-stripped"])
async def test_two_sipbots_never_loop(start_bot: StartBot, tmp_path: Path, strip: bool) -> None:
    loop = asyncio.get_running_loop()
    _, relay = await loop.create_datagram_endpoint(
        lambda: Relay(strip), local_addr=("127.0.0.1", 0)
    )
    bots: dict[str, RunningBot] = {}
    try:
        bots.update(await two_bots(start_bot, relay, tmp_path))
        # someone makes bot A talk to bot B: a MESSAGE to A that says it is from B
        relay.forward("a.test", "sip:bot@b.test", "Content-Type: text/plain\r\n", b"hello")
        if not strip:
            # B read A's reply, saw the marker and decided not to answer: the end
            await bots["b.test"].event("im.not_answered", sender="bot@a.test")
            assert relay.forwarded == {"a.test": 1, "b.test": 1}
            return
        # one of them stops replying once it has answered LIMIT times: the end
        waits = {
            asyncio.ensure_future(bot.event("im.loop_suspected", timeout=30))
            for bot in bots.values()
        }
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await done.pop()
        replies = dict(relay.forwarded)
        assert replies["a.test"] <= LIMIT + 1 and replies["b.test"] <= LIMIT, replies
        assert sum(replies.values()) >= 2 * LIMIT, replies  # it did loop until the breaker
    finally:
        for bot in bots.values():  # while the relay still answers their un-REGISTERs
            assert await bot.stop() == 0, bot.text
        assert relay.transport is not None
        relay.transport.close()
