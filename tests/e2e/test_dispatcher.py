"""deploy/kamailio/dispatcher.cfg as shipped, in front of three ``sipbot run`` instances (ports
on 127.0.0.1) sharing one real PostgreSQL (issue 19 item 3).

SIPp, as alice from 127.0.0.5 (an address Kamailio does not trust), opens IM sessions to
sip:bot@example.test through Kamailio: every command is answered once, each session by one
instance, and every instance gets a share. One instance is SIGKILLed mid-run: only the
sessions it held fail, new ones go to the two others. A conference scheduled through one
instance is listed through another, and an automatic announcement due while the three run is
made once.

The three instances start at the same moment on an empty database: the schema migrations run
under PostgreSQL's advisory lock (bot/db), so all of them come up. A listing cached on another
instance is dropped by the writer's NOTIFY (bot/db/notify.py)."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from bench.common import count
from bot.conferencing.models import Conference
from bot.conferencing.store import ConferenceStore
from bot.send import BotAddress, SendOptions, send
from bot.sip.transaction import Peer
from tests.conferencing.conftest import postgres  # noqa: F401 (a fixture)
from tests.conferencing.postgres import fresh_database
from tests.peers.conftest import Process, free_port, module_path, start
from tests.peers.test_kamailio import wait_until_answering

from .conftest import ROOT, RunningBot, StartBot

DEPLOY = ROOT / "deploy" / "kamailio"
SCENARIOS = Path(__file__).parent / "sipp"
ALICE_HOST = "127.0.0.5"
"""Not in db/address: Kamailio challenges alice like any user and stamps her identity."""
PHONE_HOST = "127.0.0.6"
INSTANCES = 3
SUBJECT = "Dispatch check"


@dataclass
class Stack:
    kamailio: Peer
    bots: list[RunningBot]
    database_url: str
    work: Path


async def start_stack(
    start_bot: StartBot,
    processes: list[Process],
    tmp_path: Path,
    postgres: str,  # noqa: F811 (the fixture's value)
    **settings: object,
) -> Stack:
    """Three instances started at the same moment on an empty database, then Kamailio with
    the shipped config, its tables, and a dispatcher list naming the instances; each instance
    registered."""
    database_url = await fresh_database(postgres)
    ports = [free_port() for _ in range(INSTANCES)]
    kamailio = Peer("UDP", "127.0.0.1", free_port())
    bots = await asyncio.gather(
        *(
            start_bot(
                port=port,
                sip={"mode": "external", "trusted_proxies": ["127.0.0.1"]},
                registrar={
                    "server": f"sip:127.0.0.1:{kamailio.port}",
                    "username": "bot",
                    "password": "bot-secret",
                    "retry_min": 0.2,
                    "retry_max": 1.0,
                },
                conferences={"database_url": database_url},
                admin={"enabled": False},
                im={
                    "max_sessions_per_sender": 1000,  # one alice, many sessions
                    "rate_limit": {"rate": 100_000.0, "burst": 100_000},
                    "loop_breaker": {"max_replies": 100_000},
                },
                **settings,
            )
            for port in ports
        )
    )
    tables = tmp_path / "kamailio-db"
    shutil.copytree(DEPLOY / "db", tables)  # db/address trusts 127.0.0.1: every instance
    listing = tmp_path / "dispatcher.list"
    listing.write_text("".join(f"1 sip:127.0.0.1:{port}\n" for port in ports))
    process = await start(
        "kamailio", "-f", str(DEPLOY / "dispatcher.cfg"), "-L", module_path(),
        "-A", f'DBURL="text://{tables}"', "-A", f'DS_LIST="{listing}"',
        "-A", "DS_PING_INTERVAL=1", "-A", "WORKERS=1",  # SIPp wants each 200 before its reply
        "-l", f"udp:127.0.0.1:{kamailio.port}", "-DD", "-E", "-Y", str(tmp_path),
        "-w", str(tmp_path),
    )  # fmt: skip
    processes.append(process)
    await wait_until_answering(kamailio, process)
    for bot in bots:
        await bot.event("registration.succeeded")
    return Stack(kamailio, bots, database_url, tmp_path)


async def sessions(
    stack: Stack,
    processes: list[Process],
    *,
    calls: int,
    rate: float,
    commands: int,
    pause_ms: int = 0,
) -> Process:
    """SIPp, as alice, opens ``calls`` IM sessions through Kamailio, ``commands`` "help"
    each; the process (running)."""
    scenario = stack.work / f"session-{free_port()}.xml"
    scenario.write_text(
        (SCENARIOS / "proxied_session.xml")
        .read_text()
        .replace("COMMANDS", str(commands))
        .replace("COMMAND", "help")
        .replace("MARK", "Commands:")
        .replace("PAUSE", str(pause_ms))
    )
    sipp = await start(
        "sipp", f"{stack.kamailio.host}:{stack.kamailio.port}", "-sf", str(scenario),
        "-m", str(calls), "-r", str(rate), "-l", str(calls), "-i", ALICE_HOST,
        "-p", str(free_port()), "-base_cseq", "100", "-nostdin", "-fd", "1",
        "-timeout", "120s", "-timeout_error", "-trace_err", cwd=stack.work,
    )  # fmt: skip
    processes.append(sipp)
    return sipp


def answered_by(bot: RunningBot, after: int = 0) -> list[str]:
    """Call-IDs of the commands ``bot`` answered for alice (one per command)."""
    return [
        str(line["call_id"])
        for line in bot.lines[after:]
        if line.get("event") == "im.command.answered" and line.get("sender") == "alice@example.test"
    ]


def logged(bot: RunningBot, event: str, after: int = 0) -> list[dict[str, object]]:
    return [line for line in bot.lines[after:] if line.get("event") == event]


async def answered_in_all(bots: list[RunningBot], marks: list[int], total: int) -> Counter[str]:
    """Once ``bots`` answered ``total`` commands between them since ``marks`` (their log
    lengths): how many each Call-ID got, and no more come for the time of a log line."""

    def answered() -> Counter[str]:
        return Counter(
            call_id
            for bot, mark in zip(bots, marks, strict=True)
            for call_id in answered_by(bot, mark)
        )

    await bots[0].until(lambda: sum(answered().values()) >= total, f"{total} commands answered")
    return answered()


async def finished(sipp: Process) -> tuple[int, int, str]:
    """SIPp's successful and failed calls, and its screen."""
    await sipp.wait(180)
    screen = sipp.text
    return (
        count(sipp.output.decode(), "Successful call"),
        count(sipp.output.decode(), "Failed call"),
        screen,
    )


