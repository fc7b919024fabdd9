"""Issue 15, the flood test: 20,000 requests of each malformed or hostile kind at ``sipbot run``
leave it answering, with its transaction, session, connection and cache counts back at their
baseline once Timer J has passed (RFC 3261 §17.2.2: 64*T1; T1 is 50 ms here) and its resident
memory within 10 MiB of where it started.

"Where it started" is after a first flood of the same size: the transactions alive at once
(about rate x 64*T1, each ~1.7 KB) set a high-water mark that Python's allocator keeps; what
must not happen is growth from one flood to the next (a leak, or a table that input fills).

``SIPBOT_FLOOD_COUNT`` changes the 20,000 (for a quicker look by hand)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable

import pytest

from bench.common import rss_mib
from bench.flood import (
    DOMAIN,
    GAUGES,
    Admin,
    Client,
    Digest,
    blast,
    deflated_html_bomb,
    open_client,
    request,
    tag,
)
from tests.e2e.conftest import RunningBot, StartBot
from tests.peers.conftest import free_port

COUNT = int(os.environ.get("SIPBOT_FLOOD_COUNT", "20000"))
TOKEN = secrets.token_hex(16)
MSG_URI = f"sip:bot@{DOMAIN}"
REG_URI = f"sip:{DOMAIN}"


async def challenge(client: Client, bot: tuple[str, int], method: str, uri: str) -> bytes:
    call_id = tag()
    return await client.exchange(
        request(method, uri, local=client.local, call_id=call_id), call_id, bot
    )


async def login(client: Client, bot: tuple[str, int], method: str, uri: str) -> Digest:
    """alice's credentials for ``method`` requests: one challenge, then pre-authorized."""
    return Digest.from_challenge(await challenge(client, bot, method, uri), "alice", "alice-demo")


def kinds(
    client: Client, message: Digest, register: Digest
) -> dict[str, tuple[Callable[[int], bytes], set[int]]]:
    """Each kind of bad input: how to make the i-th request, and the statuses it may get."""
    local = client.local

    def signed(method: str, uri: str, digest: Digest, **fields: object) -> bytes:
        headers = str(fields.pop("headers", ""))
        return request(
            method, uri, local=local, headers=digest.header(method, uri) + headers, **fields
        )  # type: ignore[arg-type]

    html = deflated_html_bomb()
    sdp = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=message 5060 sip null\r\na=accept-types:text/plain\r\n"
    )
    return {
        # RFC 3261 §11.2: answered, and nothing kept for it
        "options": (lambda i: request("OPTIONS", MSG_URI, local=local), {200}),
        # issue 15 item 5: "²".isdigit() is true, int("²") raises
        "non_ascii_port": (
            lambda i: request("MESSAGE", MSG_URI, local=local, to=f"<sip:bot@{DOMAIN}:²>"),
            {400},
        ),
        "not_our_domain": (lambda i: request("REGISTER", "sip:elsewhere.test", local=local), {404}),
        "unknown_method": (lambda i: request("PUBLISH", MSG_URI, local=local), {405, 501}),
        "no_such_dialog": (
            lambda i: request("BYE", MSG_URI, local=local, to_tag=tag()),
            {401, 403, 481},
        ),
        # issue 15 item 11: bodies that broke the decoders
        "bad_charset": (
            lambda i: signed(
                "MESSAGE",
                MSG_URI,
                message,
                headers="Content-Type: text/plain; charset="
                + ("base64" if i % 2 else "idna")
                + "\r\n",
                body=b"\xff\xfe my meetings",
            ),
            {415},
        ),
        # issue 15 item 7: 88 bytes that took the event loop for 3 s
        "html_bomb": (
            lambda i: signed(
                "MESSAGE",
                MSG_URI,
                message,
                headers="Content-Type: text/html\r\nContent-Encoding: deflate\r\n",
                body=html,
            ),
            {200, 413, 415},
        ),
        # issue 15 item 12: a receipt names its own status element; metrics must not grow
        "receipt_names": (
            lambda i: signed(
                "MESSAGE",
                MSG_URI,
                message,
                headers="Content-Type: message/imdn+xml\r\n",
                body=(
                    '<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>'
                    f"{tag()}</message-id><datetime>2026-11-26T00:00:00Z</datetime>"
                    f"<delivery-notification><status><s{tag()}/></status>"
                    "</delivery-notification></imdn>"
                ).encode(),
            ),
            {200, 415},
        ),
        # issue 15 item 11: an INVITE whose first message cannot be decoded opens no session
        "invite_bad_body": (
            lambda i: signed(
                "INVITE",
                MSG_URI,
                message,
                headers="Content-Type: application/sdp\r\n"
                "ms-text-format: text/plain; charset=idna; ms-body=//79\r\n",
                body=sdp,
            ),
            {415, 488},
        ),
        # issue 15 item 10: a tel: Contact was stored and then crashed every reply
        "tel_contact": (
            lambda i: signed(
                "REGISTER",
                REG_URI,
                register,
                headers="Contact: <tel:+15551234567>\r\n",
            ),
            {400, 403, 416},
        ),
    }


