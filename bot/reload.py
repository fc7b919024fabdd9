"""Config reload while running (SIGHUP, or POST /admin/reload).

Some settings take effect at once; the rest (addresses, the database, the loaded command
modules, logging) keep their running values until a restart, and the reload says which changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config

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
