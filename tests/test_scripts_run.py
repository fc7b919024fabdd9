"""scripts/run installs only when pyproject.toml changed (a stand-in .venv records what runs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDER = '#!/bin/sh\necho "$(basename "$0") $*" >>"$(dirname "$(dirname "$0")")/calls"\n'


def checkout(tmp_path: Path) -> Path:
    """scripts/run and pyproject.toml, beside a .venv whose python and sipbot only record
    how they were called."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run", tmp_path / "scripts" / "run")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "sipbot"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def run(root: Path, *args: str) -> list[str]:
    calls = root / ".venv" / "calls"
    calls.unlink(missing_ok=True)
    done = subprocess.run([root / "scripts" / "run", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return calls.read_text().splitlines()


def test_installs_once_then_only_when_pyproject_changes(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    install = "python -m pip install -q --disable-pip-version-check -e ."
    assert run(root, "--data-dir", "d") == [install, "sipbot run --data-dir d"]
    assert run(root) == ["sipbot run"]
    assert run(root) == ["sipbot run"]
    with (root / "pyproject.toml").open("a") as file:
        file.write("\n# changed\n")
    assert run(root) == [install, "sipbot run"]
    assert run(root) == ["sipbot run"]
