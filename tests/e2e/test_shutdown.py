"""Issue 18 item 3 end to end: SIGTERM to ``sipbot run`` during an IM session (SIPp as a Lync
client), during a call (baresip as bob, called by ``announce``) and behind Kamailio (external
mode). The peer sees the BYE, Kamailio loses the bot's binding, the reply in flight is sent,
and the process exits 0 within ``shutdown.deadline`` - measured from the signal to the exit."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot.config import load_config
from tests.peers.baresip import RecordingPhone
from tests.peers.conftest import Process, free_port

from .conftest import RunningBot, StartBot, alice_says
from .test_behind_kamailio import bindings_of_the_bot, registered_behind_kamailio
from .test_sipp_im import SCENARIOS, start_sipp

SHUTDOWN = {"deadline": 3.0}
BOT_BYE = """<recv request="BYE"/>
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
"""alice's end of the scenario: the bot says BYE, she answers 200."""


async def stopped_in_time(bot: RunningBot) -> None:
    """SIGTERM; the seconds until the process exited, which it must do with status 0 within
    its shutdown.deadline, nothing cut."""
    deadline = load_config(bot.config_path).shutdown.deadline
    loop = asyncio.get_running_loop()
    began = loop.time()
    code = await bot.stop()
    took = loop.time() - began
    assert code == 0, bot.text
    assert took < deadline, (took, bot.text)
    await bot.event("bot.stopped", cut=[])


async def test_sigterm_during_an_im_session_says_bye_to_the_client(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    bot = await start_bot(shutdown=SHUTDOWN)
    template = (SCENARIOS / "lync_session.xml").read_text()
    scenario = re.sub(
        r'<send retrans="500">\s*<!\[CDATA\[\s*BYE .*?<recv response="200"/>',
        BOT_BYE,
        template.replace("      FIRST-MESSAGE-HEADER\n", "")
        .replace("FIRST-MESSAGE-SUPPORTED", "")
        .replace("FIRST-MESSAGE-REPLY", ""),
        flags=re.S,
    )
    assert scenario.count('request="BYE"') == 1 and "CSeq: 4 BYE" not in scenario
    path = tmp_path / "session.xml"
    path.write_text(scenario)
    sipp = await start_sipp(path, bot.port, processes)
    await bot.event("im.command.answered", command="help", sender="alice@example.test")
    await stopped_in_time(bot)
    assert await sipp.wait(10) == 0, sipp.text  # it got the BYE (and nothing after it)
    closed = await bot.event("im.session.closed", by="bot")
    assert closed["status"] == 200 and closed["reason"] == "bot stopping"


async def test_sigterm_during_a_call_hangs_up_and_sends_the_reply_in_flight(
    start_bot: StartBot, tmp_path: Path
) -> None:
    port = free_port()
    bot = await start_bot(port, shutdown=SHUTDOWN)
    phone = await RecordingPhone.start(
        tmp_path / "bob", user="bob", password="bob-demo", registrar=("127.0.0.1", port)
    )
    try:
        await bot.event("registrar.bindings_updated", user="bob", bindings=1)
        text = "This announcement is long enough to be still playing when the bot stops. " * 4
        command = f"announce sip:bob@example.test {text}"
        said = asyncio.ensure_future(alice_says(load_config(bot.config_path), command, timeout=60))
        await phone.console.expect("Call established", timeout=30)
        await stopped_in_time(bot)
        await phone.console.expect("session closed", timeout=5)  # bob's phone got the BYE...
        await bot.event("calls.bye_answered", status=200)  # ... and answered it
        reply = await asyncio.wait_for(said, 5)  # answered before the bot went
        assert reply == "The call to sip:bob@example.test ended while playing: the bot stopped."
    finally:
        phone.console.proc.kill()  # no un-REGISTER to wait for: the registrar is gone
        await phone.console.proc.wait()


async def test_sigterm_behind_kamailio_removes_the_binding_within_the_deadline(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    """(Here with the default deadline, 5 s: the helper's bot has no shutdown section.)"""
    bot, kamailio_port, _ = await registered_behind_kamailio(start_bot, processes, tmp_path)
    assert len(await bindings_of_the_bot(kamailio_port)) == 1
    await stopped_in_time(bot)
    await bot.event("registration.removed", status=200)
    assert await bindings_of_the_bot(kamailio_port) == []
