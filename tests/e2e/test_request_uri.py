"""A request for someone else is not a command for the bot (RFC 3261 §8.2.2.1: a Request-URI
the UAS does not accept requests for gets 404). Seen with baresip, whose generated contacts
sent ``/message`` to ``sip:user@domain`` through the bot - and the bot answered it."""

from __future__ import annotations

import pytest

from bench.flood import open_client, request, tag
from tests.e2e.conftest import StartBot


@pytest.mark.parametrize(
    ("uri", "status"),
    [
        ("sip:alice@example.test", 404),
        ("sip:echo@creytiv.com", 404),
        ("sip:bot@example.test", 401),  # ours: on to the identity gate
        ("sip:127.0.0.1", 401),
        ("sip:10.1.2.3", 404),
    ],
)
async def test_only_requests_for_the_bot_are_taken(
    start_bot: StartBot, uri: str, status: int
) -> None:
    bot = await start_bot()
    client = await open_client()
    try:
        call_id = tag()
        sent = request(
            "MESSAGE",
            uri,
            local=client.local,
            call_id=call_id,
            headers="Content-Type: text/plain\r\n",
            body=b"help",
        )
        answer = await client.exchange(sent, call_id, ("127.0.0.1", bot.port))
        assert answer.startswith(f"SIP/2.0 {status} ".encode()), answer[:80]
    finally:
        assert client.transport is not None
        client.transport.close()
