"""A folder of WAV clips that commands and rules name: names only, nothing outside the folder.

A name is letters, digits, ``_``, ``-`` and ``.``, not starting with ``.`` (no hidden files, no
``..``); ``.wav`` is implied. A clip that is a symlink is played only if it resolves to a file
inside the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.sounds.errors import SoundError
from bot.sounds.sound import Sound
from bot.sounds.wav import read_wav

NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
SUFFIX = ".wav"
LISTED = 20
"""Names a "no such clip" sentence lists at most (a chat line, not a directory listing)."""


class ClipFolder:
    def __init__(self, path: Path):
        self.path = path

    def clip(self, name: str) -> Sound:
        """The clip called ``name`` (``chime`` or ``chime.wav``) read from the folder."""
        stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
        if not NAME.fullmatch(stem):
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise SoundError(
                f"'{shown}' is not a clip name: name a clip from the folder "
                f"(letters, digits, '_', '-' and '.'){self._listing()}"
            )
        path = self._inside(self.path / f"{stem}{SUFFIX}")
        if path is None:
            raise SoundError(f"There is no clip '{stem}'{self._listing()}")
        return read_wav(path)

    def names(self) -> list[str]:
        """The clips that ``clip`` would play, by name, sorted."""
        try:
            entries = list(self.path.iterdir())
        except OSError:
            return []
        return sorted(
            entry.name[: -len(SUFFIX)]
            for entry in entries
            if entry.name.endswith(SUFFIX)
            and NAME.fullmatch(entry.name[: -len(SUFFIX)])
            and self._inside(entry) is not None
        )

    def _inside(self, path: Path) -> Path | None:
        """The real path of ``path`` if it is a file inside the folder (symlinks resolved)."""
        try:
            real = path.resolve(strict=True)
            folder = self.path.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            return None
        return real if real.is_relative_to(folder) and real.is_file() else None

    def _listing(self) -> str:
        names = self.names()
        if not names:
            return ": there are no clips yet (WAV files in the folder of setting sounds.clips)."
        more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
        return f". Clips here: {', '.join(names[:LISTED])}{more}."
