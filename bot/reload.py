"""Config reload while running (a change of the file, SIGHUP, or POST /admin/reload): one path,
parse -> validate -> build -> swap (bot.runtime.Runtime.reload_file), whatever triggered it.

Some settings take effect at once; the rest (addresses, the database, the loaded command
modules, logging) keep their running values until a restart, and the reload says which changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypedDict

from bot.config import Config

Result = Literal["ok", "invalid", "restart_needed"]
"""ok: applied whole; restart_needed: the live part applied, the settings named wait for a
restart; invalid: refused, nothing changed."""
RESULTS: tuple[Result, ...] = ("ok", "invalid", "restart_needed")
Trigger = Literal["file", "sighup", "api", "direct"]
"""What asked for the reload: the file watcher, SIGHUP, POST /admin/reload, or a caller."""


class LastReload(TypedDict):
    """The latest reload, as /admin/status shows it (JSON-ready)."""

    when: str
    """ISO 8601, UTC."""
    trigger: Trigger
    result: Result
    errors: list[str]
    """Why it was refused (file:line, key path, problem); empty unless invalid."""
    restart_needed: list[str]
    """Changed settings waiting for a restart (``section`` or ``section.field``)."""


def record(
    trigger: Trigger, errors: list[str] | None = None, restart_needed: tuple[str, ...] = ()
) -> LastReload:
    result: Result = "invalid" if errors else ("restart_needed" if restart_needed else "ok")
    return LastReload(
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        trigger=trigger,
        result=result,
        errors=list(errors or ()),
        restart_needed=list(restart_needed),
    )


LIVE = {
    "features": None,
    "acl": None,
    "im": None,
    "security": None,
    "registrar": ("users", "max_bindings"),
    "sip": ("trusted_proxies",),  # the identity gate and the ban exemptions, swapped whole
    "conferences": ("cache_seconds", "time_zone"),
    "calls": None,  # bot.calls: for the calls made from then on
    "media": None,
    "sounds": None,  # bot.sounds: voice, speed, silences, the clip folder
    "announcements": None,  # who may announce, and the rules (rescheduled at once)
    "shutdown": None,  # read when the bot stops
}
"""Sections that apply live: wholly (None) or only the fields named."""


@dataclass(frozen=True, slots=True)
class Reload:
    config: Config
    """What the bot now runs with: the new live settings, the old everything else."""
    restart_needed: tuple[str, ...]
    """Changed settings (``section`` or ``section.field``) that wait for a restart."""


def merge(running: Config, new: Config) -> Reload:
    sections: dict[str, object] = {}
    restart: list[str] = []
    for name in Config.model_fields:
        old_section, new_section = getattr(running, name), getattr(new, name)
        live = LIVE.get(name, ())
        if live is None:
            sections[name] = new_section
            continue
        kept = {
            field: getattr(old_section, field)
            for field in type(old_section).model_fields
            if field not in live
        }
        restart += [
            f"{name}.{field}"
            for field, value in kept.items()
            if getattr(new_section, field) != value
        ]
        sections[name] = new_section.model_copy(update=kept)
    return Reload(Config.model_validate(sections), tuple(restart))
