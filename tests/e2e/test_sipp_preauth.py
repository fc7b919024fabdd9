"""Issue 19 item 2: SIPp as a pre-authorizing pager client of ``sipbot run`` (RFC 7616 §3.4):
after one challenge, each MESSAGE carries credentials for the same nonce with the nonce count
raised, and each is answered 200 at once - one transaction per command, the reply delivered.
The scenario is the benchmark's own (bench/sipp/pager_preauth.xml); /metrics tells how many
challenges the bot sent and how many answers came pre-authorized."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.peers.conftest import Process, free_port, start

from .conftest import StartBot
from .test_readyz import scrape
from .test_sipp_im import SCENARIOS, run_sipp

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 3
"""SIPp calls: each a client with its own nonce."""
COMMANDS = 5
"""Pre-authorized MESSAGEs per client."""


def registration_only(tmp_path: Path, contact_port: int) -> Path:
    """pager_alice.xml up to its MESSAGE: alice registers her contact at ``contact_port``."""
    text = (SCENARIOS / "pager_alice.xml").read_text().replace("CONTACT_PORT", str(contact_port))
    head = text[: text.index('  <send retrans="500">\n    <![CDATA[\n\n      MESSAGE')]
    path = tmp_path / "register.xml"
    path.write_text(head + "</scenario>\n")
    return path


async def test_pre_authorized_pager_messages_meet_one_challenge_per_client(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    admin = free_port(socket.SOCK_STREAM)
    # 15 commands within a second: above a person's pace, so the pace is raised for the test
    bot = await start_bot(admin={"port": admin}, im={"rate_limit": {"rate": 100.0, "burst": 100}})
    inbox_port = free_port()
    inbox = tmp_path / "inbox.xml"
    check = '<ereg regexp="Commands:" search_in="body" check_it="true" assign_to="help"/>'
    inbox.write_text(
        (SCENARIOS / "pager_inbox.xml")
        .read_text()
        .replace("CHECKS", check)
        .replace("REFERENCES", "help")
    )
    sender = tmp_path / "preauth.xml"
    sender.write_text(
        (ROOT / "bench" / "sipp" / "pager_preauth.xml")
        .read_text()
        .replace("COMMANDS", str(COMMANDS))
        .replace("COMMAND", "help")
    )
    receiver = await start(
        "sipp", f"127.0.0.1:{bot.port}", "-sf", str(inbox), "-m", str(CLIENTS * COMMANDS),
        "-i", "127.0.0.1", "-p", str(inbox_port), "-nostdin", "-timeout", "30s",
        "-timeout_error",
    )  # fmt: skip
    processes.append(receiver)
    await run_sipp(registration_only(tmp_path, inbox_port), bot.port, processes)
    before = await scrape(admin)
    clients = await start(
        "sipp", f"127.0.0.1:{bot.port}", "-sf", str(sender), "-m", str(CLIENTS),
        "-i", "127.0.0.1", "-p", str(free_port()), "-nostdin", "-timeout", "30s",
        "-timeout_error",
    )  # fmt: skip
    processes.append(clients)
    assert await clients.wait(60) == 0, clients.text  # every MESSAGE answered 200
    assert await receiver.wait(30) == 0, receiver.text  # every command got its reply
    after = await scrape(admin)

    def sent(series: str) -> float:
        return after.get(series, 0.0) - before.get(series, 0.0)

    challenges = 'sipbot_sip_responses_total{code="401",direction="out",method="MESSAGE"}'
    answers = 'sipbot_digest_answers_total{{outcome="{}"}}'
    assert sent(challenges) == CLIENTS, bot.text  # one round per client, none per command
    assert sent('sipbot_sip_responses_total{code="200",direction="out",method="MESSAGE"}') == (
        CLIENTS * COMMANDS
    )
    assert sent(answers.format("accepted")) == CLIENTS
    assert sent(answers.format("preauthorized")) == CLIENTS * (COMMANDS - 1)
    assert sent(answers.format("replayed")) == sent(answers.format("stale")) == 0
    failures = {k: v for k, v in after.items() if k.startswith("sipbot_auth_failures") and v}
    assert not failures  # no answer counted as a guess
