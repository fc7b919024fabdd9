"""The embedded registrar against the real scanner SIPVicious (svwar, svcrack): no user
enumeration, password guessing banned, the real user unaffected.

SIPVicious sends from 127.0.0.1; alice's own client sends from 127.0.0.2, standing for another
host (Linux routes all of 127.0.0.0/8 to loopback with no set-up)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.config import load_config
from tests.peers.conftest import free_port

from .conftest import RunningBot, StartBot, alice_says

ALICE_HOST = "127.0.0.2"
NAMES = ["alice", "zed", "bob", "mallory", "100", "admin", "operator"]
GUARD = {"max_failures": 10, "window": 60, "ban": 600}


async def run(*command: str, timeout: float = 90) -> str:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return out.decode("utf-8", "replace")


async def alice_says_from_her_host(bot: RunningBot, text: str) -> str:
    """alice from an address she never authenticated from: while her name is being guessed,
    her verdicts wait their turn in the per-user pace (at most 16 s, README "Per-user pace")."""
    config = load_config(bot.config_path)
    return await alice_says(config, text, local_host=ALICE_HOST, timeout=30)


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
async def test_svwar_cannot_tell_real_users_from_made_up_ones(
    start_bot: StartBot, tmp_path: Path, method: str
) -> None:
    bot = await start_bot()
    names = tmp_path / "names.txt"
    names.write_text("\n".join(NAMES) + "\n")
    report = await run(
        "svwar",
        "-d",
        str(names),
        "-m",
        method,
        "--domain",
        "example.test",
        "-p",
        str(bot.port),
        "-P",
        str(free_port()),
        "127.0.0.1",
    )
    listed = set(re.findall(r"^\|\s*(\S+)\s*\|", report, re.MULTILINE)) - {"Extension"}
    assert not listed & set(NAMES), report  # neither alice nor bob, nor any made-up name
    if method == "REGISTER":  # the registrar challenges every name alike
        assert "authentication request for an unknown extension" in report, report
    if method == "INVITE":  # the bot takes requests only for itself: 404 for every name alike
        assert "found nothing" in report, report


async def test_svcrack_is_banned_before_it_finds_alices_password_and_alice_keeps_working(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot(security={"auth": GUARD})
    words = tmp_path / "words.txt"
    guesses = [f"guess{n:04d}" for n in range(300)] + ["alice-demo"]
    words.write_text("\n".join(guesses) + "\n")
    attack = asyncio.ensure_future(
        run(
            "svcrack",
            "-u",
            "alice",
            "-d",
            str(words),
            "--domain",
            "example.test",
            "-p",
            str(bot.port),
            "--maximumtime",
            "3",
            "-P",  # its own free port, not 5060: other tests' SIP traffic cannot reach it
            str(free_port()),
            "127.0.0.1",
        )
    )
    banned = await bot.event("guard.banned", address="127.0.0.1")
    assert banned["failures"] == 10 and banned["users"] == ["alice"]
    assert "alice-demo" not in str(banned)
    during = await alice_says_from_her_host(
        bot, "help"
    )  # from her own address, while svcrack still runs
    assert "my meetings" in during
    report = await attack
    assert "alice-demo" not in report and "found nothing" in report, report
    after = await alice_says_from_her_host(bot, "my meetings")
    assert "Weekly sync" in after
    log = "".join(bot.raw)
    assert "alice-demo" not in log and "guess0" not in log
    assert "response=" not in log and "Authorization" not in log


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def flood(port: int, count: int, per_burst: int = 20) -> None:
    """Unauthenticated REGISTERs from 127.0.0.3, each a new transaction, ~2,000 a second."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.3", 0)
    )
    local_port = transport.get_extra_info("sockname")[1]
    try:
        for n in range(count):
            transport.sendto(
                (
                    f"REGISTER sip:example.test SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.3:{local_port};branch=z9hG4bKflood{n}\r\n"
                    f"From: <sip:user{n}@example.test>;tag=f{n}\r\n"
                    f"To: <sip:user{n}@example.test>\r\n"
                    f"Call-ID: flood-{n}\r\nCSeq: 1 REGISTER\r\n"
                    f"Contact: <sip:user{n}@127.0.0.3:{local_port}>\r\n"
                    f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", port),
            )
            if n % per_burst == per_burst - 1:
                await asyncio.sleep(0.01)  # pacing the sender, not waiting for anything
    finally:
        transport.close()


async def test_a_flood_of_unauthenticated_registers_leaves_no_state_and_alice_is_served(
    start_bot: StartBot,
) -> None:
    bot = await start_bot()
    pid = bot.process.proc.pid
    await flood(bot.port, 3000)  # warm-up: allocator arenas, caches
    before = rss_kib(pid)
    attack = asyncio.ensure_future(flood(bot.port, 12000))
    during = await alice_says_from_her_host(bot, "help")
    await attack
    assert "my meetings" in during
    after = rss_kib(pid)
    assert after - before < 8 * 1024, f"RSS grew from {before} KiB to {after} KiB"
    assert "guard.banned" not in "".join(bot.raw)  # challenges are not failures
    assert "Weekly sync" in await alice_says_from_her_host(bot, "my meetings")


def forged_register(n: int, local_port: int, authorization: str) -> bytes:
    return (
        f"REGISTER sip:example.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ALICE_HOST}:{local_port};branch=z9hG4bKforged{n}\r\n"
        f"From: <sip:alice@example.test>;tag=f{n}\r\n"
        f"To: <sip:alice@example.test>\r\n"
        f"Call-ID: forged-{n}\r\nCSeq: 1 REGISTER\r\n"
        f"Contact: <sip:alice@{ALICE_HOST}:{local_port}>\r\n"
        f"Authorization: {authorization}\r\n"
        f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.datagrams.put_nowait(data)


async def test_spoofed_failures_cannot_ban_the_victim(start_bot: StartBot) -> None:
    """Bans that an attacker controls: forged credentials sent with the victim's source address
    (127.0.0.2) - fabricated nonces, a real nonce issued to the attacker's own address, made-up
    responses, incomplete credentials - count for nothing; alice then registers from there."""
    bot = await start_bot(security={"auth": GUARD})
    loop = asyncio.get_running_loop()
    # the attacker's own address gets a real nonce
    own, inbox = await loop.create_datagram_endpoint(Inbox, local_addr=("127.0.0.1", 0))
    own_port = own.get_extra_info("sockname")[1]
    own.sendto(forged_register(0, own_port, 'Digest username="alice"'), ("127.0.0.1", bot.port))
    challenge = (await asyncio.wait_for(inbox.datagrams.get(), 5)).decode()
    [nonce] = re.findall(r'nonce="([^"]+)"', challenge)
    own.close()
    # ... and answers it, and fabricated ones, "from" the victim
    victim, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(ALICE_HOST, 0)
    )
    port = victim.get_extra_info("sockname")[1]
    forged = [
        f'Digest username="alice", realm="example.test", nonce="{value}", '
        f'uri="sip:example.test", response="{n:032x}", algorithm=MD5'
        for n, value in enumerate([nonce] * 8 + [f"made-up-{n}" for n in range(8)])
    ] + ['Digest username="alice", realm="example.test"'] * 4
    try:
        for n, authorization in enumerate(forged, start=1):
            victim.sendto(forged_register(n, port, authorization), ("127.0.0.1", bot.port))
    finally:
        victim.close()
    assert len(forged) >= 2 * GUARD["max_failures"]
    during = await alice_says_from_her_host(bot, "help")  # registers, then asks
    assert "my meetings" in during
    assert "guard.banned" not in "".join(bot.raw)
