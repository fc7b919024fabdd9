"""The tables the store had before migrations: the conferences (bot.conferencing.store),
the c3p schedules (bot.conferencing.c3p_schedules) and what the automatic announcements
fired (bot.announcements.fired).

A database made by the create-all of older versions is adopted here: only the tables it
lacks are created (an old one may predate announcements_fired or c3p_schedules), its rows are
left alone, and Alembic then records this revision in ``alembic_version``.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _missing(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("conferences"):
        op.create_table(
            "conferences",
            sa.Column("conference_id", sa.String(64), primary_key=True),
            sa.Column("organizer", sa.String(255), nullable=False),
            sa.Column("subject", sa.String(255), nullable=False),
            sa.Column("uri", sa.String(512), nullable=False),
            sa.Column("access_level", sa.String(32), nullable=False),
            sa.Column("start", sa.DateTime(timezone=True), nullable=False),
            sa.Column("end", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expiry", sa.DateTime(timezone=True), nullable=False),
            sa.Column("dial_in", sa.String(512), nullable=False),
        )
        op.create_index("ix_conferences_organizer", "conferences", ["organizer"])
    if _missing("c3p_schedules"):
        op.create_table(
            "c3p_schedules",
            sa.Column("organizer", sa.String(255), primary_key=True),
            sa.Column("conference_id", sa.String(64), primary_key=True),
            sa.Column("start", sa.DateTime(timezone=True), nullable=False),
            sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        )
    if _missing("announcements_fired"):
        op.create_table(
            "announcements_fired",
            sa.Column("rule", sa.String(255), primary_key=True),
            sa.Column("occurrence", sa.String(700), primary_key=True),
            sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_announcements_fired_fired_at", "announcements_fired", ["fired_at"])


def downgrade() -> None:
    op.drop_table("announcements_fired")
    op.drop_table("c3p_schedules")
    op.drop_table("conferences")
