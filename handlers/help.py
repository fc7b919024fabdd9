"""help: what the sender can do here."""

from __future__ import annotations

import functools

from bot.commands import CommandContext, UsageError, command
from bot.commands.registry import CommandSpec, Registry, is_enabled, is_visible
from bot.commands.replies import shorten
from bot.config import FeaturesConfig

KEPT = 8
"""Listings kept: one per (commands, features, sender's role) in use - two between reloads."""


@command(
    "help",
    aliases=("?", "commands"),
    usage="help [command]",
    example="help my meetings",
    feature="help",
    takes_args=True,
)
async def show_help(ctx: CommandContext) -> str:
    """List the commands you can use, or explain one of them."""
    registry, features = ctx.registry, ctx.config.features
    if not ctx.args:
        kept = _listings.get((registry, registry.version, id(features), ctx.is_admin))
        return kept[1] if kept is not None else _keep_listing(registry, features, ctx.is_admin)
    wanted = ctx.args.lower()
    visible = _visible(registry, registry.version, features, ctx.is_admin)
    spec = next((s for s in visible if wanted in s.words), None)
    if spec is None:
        raise UsageError(f"There is no command '{shorten(ctx.args, 40)}'.")
    lines = [f"{spec.name}: {spec.summary}", f"Usage: {spec.usage}", f"Example: {spec.example}"]
    if spec.details:
        lines.insert(1, spec.details)
    return "\n".join(lines)


# Both are kept, being functions of their arguments only: the registry's commands (its
# ``version`` changes with each one added), the features (a reload brings a new, frozen
# FeaturesConfig: a command turned off shows at once) and whether the sender is an admin.
# The listing, asked for most, is found by the features' identity (_listings).


@functools.lru_cache(maxsize=KEPT)
def _visible(
    registry: Registry, version: int, features: FeaturesConfig, admin: bool
) -> tuple[CommandSpec, ...]:
    return tuple(spec for spec in registry if is_visible(spec, features, admin=admin))


_listings: dict[tuple[Registry, int, int, bool], tuple[FeaturesConfig, str]] = {}
"""(registry, its version, id of the features, admin) -> (those features, their listing). By
the features' identity, not their value: hashing a pydantic model costs more than finding the
listing (the features are held here, so their id stays theirs while kept)."""


def _keep_listing(registry: Registry, features: FeaturesConfig, admin: bool) -> str:
    listing = _listing(registry, registry.version, features, admin)
    _listings[(registry, registry.version, id(features), admin)] = (features, listing)
    while len(_listings) > KEPT:
        del _listings[next(iter(_listings))]  # the oldest
    return listing


def _listing(registry: Registry, version: int, features: FeaturesConfig, admin: bool) -> str:
    lines = ["Commands:"]
    for spec in _visible(registry, version, features, admin):
        note = "" if is_enabled(spec, features) else " (turned off)"
        lines.append(f"  {spec.usage} - {spec.summary}{note}")
    lines.append("Send 'help <command>' for details.")
    return "\n".join(lines)
