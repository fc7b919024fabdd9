"""The bot's own IM commands, one module per feature. Importing a module registers its
commands (``bot.commands.command``); third-party modules do the same."""

BUILTIN = (
    "handlers.announce",
    "handlers.help",
    "handlers.meetings",
    "handlers.more",
    "handlers.scheduling",
    "handlers.status",
)
