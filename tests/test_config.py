"""config.yaml: the shipped file, and mistakes answered with file, line, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Config, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_config_is_valid_and_equals_the_embedded_defaults() -> None:
    config = load_config(ROOT / "config.yaml")
    assert config == Config()
    assert config.sip.identity == "sip:bot@example.test"
    assert {(item.transport, item.host, item.port) for item in config.sip.listen} == {
        ("udp", "127.0.0.1", 5060), ("tcp", "127.0.0.1", 5060)}  # fmt: skip
    assert config.registrar.users["alice"].password == "alice-demo"
    assert config.registrar.users["bob"].password == "bob-demo"
    assert config.acl.admins == ("alice@example.test",)  # the demo's alice may try `status`
    assert config.conferences.database_url is None  # sipbot.db in the data directory


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:\n  domain: [unclosed\n", "config.yaml:3: not valid YAML"),
        ("sip:\n  lissten: []\n", "config.yaml:2: sip.lissten: unknown key"),
        (
            "sip:\n  listen:\n    - transport: udp\n      port: lots\n",
            "config.yaml:4: sip.listen[0].port: Input should be a valid integer",
        ),
        (
            "features:\n  help: maybe\n",
            "config.yaml:2: features.help: Input should be a valid boolean",
        ),
        (
            "im:\n  rate_limit:\n    rate: -1\n",
            "config.yaml:3: im.rate_limit.rate: Input should be greater than 0",
        ),
        (
            "registrar:\n  users:\n    alice:\n      display_name: A\n",
            "config.yaml:3: registrar.users.alice.password: required, but missing",
        ),
        (
            "registrar:\n  password: ${SIPBOT_TEST_UNSET_SECRET}\n",
            "config.yaml:2: registrar.password: environment variable SIPBOT_TEST_UNSET_SECRET",
        ),
        (
            "sip:\n  dns:\n    nameservers: [ns.example.com]\n",
            "config.yaml:3: sip.dns.nameservers: 'ns.example.com' is not an IP address",
        ),
        ("- just\n- a list\n", "config.yaml:1: the top level must be a mapping"),
    ],
)
def test_mistakes_name_line_key_and_expectation(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert any(message.startswith(expected) for message in info.value.messages), info.value


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIPBOT_TEST_ALICE", "s3cret")
    config = parse_config(
        "registrar:\n  users:\n    alice:\n      password: ${SIPBOT_TEST_ALICE}\n"
    )
    assert config.registrar.users["alice"].password == "s3cret"


def test_check_config_exits_0_or_2_with_the_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(ROOT / "config.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("sip:\n  mode: sideways\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: sip.mode: Input should be 'embedded' or 'external', got 'sideways'" in err
    assert main(["check-config", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
