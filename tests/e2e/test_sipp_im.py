"""SIPp as a user of ``sipbot run``: pager mode and Lync-style IM sessions."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.peers.conftest import Process, free_port, start

from .conftest import StartBot

SCENARIOS = Path(__file__).parent / "sipp"
FIRST_REPLY = """<recv request="MESSAGE">
    <action>
      <ereg regexp="Commands:" search_in="body" check_it="true" assign_to="help1"/>
    </action>
  </recv>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>"""
FIRST_SUPPORTED = (
    '<ereg regexp="ms-text-format" search_in="hdr" header="Supported:" check_it="true" '
    'assign_to="supported"/>'
)


async def start_sipp(
    scenario: Path, bot_port: int, processes: list[Process], port: int | None = None
) -> Process:
    sipp = await start(
        "sipp", f"127.0.0.1:{bot_port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
        "-p", str(port or free_port()), "-nostdin", "-timeout", "30s", "-timeout_error",
    )  # fmt: skip
    processes.append(sipp)
    return sipp


async def run_sipp(scenario: Path, bot_port: int, processes: list[Process]) -> None:
    sipp = await start_sipp(scenario, bot_port, processes)
    assert await sipp.wait(60) == 0, sipp.text


def ereg(name: str, pattern: str, *, present: bool = True) -> str:
    check = "check_it" if present else "check_it_inverse"
    return f'<ereg regexp="{pattern}" search_in="body" {check}="true" assign_to="{name}"/>'


async def pager_exchange(
    server_port: int,
    processes: list[Process],
    tmp_path: Path,
    *,
    command: str,
    expect: dict[str, bool],
    message_uri: str = "sip:[remote_ip]:[remote_port]",
    challenge: int = 401,
) -> None:
    """alice registers at ``server_port`` (the bot, or a proxy), sends ``command`` and checks
    the reply arriving at her contact: each pattern in ``expect`` present (True) or absent."""
    inbox_port = free_port()
    names = [f"v{i}" for i in range(len(expect))]
    checks = "\n      ".join(
        ereg(name, pattern, present=present)
        for name, (pattern, present) in zip(names, expect.items(), strict=True)
    )
    inbox = tmp_path / "inbox.xml"
    inbox.write_text(
        (SCENARIOS / "pager_inbox.xml")
        .read_text()
        .replace("CHECKS", checks)
        .replace("REFERENCES", ",".join(names))
    )
    client = tmp_path / "alice.xml"
    client.write_text(
        (SCENARIOS / "pager_alice.xml")
        .read_text()
        .replace("CONTACT_PORT", str(inbox_port))
        .replace("COMMAND", command)
        .replace("MESSAGE_URI", message_uri)
        .replace("CHALLENGE", str(challenge))
    )
    receiver = await start_sipp(inbox, server_port, processes, inbox_port)
    await run_sipp(client, server_port, processes)
    assert await receiver.wait(30) == 0, receiver.text


async def test_alice_registers_and_gets_her_meetings_by_pager_message(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    bot = await start_bot()
    expect = {"Weekly sync": True, "Quarterly review": True, "Design review": False}
    await pager_exchange(bot.port, processes, tmp_path, command="my meetings", expect=expect)


@pytest.mark.parametrize("first_in_invite", [True, False], ids=["ms-text-format", "plain"])
async def test_lync_style_im_session_answers_each_command_once(
    start_bot: StartBot, processes: list[Process], tmp_path: Path, first_in_invite: bool
) -> None:
    bot = await start_bot()
    template = (SCENARIOS / "lync_session.xml").read_text()
    if first_in_invite:
        encoded = base64.b64encode(b"help").decode()
        header = f"ms-text-format: text/plain; charset=UTF-8; msgr=WAAtAE0A; ms-body={encoded}"
        scenario = (
            template.replace("FIRST-MESSAGE-HEADER", header)
            .replace("FIRST-MESSAGE-SUPPORTED", FIRST_SUPPORTED)
            .replace("FIRST-MESSAGE-REPLY", FIRST_REPLY)
            .replace('variables="to,bot,sdp,help2"', 'variables="to,bot,sdp,help1,help2,supported"')
        )
    else:
        scenario = (
            template.replace("      FIRST-MESSAGE-HEADER\n", "")
            .replace("FIRST-MESSAGE-SUPPORTED", "")
            .replace("FIRST-MESSAGE-REPLY", "")
        )
    path = tmp_path / "session.xml"
    path.write_text(scenario)
    await run_sipp(path, bot.port, processes)
