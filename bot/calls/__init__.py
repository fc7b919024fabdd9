"""The bot's own calls: INVITE dialogs it originates (bot.calls.invite), the audio calls built
on them (bot.calls.calls), and the router that hands in-dialog requests to their owner."""
