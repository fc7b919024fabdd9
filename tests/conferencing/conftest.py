"""Database URLs for the store's contract tests: a SQLite file, and a real PostgreSQL
(Debian ``postgresql``) started once for the session on a free port and torn down after."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conferencing.postgres import fresh_database
from tests.peers.conftest import free_port


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """host:port of a PostgreSQL server with a trusted user ``sipbot``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(
            "PostgreSQL is not installed; run: apt-get install -y postgresql", pytrace=False
        )
    bin_dir = Path(found[-1]).parent
    # not under pytest's private temporary directory: the postgres user must reach it
    root = Path(tempfile.mkdtemp(prefix="sipbot-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "sipbot", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    pg_ctl = str(bin_dir / "pg_ctl")
    started = subprocess.run(  # -w: pg_ctl itself waits until the server accepts connections
        _as_postgres(
            [
                pg_ctl,
                "-D",
                str(data),
                "-w",
                "-t",
                "30",
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "start",
            ]
        ),  # fmt: skip
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {started.stderr}{log}", pytrace=False)
    yield f"127.0.0.1:{port}"
    subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'conferences.db'}"
        return
    address = request.getfixturevalue("postgres")
    yield await fresh_database(address)
