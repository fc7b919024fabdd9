"""The revisions, oldest first by ``down_revision`` (Alembic ignores this file)."""
