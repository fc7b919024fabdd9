"""The databases of the store contract (SQLite, and a real PostgreSQL started for the session):
the announcements' table runs the same contract on both."""

from tests.conferencing.conftest import database_url, postgres

__all__ = ["database_url", "postgres"]