@pytest.mark.timeout(300)
async def test_sessions_spread_over_the_instances_and_survive_one_killed(
    start_bot: StartBot,
    processes: list[Process],
    tmp_path: Path,
    postgres: str,  # noqa: F811 (the fixture's value)
) -> None:
    stack = await start_stack(start_bot, processes, tmp_path, postgres)
    bots = stack.bots

    # every command answered once, each session by one instance, each instance a share
    marks = [len(bot.lines) for bot in bots]
    ok, failed, screen = await finished(
        await sessions(stack, processes, calls=30, rate=20, commands=3)
    )
    assert (ok, failed) == (30, 0), screen
    per_call = await answered_in_all(bots, marks, 90)
    assert sum(per_call.values()) == 90 and set(per_call.values()) == {3}, per_call
    shares = [set(answered_by(bot, mark)) for bot, mark in zip(bots, marks, strict=True)]
    assert all(shares), [len(share) for share in shares]
    assert sum(len(share) for share in shares) == 30  # no session served by two instances

    # one instance killed while sessions run: only the sessions it held fail
    victim, survivors = bots[0], bots[1:]
    marks = [len(bot.lines) for bot in bots]
    running = await sessions(stack, processes, calls=40, rate=10, commands=8, pause_ms=200)
    await victim.until(lambda: len(answered_by(victim, marks[0])) >= 6, "the victim serving")
    await victim.kill()
    await victim.stop()  # reads its log to the end
    opened = {str(line["call_id"]) for line in logged(victim, "im.session.opened", marks[0])}
    closed = {str(line["call_id"]) for line in logged(victim, "im.session.closed", marks[0])}
    held = opened - closed
    ok, failed, screen = await finished(running)
    assert held and ok + failed == 40, screen
    assert failed <= len(held), (failed, len(held), screen)

    # after: new sessions all go to the two others and all succeed
    marks = [len(bot.lines) for bot in survivors]
    ok, failed, screen = await finished(
        await sessions(stack, processes, calls=20, rate=20, commands=2)
    )
    assert (ok, failed) == (20, 0), screen
    per_call = await answered_in_all(survivors, marks, 40)
    assert set(per_call.values()) == {2} and len(per_call) == 20, per_call
    assert all(answered_by(bot, mark) for bot, mark in zip(survivors, marks, strict=True))


