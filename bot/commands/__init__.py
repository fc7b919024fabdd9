"""IM commands: the registry that handlers declare into, and the dispatcher that runs them."""

from bot.commands.context import CommandContext, Sender
from bot.commands.registry import REGISTRY, CommandSpec, command

__all__ = ["REGISTRY", "CommandContext", "CommandSpec", "Sender", "command"]
