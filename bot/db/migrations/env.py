"""Run by Alembic for every command: on the connection bot.db.schema hands over (already
holding the schema lock), never on one of its own."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection = context.config.attributes["connection"]
assert isinstance(connection, Connection)
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