async def forged_credentials(bot: tuple[str, int]) -> int:
    """Issue 15 items 6 and "bans an attacker controls": 30 KB user names with nonces the bot
    never issued, from the victim's address. None of it may cost memory or ban the victim."""
    victim = await open_client("127.0.0.2")
    try:

        def forged(i: int) -> bytes:
            name = secrets.token_hex(15_000)
            header = (
                f'Authorization: Digest username="{name}", realm="{DOMAIN}", '
                f'nonce="{secrets.token_hex(16)}", uri="{REG_URI}", '
                f'response="{secrets.token_hex(16)}", algorithm=MD5\r\n'
            )
            return request("REGISTER", REG_URI, local=victim.local, headers=header)

        answered = await blast(victim, forged, COUNT, bot)
        assert set(victim.statuses) <= {401}, victim.statuses
        # the victim is not banned: it registers as alice from the very same address
        registered = await login(victim, bot, "REGISTER", REG_URI)
        call_id = tag()
        ok = await victim.exchange(
            request(
                "REGISTER",
                REG_URI,
                local=victim.local,
                call_id=call_id,
                headers=registered.header("REGISTER", REG_URI),
            ),
            call_id,
            bot,
        )
        assert ok.startswith(b"SIP/2.0 200 "), ok[:200]
        return answered
    finally:
        assert victim.transport is not None
        victim.transport.close()


async def smuggled_connections(port: int) -> int:
    """Issue 15 items 1 and 8: connections that each carry a message with two Content-Length
    values are answered 400 and closed; none stays open."""
    refused = 0
    head = request("MESSAGE", MSG_URI, local=("127.0.0.1", 9), transport="TCP").replace(
        b"Content-Length: 0\r\n", b"Content-Length: 0\r\nContent-Length: 5\r\n"
    )
    for _ in range(COUNT // 20):  # 1,000 connections: each costs a handshake on both ends
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + b"hello")
        answer = await asyncio.wait_for(reader.read(), 5)  # until the bot closes it
        refused += answer.startswith(b"SIP/2.0 400 ")
        writer.close()
    return refused


async def settled(admin: Admin, baseline: dict[str, float], timeout: float) -> dict[str, float]:
    """Wait until every count is back at (or below) its baseline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        now = await admin.gauges()
        if all(now[name] <= baseline[name] for name in GAUGES) or loop.time() > deadline:
            return now
        await asyncio.sleep(0.25)  # polling a condition with a deadline, not synchronisation


async def flood(client: Client, address: tuple[str, int], port: int) -> None:
    """Every kind, COUNT times each; each answered as it deserves. Credentials are renewed for
    each kind: a nonce lives 5 minutes, and a slow machine may take longer than that."""
    message = await login(client, address, "MESSAGE", MSG_URI)
    register = await login(client, address, "REGISTER", REG_URI)
    for name, (make, allowed) in kinds(client, message, register).items():
        message.renew(await challenge(client, address, "MESSAGE", MSG_URI))
        register.renew(await challenge(client, address, "REGISTER", REG_URI))
        client.statuses.clear()
        answered = await blast(client, make, COUNT, address)
        assert answered >= COUNT * 0.95, (name, answered, client.statuses)
        assert set(client.statuses) <= allowed, (name, client.statuses)
    assert await forged_credentials(address) >= COUNT * 0.95
    assert await smuggled_connections(port) == COUNT // 20


@pytest.mark.timeout(900)
async def test_flood_of_malformed_requests_leaves_no_state(start_bot: StartBot) -> None:
    admin_port = free_port(socket.SOCK_STREAM)
    bot: RunningBot = await start_bot(
        sip={"timers": {"t1": 0.05, "t2": 0.4, "t4": 0.5}},
        admin={"port": admin_port, "token": TOKEN},
    )
    address = ("127.0.0.1", bot.port)
    admin = Admin(admin_port, TOKEN)
    client = await open_client()
    try:
        baseline = await settled(admin, await admin.gauges(), 10)
        rss = [rss_mib(bot.process.proc.pid)]
        for _ in range(2):  # the first flood sets the allocator's high-water mark
            await flood(client, address, bot.port)
            after = await settled(admin, baseline, 64 * 0.05 + 15)
            assert all(after[n] <= baseline[n] for n in GAUGES), (baseline, after)
            rss.append(rss_mib(bot.process.proc.pid))
        print(f"bot RSS: {rss[0]:.1f} MiB at start, after each flood {rss[1]:.1f}, {rss[2]:.1f}")
        assert rss[2] - rss[1] <= 10, rss
        metrics = await admin.read()
        receipt_series = [n for n in metrics if n.startswith("sipbot_im_receipts_total")]
        assert len(receipt_series) < 20, receipt_series
        # still answering, and answering right
        call_id = tag()
        pong = await client.exchange(
            request("OPTIONS", MSG_URI, local=client.local, call_id=call_id), call_id, address
        )
        assert pong.startswith(b"SIP/2.0 200 ")
    finally:
        assert client.transport is not None
        client.transport.close()
