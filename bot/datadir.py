"""The data directory: the SQLite database (by default) and the control socket live there.

``sipbot run --data-dir DIR``, else ``$XDG_DATA_HOME/sipbot``, else ``~/.local/share/sipbot``
(XDG Base Directory Specification: a relative ``$XDG_DATA_HOME`` is invalid and ignored).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o700
"""Only the bot's user reads the database and opens the control socket."""


def data_dir(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit.absolute()
    base = os.environ.get("XDG_DATA_HOME", "")
    home = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return home / "sipbot"


def prepare(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; a directory we create is private."""
    path.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
    return path
