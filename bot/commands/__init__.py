"""IM commands: the registry that handlers declare into, and the dispatcher that runs them."""

from bot.commands.context import CommandContext, UsageError
from bot.commands.registry import REGISTRY, CommandSpec, command

__all__ = ["REGISTRY", "CommandContext", "CommandSpec", "UsageError", "command"]
