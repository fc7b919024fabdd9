"""``sipbot`` as a user runs it: check-config finds what run would trip on, run never shows a
traceback for a config mistake, send needs only what a client needs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config
from tests.commands.chat import chat_bot
from tests.peers.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]

MISTAKES = [
    ("conferences:\n  time_zone: Mars/Olympus\n", "config.yaml:2: conferences.time_zone: "),
    ("conferences:\n  database_url: nosuchdb://x\n", "config.yaml:2: conferences.database_url: "),
    (
        "sip:\n  listen:\n    - transport: udp\n    - transport: tls\n      port: 5061\n",
        "config.yaml:4: sip.listen[1].transport: a tls listener needs a certificate",
    ),
    (
        "commands:\n  entry_points: false\n  modules:\n    - handlers.help\n    - no.such.module\n",
        "config.yaml:5: commands.modules[1]: no such module on the Python path",
    ),
]


def sipbot(
    *args: str, cwd: Path, timeout: float = 30, **env: str
) -> subprocess.CompletedProcess[str]:
    """``sipbot ARGS`` in ``cwd`` (no ./config.yaml there unless the test wrote one)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(cwd / "xdg")},
    )


@pytest.mark.parametrize(("text", "expected"), MISTAKES)
def test_check_config_and_run_name_file_line_and_key_without_a_traceback(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "config.yaml").write_text(text)
    checked = sipbot("check-config", cwd=tmp_path)
    assert checked.returncode == 2 and checked.stderr.startswith(expected), checked.stderr
    ran = sipbot("run", cwd=tmp_path)
    assert ran.returncode == 2 and ran.stderr.startswith(expected), ran.stderr
    assert "Traceback" not in checked.stderr + ran.stderr


def test_the_messages_say_what_would_be_right() -> None:
    messages = {}
    for text, _ in MISTAKES:
        with pytest.raises(ConfigError) as info:
            parse_config(text)
        messages[text] = str(info.value)
    zone, database, tls, module = messages.values()
    assert "not a known IANA time zone (such as UTC or Europe/Paris), got 'Mars/Olympus'" in zone
    assert "sqlite+aiosqlite://" in database and "postgresql+asyncpg://" in database
    with pytest.raises(ConfigError) as info:  # a URL may hold a password: never repeated
        parse_config("conferences:\n  database_url: mysql://bot:s3cret@db/x\n")
    assert "s3cret" not in str(info.value)
    assert "set sip.tls.certfile" in tls
    assert (
        "no such module on the Python path (sys.path) of this sipbot, got 'no.such.module'"
        in module
    )


def test_plain_database_urls_mean_the_asyncio_drivers() -> None:
    config = parse_config("conferences:\n  database_url: sqlite:////var/lib/sipbot/x.db\n")
    assert config.conferences.database_url == "sqlite+aiosqlite:////var/lib/sipbot/x.db"
    config = parse_config("conferences:\n  database_url: postgresql://bot:pw@db/sipbot\n")
    assert config.conferences.database_url == "postgresql+asyncpg://bot:pw@db/sipbot"


async def test_an_admin_named_without_a_domain_is_of_the_bots_domain(tmp_path: Path) -> None:
    config = parse_config("sip:\n  domain: example.test\nacl:\n  admins: [alice, sip:bob@x.test]\n")
    assert config.acl.admins == ("alice@example.test", "bob@x.test")
    chat = await chat_bot(tmp_path, config)
    try:
        assert "uptime: 42 s" in await chat.say("alice", "status")
    finally:
        await chat.store.close()


def test_run_says_what_is_wrong_when_it_cannot_start(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "conferences:\n  database_url: sqlite+aiosqlite:////nonexistent/dir/x.db\n"
        f"sip:\n  listen: [{{transport: udp, host: 127.0.0.1, port: {free_port()}}}]\n"
    )
    ran = sipbot("run", cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr.endswith(
        "sipbot: cannot start: /nonexistent/dir: no such directory for the SQLite database\n"
    )
    assert "Traceback" not in ran.stderr


SERVER_ONLY = "admin:\n  token: ${SIPBOT_TEST_UNSET_TOKEN}\nconferences:\n  time_zone: UTC\n"


def test_send_reads_only_what_a_client_needs(tmp_path: Path) -> None:
    """An unset server secret is none of the client's business: it gets as far as sending."""
    (tmp_path / "config.yaml").write_text(SERVER_ONLY)
    port = free_port()
    sent = sipbot(
        "send", "--server", f"127.0.0.1:{port}", "--password", "x", "--timeout", "1", "help",
        cwd=tmp_path,
    )  # fmt: skip
    assert sent.returncode == 1, sent.stderr
    assert f"nothing listens at 127.0.0.1:{port}" in sent.stderr


def test_send_timeout_covers_registration_and_says_what_the_silence_may_be(
    tmp_path: Path,
) -> None:
    """A server that takes the datagrams and never answers (a banned address is dropped so)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        sent = sipbot(
            "send", "--server", f"127.0.0.1:{port}", "--domain", "example.test", "--password",
            "x", "--timeout", "3", "help", cwd=tmp_path,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert sent.returncode == 1 and 2.9 < elapsed < 6, (elapsed, sent.stderr)
    assert sent.stderr == (
        f"sipbot send: no SIP server answered at 127.0.0.1:{port} within 3 s (is `sipbot run` "
        "running, or is this address banned? `sipbot bans` tells)\n"
    )


def test_send_to_a_port_nothing_listens_on_says_so_at_once(tmp_path: Path) -> None:
    """RFC 3261 §18.4: the ICMP port unreachable is a failure to send, reported at once."""
    port = free_port()
    started = time.monotonic()
    sent = sipbot(
        "send", "--server", f"127.0.0.1:{port}", "--password", "x", "--timeout", "10", "help",
        cwd=tmp_path,
    )  # fmt: skip
    assert sent.returncode == 1 and time.monotonic() - started < 5, sent.stderr
    assert sent.stderr == (
        f"sipbot send: nothing listens at 127.0.0.1:{port} (is `sipbot run` running?)\n"
    )


def test_send_help_describes_every_option(tmp_path: Path) -> None:
    shown = sipbot("send", "--help", cwd=tmp_path).stdout
    for option in ("text", "--config", "--timeout", "--as", "--server", "--domain", "--password"):
        assert f"  {option}" in shown, option
    assert "registration, the message and" in shown
    assert "what to say to the bot" in shown


def test_a_bad_server_option_is_a_usage_error(tmp_path: Path) -> None:
    sent = sipbot("send", "--server", "localhost", "--password", "x", "hi", cwd=tmp_path)
    assert sent.returncode == 2 and "--server: give HOST:PORT" in sent.stderr


def test_the_readmes_check_config_example_is_what_the_tool_prints(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    broken = re.search(r"With this `broken\.yaml`:\n\n```yaml\n(.*?)```", readme, re.S)
    shown = re.search(
        r"```console\n\$ sipbot (check-config --config broken\.yaml)\n(.*?)```", readme, re.S
    )
    assert broken is not None and shown is not None
    (tmp_path / "broken.yaml").write_text(broken.group(1))
    checked = sipbot(*shown.group(1).split(), cwd=tmp_path)
    assert checked.returncode == 2
    assert checked.stdout + checked.stderr == shown.group(2)
