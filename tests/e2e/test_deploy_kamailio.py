"""deploy/kamailio/kamailio.cfg as shipped: Kamailio believes the bot's per-user requests only
from the bot's address. The bot's C3P SERVICE as alice (From and P-Asserted-Identity alice)
goes through to the focus factory; the very same request from another address is challenged
and its P-Asserted-Identity not believed."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.conferencing import c3p
from bot.conferencing.acting import Registering
from bot.conferencing.c3p import C3pBackend
from bot.conferencing.endpoints import UserEndpointPool
from bot.conferencing.services import ConferenceError, NewConference
from bot.sender import Sender
from bot.sip import Headers, Request, parse_uri
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.doubles.focus_factory import FocusFactory
from tests.peers.conftest import Process, free_port, module_path, start
from tests.peers.test_kamailio import wait_until_answering

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kamailio"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
ALICE = "alice@example.test"


async def start_deployed_kamailio(
    tmp_path: Path, conference_server: Peer, processes: list[Process]
) -> Peer:
    database = tmp_path / "db"
    shutil.copytree(DEPLOY / "db", database)
    port = free_port()
    process = await start(
        "kamailio", "-f", str(DEPLOY / "kamailio.cfg"), "-L", module_path(),
        "-A", f'DBURL="text://{database}"',
        "-A", f'CONF_SERVER="sip:{conference_server.host}:{conference_server.port}"',
        "-l", f"udp:127.0.0.1:{port}", "-DD", "-E", "-Y", str(tmp_path), "-w", str(tmp_path),
    )  # fmt: skip
    processes.append(process)
    peer = Peer("UDP", "127.0.0.1", port)
    await wait_until_answering(peer, process)
    return peer


async def test_only_the_bots_address_may_act_for_a_user(
    processes: list[Process], tmp_path: Path
) -> None:
    factory = FocusFactory(trusted={"127.0.0.1"})  # Kamailio relays from 127.0.0.1
    focus = await factory.start(FAST)
    try:
        kamailio = await start_deployed_kamailio(tmp_path, focus, processes)
        bot_config = EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST)
        async with SipEndpoint(bot_config) as bot:
            backend = C3pBackend(bot, kamailio, timeout=5)
            start_at = datetime.now(UTC) + timedelta(days=1)
            made = await backend.schedule(
                ALICE,
                NewConference(subject="Via Kamailio", start=start_at, duration=timedelta(hours=1)),
            )
            listed = await backend.summaries(ALICE, datetime.now(UTC))
            assert [c.conference_id for c in listed] == [made.conference_id]
        other_config = EndpointConfig(listen=(Listen(host="127.0.0.2", port=0),), timers=FAST)
        async with SipEndpoint(other_config) as intruder:
            factory_uri, body = c3p.build_request(ALICE, c3p.get_conferences())
            claim = Request("SERVICE", parse_uri(factory_uri), Headers.of(
                ("From", f"<sip:{ALICE}>;tag={new_tag()}"), ("To", f"<{factory_uri}>"),
                ("Call-ID", new_tag()), ("CSeq", "1 SERVICE"),
                ("P-Asserted-Identity", f"<sip:{ALICE}>"),
                ("Content-Type", c3p.CONTENT_TYPE)), body)  # fmt: skip
            refused = await intruder.request(claim, destination=kamailio)
            assert refused.status == 407  # challenged like any user, PAI not believed
        assert [command for _, command in factory.requests] == [
            "getAvailableMcuTypes",
            "addConference",
            "getConferences",
        ]
    finally:
        await factory.close()


async def test_a_registered_endpoint_acts_for_its_user_from_any_address(
    processes: list[Process], tmp_path: Path
) -> None:
    factory = FocusFactory(trusted={"127.0.0.1"})
    focus = await factory.start(FAST)
    try:
        kamailio = await start_deployed_kamailio(tmp_path, focus, processes)
        config = EndpointConfig(listen=(Listen(host="127.0.0.2", port=0),), timers=FAST)
        async with SipEndpoint(config) as bot:  # not an address Kamailio trusts
            registering = Registering(bot, kamailio, {"alice": "alice-demo"}, expires=600)
            pool = UserEndpointPool(
                C3pBackend(bot, kamailio, credentials=registering.credentials),
                establish=registering,
            )
            alice = await pool.get(Sender("alice", "example.test"))
            assert await alice.conferences.summaries(datetime.now(UTC)) == []
            with pytest.raises(ConferenceError, match="no credentials to act for bob"):
                await pool.get(Sender("bob", "example.test"))
        assert [command for _, command in factory.requests] == ["getConferences"]
    finally:
        await factory.close()