async def alice_says_through(stack: Stack, text: str) -> tuple[str, RunningBot]:
    """alice (``sipbot send``, registered at Kamailio) says ``text`` to sip:bot@example.test
    through Kamailio: the reply, and the instance that answered."""
    marks = [len(bot.lines) for bot in stack.bots]
    address = BotAddress(domain="example.test", uri="sip:bot@example.test", server=stack.kamailio)
    options = SendOptions(
        user="alice", password="alice-demo", text=text, server=stack.kamailio,
        local_host=ALICE_HOST, timeout=20,
    )  # fmt: skip
    reply = await send(address, options)
    pairs = list(zip(stack.bots, marks, strict=True))
    await stack.bots[0].until(lambda: any(answered_by(b, m) for b, m in pairs), "answered")
    (answering,) = [bot for bot, mark in pairs if answered_by(bot, mark)]
    return reply, answering


@pytest.mark.timeout(300)
async def test_a_conference_scheduled_through_one_instance_is_listed_through_another(
    start_bot: StartBot,
    processes: list[Process],
    tmp_path: Path,
    postgres: str,  # noqa: F811 (the fixture's value)
) -> None:
    stack = await start_stack(start_bot, processes, tmp_path, postgres)
    served: set[int] = set()
    for _ in range(30):  # each a new Call-ID: until every instance has alice's listing cached
        _, lister = await alice_says_through(stack, "my meetings")
        served.add(stack.bots.index(lister))
        if len(served) == INSTANCES:
            break
    assert len(served) == INSTANCES, f"only instances {served} answered"
    scheduled, scheduler = await alice_says_through(stack, f"schedule {SUBJECT} at tomorrow 10:00")
    assert SUBJECT in scheduled, scheduled
    loop = asyncio.get_running_loop()
    since = loop.time()
    for _ in range(12):  # another instance 2 times in 3, its listing cached (cache_seconds 5)
        listing, lister = await alice_says_through(stack, "my meetings")
        if lister is not scheduler:
            break
    assert lister is not scheduler, "every listing went to the scheduling instance"
    assert SUBJECT in listing, listing
    assert loop.time() - since < 5.0  # inside the cache's 5 s: the NOTIFY dropped it


@pytest.mark.timeout(300)
async def test_an_automatic_announcement_due_while_three_instances_run_is_made_once(
    start_bot: StartBot,
    processes: list[Process],
    tmp_path: Path,
    postgres: str,  # noqa: F811 (the fixture's value)
) -> None:
    rule = {"name": "opening", "when": "start", "text": "{subject} starts now.", "target": "all"}
    stack = await start_stack(
        start_bot, processes, tmp_path, postgres, announcements={"grace": 60.0, "rules": [rule]}
    )
    phone_port = free_port()
    phone = await start(
        "sipp", f"{stack.kamailio.host}:{stack.kamailio.port}",
        "-sf", str(SCENARIOS / "answer_call.xml"), "-m", "1", "-i", PHONE_HOST,
        "-p", str(phone_port), "-nostdin", "-timeout", "90s", "-timeout_error",
    )  # fmt: skip
    processes.append(phone)
    # due LEAD from now: every instance's next tick (every POLL s at most) sees it coming
    start_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    store = ConferenceStore(stack.database_url)
    await store.open()
    try:
        await store.add(
            Conference(
                conference_id="ONCE1", organizer="alice@example.test", subject=SUBJECT,
                uri=f"sip:phone@{PHONE_HOST}:{phone_port}", access_level="everyone",
                start=start_at, end=start_at + timedelta(minutes=30),
                expiry=start_at + timedelta(days=1),
            )
        )  # fmt: skip
    finally:
        await store.close()

    def tried() -> list[dict[str, object]]:
        return [
            line
            for bot in stack.bots
            for line in bot.lines
            if line.get("event")
            in ("announcement.rule.claimed", "announcement.rule.already_claimed")
        ]

    await stack.bots[0].until(lambda: len(tried()) == INSTANCES, "tried by every instance", 60)
    claimed = [line for line in tried() if line["event"] == "announcement.rule.claimed"]
    assert len(claimed) == 1, tried()
    assert {line["key"] for line in tried()} == {f"ONCE1@{start_at:%Y-%m-%dT%H:%M:%SZ}"}
    assert await phone.wait(90) == 0, phone.text  # one call, answered, hung up by the bot

    def fired() -> list[dict[str, object]]:
        return [line for bot in stack.bots for line in logged(bot, "announcement.rule.fired")]

    await stack.bots[0].until(lambda: bool(fired()), "fired")
    assert [line["where"] for line in fired()] == [f"'{SUBJECT}'"]
    admin = await asyncpg.connect(stack.database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await admin.fetchval("SELECT count(*) FROM announcements_fired") == 1
    finally:
        await admin.close()
