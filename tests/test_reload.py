"""Which settings a config reload applies at once, and which wait for a restart."""

from __future__ import annotations

from bot.config import Config
from bot.reload import merge


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
