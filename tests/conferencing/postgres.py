"""Fresh databases on the session's PostgreSQL (tests.conferencing.conftest.postgres) for the
tests that need several in one test."""

from __future__ import annotations

import secrets

import asyncpg


async def fresh_database(address: str) -> str:
    """The URL of a new, empty database on the PostgreSQL at ``address``."""
    name = f"fresh_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(f"postgresql://sipbot@{address}/postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return f"postgresql+asyncpg://sipbot@{address}/{name}"


async def terminate(address: str, pid: int) -> None:
    """Kill one server process (``pg_terminate_backend``), as a restart or an admin would."""
    admin = await asyncpg.connect(f"postgresql://sipbot@{address}/postgres")
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
