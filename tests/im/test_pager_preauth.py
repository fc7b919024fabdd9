"""Issue 19 item 2, through the bot in this process: the 200 to a pager MESSAGE (and to a
REGISTER) carries the next nonce when the one used nears its expiry (RFC 7616 §3.5), and a
MESSAGE pre-authorized with it - nonce count 1, no challenge round - is answered 200 and
replied to."""

from __future__ import annotations

import asyncio

import pytest

from bot.runtime import Runtime
from bot.sip import digest_server
from bot.sip.challenge import compute_response, parse_auth_params
from bot.sip.message import Request
from tests.im.test_pager_content import Alice, alice, next_message, runtime  # noqa: F401 (fixtures)

USER = "alice"
PASSWORD = "alice-demo"


def pre_authorized(user: Alice, realm: str, nonce: str) -> Request:
    """A MESSAGE with credentials for ``nonce``, count 1, computed as a client does."""
    message = user._request("MESSAGE", "sip:bot@example.test")
    message.headers.add("Content-Type", "text/plain")
    message.body = b"help"
    uri = str(message.uri)
    response = compute_response(algorithm="MD5", username=USER, realm=realm, password=PASSWORD,
                                method="MESSAGE", uri=uri, nonce=nonce, nc="00000001",
                                cnonce="0a4f113b", qop="auth")  # fmt: skip
    message.headers.add(
        "Authorization",
        f'Digest username="{USER}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"',
    )
    return message


async def test_the_pager_200_offers_the_next_nonce_which_then_passes_unchallenged(
    runtime: Runtime,  # noqa: F811 (the fixture)
    alice: tuple[Alice, asyncio.Queue[Request]],  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, inbox = alice
    assert runtime.registrar is not None
    digest = runtime.registrar.gate.digest
    # every nonce "nears expiry", also one issued within the same tick of the loop's clock
    # (uvloop's is in milliseconds: at 1.0 a nonce no older than that was not offered again)
    monkeypatch.setattr(digest_server, "NEXTNONCE_LEAD", 2.0)
    answered = await user.say("text/plain", b"help")  # pre-authorized with the REGISTER's nonce
    assert answered.status == 200
    _, info = parse_auth_params("Digest " + (answered.headers.get("authentication-info") or ""))
    assert "nextnonce" in info, answered.headers
    assert b"Commands:" in (await next_message(inbox)).body

    before = dict(digest.verdicts)
    response = await user.endpoint.request(
        pre_authorized(user, digest.realm, info["nextnonce"]), destination=user.bot
    )
    assert response.status == 200  # sent without credentials to retry with: no 401 came
    assert (response.headers.get("authentication-info") or "").startswith("nextnonce=")
    assert b"Commands:" in (await next_message(inbox)).body
    assert digest.verdicts["accepted"] == before.get("accepted", 0) + 1  # a fresh nonce, once

    # the registrar's 200 offers it too (a REGISTER refresh, pre-authorized)
    refresh = user._request("REGISTER", "sip:example.test")
    refresh.headers.set("To", "<sip:alice@example.test>")
    registered = await user.endpoint.request(
        refresh, destination=user.bot, credentials=user.credentials
    )
    assert registered.status == 200
    assert (registered.headers.get("authentication-info") or "").startswith("nextnonce=")
