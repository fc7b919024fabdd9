"""Which settings a config reload applies at once, and which wait for a restart."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import yaml

from bot.config import Config, load_config
from bot.reload import merge
from bot.runtime import Runtime

TOKEN = "reload-test-token"


def test_live_settings_apply_and_the_rest_is_kept_and_reported() -> None:
    running = Config()
    new = Config(
        features={"help": False},
        acl={"allowed_domains": ["example.test", "partner.test"]},
        im={"rate_limit": {"rate": 0.5, "burst": 2}},
        security={"auth": {"max_failures": 3}},
        registrar={"users": {"carol": {"password": "carol-pw"}}, "min_expires": 120},
        conferences={"cache_seconds": 0, "database_url": "sqlite+aiosqlite:///other.db"},
        sip={"domain": "other.test"},
        logging={"level": "DEBUG"},
    )
    outcome = merge(running, new)
    config = outcome.config
    assert not config.features.help
    assert config.acl.allowed_domains == ("example.test", "partner.test")
    assert config.im.rate_limit.rate == 0.5 and config.security.auth.max_failures == 3
    assert list(config.registrar.users) == ["carol"] and config.conferences.cache_seconds == 0
    # kept until a restart, and said so
    assert config.sip.domain == "example.test" and config.registrar.min_expires == 60
    assert config.conferences.database_url == running.conferences.database_url
    assert config.logging.level == "INFO"
    assert set(outcome.restart_needed) == {
        "sip.domain",
        "registrar.min_expires",
        "conferences.database_url",
        "logging.level",
    }


def test_reloading_the_same_config_changes_nothing() -> None:
    outcome = merge(Config(), Config())
    assert outcome.config == Config() and outcome.restart_needed == ()


async def test_a_reload_that_fails_in_the_middle_changes_nothing(tmp_path: Path) -> None:
    """Item 14: an unknown conferences.time_zone used to raise after the ACL and the users had
    changed (and the admin API answered 500). Now every piece is built first: nothing moves,
    and POST /admin/reload answers 422 with the reason."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'db'}"
    base = {
        "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
        "conferences": {"database_url": database},
        "admin": {"port": 0, "token": TOKEN},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base))
    runtime = Runtime(load_config(path), config_path=path)
    await runtime.start()
    try:
        bad = {
            **base,
            "acl": {"allowed_domains": ["evil.test"]},
            "registrar": {"users": {"mallory": {"password": "mallory-pw"}}},
            "security": {"auth": {"allow": ["0.0.0.0/0"]}},
            "conferences": {"database_url": database, "time_zone": "Mars/Olympus_Mons"},
        }
        path.write_text(yaml.safe_dump(bad))
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"http://127.0.0.1:{runtime.admin.port}/admin/reload",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response:
                assert response.status == 422
                assert "Mars/Olympus_Mons" in str(await response.json())
        config = runtime.config
        assert config.acl.allowed_domains == Config().acl.allowed_domains
        assert set(config.registrar.users) == {"alice", "bob"}
        assert runtime.gate.settings.passwords.keys() == {"alice", "bob"}
        assert runtime.gate.settings.never_ban == []
        assert str(runtime.services.zone) == "UTC"
    finally:
        await runtime.stop()


def test_trusted_proxies_and_registrar_caps_apply_live() -> None:
    new = Config(sip={"trusted_proxies": ["192.0.2.1"]}, registrar={"max_bindings": 3})
    outcome = merge(Config(), new)
    assert outcome.config.sip.trusted_proxies == ("192.0.2.1",)
    assert outcome.config.registrar.max_bindings == 3 and outcome.restart_needed == ()


async def test_a_reload_rebuilds_the_identity_gate_and_the_ban_exemptions(
    tmp_path: Path,
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'db'}"
    runtime = Runtime(Config(conferences={"database_url": database}))
    runtime.reload(
        Config(
            conferences={"database_url": database},
            sip={"trusted_proxies": ["192.0.2.1"]},
            security={"auth": {"allow": ["198.51.100.0/24"], "max_failures": 1}},
        )
    )
    assert runtime.gate.settings.proxies == {"192.0.2.1"}
    for address in ("192.0.2.1", "198.51.100.7", "203.0.113.9"):
        runtime.guard.failed(address, "alice", "wrong credentials", 0.0)
    assert [ban.address for ban in runtime.guard.bans(0.0)] == ["203.0.113.9"]
