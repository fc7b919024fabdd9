"""The store's database: its schema as Alembic migrations shipped in the package
(bot.db.migrations), applied at start under a lock so instances starting together on one
PostgreSQL do not race (bot.db.schema), and the listing-cache invalidations those instances
send each other over PostgreSQL LISTEN/NOTIFY (bot.db.notify)."""

import logging

# before any alembic import (it logs its plugins then): the bot's own db.upgraded/db.adopted
# events say what a migration did, once
logging.getLogger("alembic").setLevel(logging.WARNING)
