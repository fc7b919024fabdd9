"""Issue 16 step 0: the outgoing path of ``sipbot run`` as a user sees it, against SIPp.

In external mode the bot registers with ``registrar.server``; SIPp plays that registrar
(``tests/e2e/sipp/registrar_*.xml``) and answers 503, stays silent, challenges (401, 407, a stale
nonce, a refused password) or grants. What the bot sent is read from SIPp's ``-trace_msg`` log,
and its digest answers are checked here from RFC 7616 §3.4.1 directly, not with the bot's code.
A request over 1300 bytes (RFC 3261 §18.1.1) is sent with ``sipbot send``, the product's client,
to a TCP-listening SIPp and to a UDP-only one.

Here the registrar is one target; trying several in order (RFC 3263 §4.3, which needs DNS
SRV records: ``sip.dns``) is tests/e2e/test_failover.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from datetime import datetime
from pathlib import Path

from tests.peers.conftest import Process, free_port, listening, start

from .conftest import ROOT, RunningBot, StartBot

SCENARIOS = Path(__file__).parent / "sipp"
PASSWORD = "bot-secret"


async def sipp_server(
    name: str,
    tmp_path: Path,
    processes: list[Process],
    port: int,
    *,
    replace: dict[str, str] | None = None,
    transport: str = "u1",
    calls: int = 1,
) -> tuple[Process, Path]:
    """SIPp as a server on ``port`` running scenario ``name``; also the folder of its trace."""
    folder = tmp_path / f"{name}-{transport}-{port}"
    folder.mkdir()
    text = (SCENARIOS / f"{name}.xml").read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    scenario = folder / "scenario.xml"
    scenario.write_text(text)
    sipp = await start(
        "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-t", transport,
        "-m", str(calls), "-nostdin", "-trace_msg", "-timeout", "40s", "-timeout_error",
        cwd=folder,
    )  # fmt: skip
    processes.append(sipp)
    # a request sent before SIPp binds draws ICMP unreachable: a 503, not what the test means
    await listening(port, "tcp" if transport.startswith("t") else "udp")
    return sipp, folder


def received(folder: Path, method: str) -> list[str]:
    """The ``method`` requests SIPp logged as received (``-trace_msg``), in order."""
    return [message for _, message in arrivals(folder, method)]


def arrivals(folder: Path, method: str) -> list[tuple[float, str]]:
    """The ``method`` requests SIPp logged as received, in order, each with the time SIPp
    stamped on it (its local clock, as ``time.time()``)."""
    found: list[tuple[float, str]] = []
    for log in folder.glob("*_messages.log"):
        parts = re.split(r"^-{10,} (.*)$", log.read_text(errors="replace"), flags=re.M)
        for stamp, chunk in zip(parts[1::2], parts[2::2], strict=True):
            _, sep, message = chunk.partition("message received")
            if sep and (body := message.split(":", 1)[1].strip()).startswith(f"{method} "):
                at = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                found.append((at, body))
    return found


def digest_ok(message: str, header: str, password: str) -> bool:
    """Does ``header`` of ``message`` hold a right MD5 answer (RFC 7616 §3.4.1)?"""
    line = re.search(rf"^{header}:\s*Digest (.*)$", message, re.M | re.I)
    assert line is not None, f"no {header} in:\n{message}"
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', line.group(1)))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    method = message.split(" ", 1)[0]
    ha2 = md5(f"{method}:{params['uri']}")
    if "qop" in params:
        parts = [ha1, params["nonce"], params["nc"], params["cnonce"], params["qop"], ha2]
    else:
        parts = [ha1, params["nonce"], ha2]
    return bool(md5(":".join(parts)) == params["response"])


def header(message: str, name: str) -> str:
    found = re.search(rf"^{name}:\s*(.*?)\s*$", message, re.M | re.I)
    assert found is not None, f"no {name} in:\n{message}"
    return found.group(1)


async def external_bot(start_bot: StartBot, server_port: int, **registrar: object) -> RunningBot:
    settings: dict[str, object] = {
        "server": f"sip:127.0.0.1:{server_port}",
        "username": "bot",
        "password": PASSWORD,
        "retry_min": 0.2,
        "retry_max": 0.4,
    }
    settings.update(registrar)
    return await start_bot(sip={"mode": "external"}, registrar=settings)


async def test_a_503_is_retried_after_back_off_and_the_next_grant_holds(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    sipp, trace = await sipp_server("registrar_503_then_200", tmp_path, processes, port)
    bot = await external_bot(start_bot, port)
    await bot.event("registration.failed", status=503)
    await bot.event("registration.succeeded", expires=120)
    assert await sipp.wait(30) == 0, sipp.text
    registers = received(trace, "REGISTER")
    assert len(registers) == 2, registers
    # one registration, one Call-ID, a rising CSeq (RFC 3261 §10.2.4)
    assert len({header(r, "Call-ID") for r in registers}) == 1, registers
    assert [header(r, "CSeq") for r in registers] == ["1 REGISTER", "2 REGISTER"]


async def test_a_refused_registrar_port_fails_at_once_as_503(start_bot: StartBot) -> None:
    """Nothing listens there: the ICMP port unreachable is a transport error, a 503 at once
    (RFC 3261 §8.1.3.1), not a 32 s timeout (default T1 of 0.5 s)."""
    bot = await external_bot(start_bot, free_port())
    failed = await bot.event("registration.failed", status=503, timeout=10)
    assert failed["failures"] == 1


async def test_a_silent_registrar_times_out_as_408_then_a_new_register_is_granted(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    sipp, trace = await sipp_server("registrar_silent_then_200", tmp_path, processes, port)
    bot = await start_bot(
        sip={"mode": "external", "timers": {"t1": 0.05, "t2": 0.2, "t4": 0.25}},
        registrar={
            "server": f"sip:127.0.0.1:{port}",
            "username": "bot",
            "password": PASSWORD,
            "retry_min": 0.2,
            "retry_max": 0.4,
        },
    )
    await bot.event("registration.failed", status=408)
    await bot.event("registration.succeeded", expires=120)
    assert await sipp.wait(30) == 0, sipp.text
    registers = received(trace, "REGISTER")
    assert len(registers) > 2, "the first REGISTER was retransmitted over UDP (Timer E)"
    cseqs = [header(r, "CSeq") for r in registers]
    assert cseqs[-1] != cseqs[0] and set(cseqs[:-1]) == {cseqs[0]}, cseqs


async def test_a_401_and_a_407_are_answered_with_right_credentials(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    for code, challenge, answer in (
        ("401", "WWW-Authenticate", "Authorization"),
        ("407", "Proxy-Authenticate", "Proxy-Authorization"),
    ):
        port = free_port()
        sipp, trace = await sipp_server(
            "registrar_challenge",
            tmp_path,
            processes,
            port,
            replace={"CODE": code, "HEADER": challenge},
        )
        bot = await external_bot(start_bot, port)
        await bot.event("registration.succeeded", expires=120)
        assert await sipp.wait(30) == 0, sipp.text
        first, second = received(trace, "REGISTER")
        assert not re.search(rf"^{answer}:", first, re.M | re.I), first
        assert 'nonce="nonce-one"' in second, second
        assert digest_ok(second, answer, PASSWORD), second
        await bot.stop()


async def test_a_stale_nonce_is_answered_once_more_with_the_new_nonce(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    sipp, trace = await sipp_server("registrar_stale", tmp_path, processes, port)
    bot = await external_bot(start_bot, port)
    await bot.event("registration.succeeded", expires=120)
    assert await sipp.wait(30) == 0, sipp.text
    first, second, third = received(trace, "REGISTER")
    assert "Authorization" not in first
    assert 'nonce="nonce-one"' in second and digest_ok(second, "Authorization", PASSWORD)
    assert 'nonce="nonce-two"' in third and digest_ok(third, "Authorization", PASSWORD)
    assert not [line for line in bot.lines if line.get("event") == "registration.failed"]


async def test_a_wrong_password_costs_exactly_two_requests_and_says_so(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    sipp, trace = await sipp_server("registrar_refuses", tmp_path, processes, port)
    # the next attempt after the back-off comes 15-30 s later: beyond this test
    bot = await external_bot(start_bot, port, retry_min=30.0, retry_max=60.0)
    failed = await bot.event("registration.failed", status=401)
    # the registration's transaction is over (the bot gave up): SIPp's call is complete
    assert await sipp.wait(30) == 0, sipp.text
    registers = received(trace, "REGISTER")
    assert len(registers) == 2, registers
    assert digest_ok(registers[1], "Authorization", PASSWORD)
    assert failed["level"] == "warning" and failed["failures"] == 1, failed
    assert PASSWORD not in bot.text


async def test_the_un_register_at_shutdown_comes_after_the_granted_register_in_cseq(
    start_bot: StartBot, processes: list[Process], tmp_path: Path
) -> None:
    """RFC 3261 §10.2.4/§10.3 step 7: a registrar drops an update of the same Call-ID whose CSeq
    is not higher than the last one (Kamailio answers 200 and keeps the binding). The REGISTER
    answered with credentials went out with a raised CSeq: the un-REGISTER must go above it."""
    port = free_port()
    sipp, trace = await sipp_server("registrar_unregister", tmp_path, processes, port)
    bot = await external_bot(start_bot, port)
    await bot.event("registration.succeeded", expires=120)
    assert await bot.stop() == 0, bot.text
    await bot.event("registration.removed", status=200)
    assert await sipp.wait(30) == 0, sipp.text
    registers = received(trace, "REGISTER")
    assert [header(r, "Expires") for r in registers] == ["600", "600", "0"], registers
    assert len({header(r, "Call-ID") for r in registers}) == 1, registers
    cseqs = [int(header(r, "CSeq").split()[0]) for r in registers]
    assert cseqs[0] < cseqs[1] < cseqs[2], cseqs


LONG_MARK = "end-of-a-long-text"
LONG_TEXT = "word " * 300 + LONG_MARK  # 1,518 bytes of body alone: over 1300 on the wire


async def send_long_text(port: int) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "send", "--server", f"127.0.0.1:{port}",
        "--domain", "example.test", "--as", "alice", "--password", "alice-demo",
        "--timeout", "4", LONG_TEXT,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode()


async def test_a_request_over_1300_bytes_goes_over_tcp_to_a_tcp_listener(
    processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    marks = {"TRANSPORT": "TCP", "BODY_MARK": LONG_MARK}
    registrar, _ = await sipp_server("server_any", tmp_path, processes, port, replace=marks)
    tcp, tcp_trace = await sipp_server(
        "server_any", tmp_path, processes, port, replace=marks, transport="t1"
    )
    code, out = await send_long_text(port)
    assert "no reply within" in out, out  # SIPp takes the message; no bot answers it
    assert code == 1, out
    assert await tcp.wait(30) == 0, tcp.text
    assert await registrar.wait(30) == 0, registrar.text
    (message,) = received(tcp_trace, "MESSAGE")
    assert len(message.encode()) > 1300


async def test_a_request_over_1300_bytes_falls_back_to_udp_when_tcp_is_refused(
    processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    marks = {"TRANSPORT": "UDP", "BODY_MARK": LONG_MARK}
    udp, trace = await sipp_server("server_any", tmp_path, processes, port, replace=marks, calls=2)
    code, out = await send_long_text(port)
    assert "no reply within" in out, out
    assert code == 1, out
    assert await udp.wait(30) == 0, udp.text
    (message,) = received(trace, "MESSAGE")
    assert len(message.encode()) > 1300
