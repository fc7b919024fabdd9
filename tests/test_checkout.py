"""The suite needs nothing outside the checkout but installed Debian packages (issue 14 item 1:
the torture tests once read ``../shared/sip-torture`` and failed on every other machine).

Two guards: every file under tests/ is read for paths that leave the checkout, and a copy of
the checkout, with nothing beside it, collects the whole suite and runs the data-driven tests.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePath

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SYSTEM = frozenset(
    {"usr", "etc", "proc", "dev", "sys", "bin", "sbin", "lib", "lib64", "var", "run"}
)
"""Top-level folders of the operating system and its packages: tests may name them."""
ABSOLUTE = re.compile(r"(?:^|[\s'\"=(<,])/([A-Za-z0-9_.-]+)/")
READ_AS_CODE = frozenset({".py", ".cfg", ".xml", ".yaml", ".yml", ".json", ".toml", ".ini", ".sh"})
"""The files a test runs or hands to a peer; data and notes (.dat, .tsv, .md, .txt) name no
path anything opens."""
CACHES = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".*_cache", ".hypothesis")


def outside_folder(text: str) -> str | None:
    """An absolute path in ``text`` whose top-level folder exists here but is not the system's
    (``/work/shared/…``, ``/home/…``, ``/tmp/…``); URL paths such as ``/admin/bans`` name no
    existing folder and pass."""
    for found in ABSOLUTE.finditer(text):
        top = found.group(1)
        if top not in SYSTEM and Path("/", top).is_dir():
            return f"/{top}/"
    return None


def escapes(relative: PurePath, text: str) -> Iterator[str]:
    """What in ``text``, the content of the file at ``relative`` in the checkout, names a place
    outside the checkout."""
    if "../" in text:
        yield "a relative path up ('../')"
    if (folder := outside_folder(text)) is not None:
        yield f"an absolute path under {folder}"
    if relative.suffix == ".py":
        depth = len(relative.parts) - 1  # Path(__file__).parents[depth] is the checkout
        for node in ast.walk(ast.parse(text)):
            up = parents_index(node)
            if up is not None and up > depth:
                yield f"parents[{up}] (line {node.lineno}) is above the checkout"


def parents_index(node: ast.AST) -> int | None:
    """N for ``x.parents[N]``, or for a chain of N+1 ``.parent``; None for anything else."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    ):
        return node.slice.value
    count = 0
    while isinstance(node, ast.Attribute) and node.attr == "parent":
        count, node = count + 1, node.value
    return count - 1 if count else None


def test_no_file_under_tests_names_a_path_outside_the_checkout() -> None:
    found = {
        str(path.relative_to(ROOT)): problems
        for path in sorted(TESTS.rglob("*"))
        if path.suffix in READ_AS_CODE and path != Path(__file__).resolve()  # this file: samples
        if (problems := list(escapes(path.relative_to(ROOT), read(path))))
    }
    assert found == {}


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def test_the_guard_sees_the_escapes_it_is_for() -> None:
    sample = PurePath("tests", "sip", "test_sample.py")
    assert [*escapes(sample, 'DATA = Path(__file__).resolve().parents[3] / "shared"\n')] == [
        "parents[3] (line 1) is above the checkout"
    ]
    assert [*escapes(sample, "DATA = Path(__file__).parent.parent.parent.parent\n")] == [
        "parents[3] (line 1) is above the checkout"
    ]
    assert [*escapes(sample, "ROOT = Path(__file__).resolve().parents[2]\n")] == []
    assert [*escapes(sample, 'DATA = ROOT / "../shared/sip-torture"\n')] == [
        "a relative path up ('../')"
    ]
    assert outside_folder(f'DOCS = "{ROOT.parent}/PEERS.md"') == f"/{ROOT.parts[1]}/"
    assert outside_folder('get("/admin/bans")') is None
    assert outside_folder('glob("/usr/lib/*/kamailio/modules")') is None


def test_a_copy_with_nothing_beside_it_runs_the_data_driven_tests(tmp_path: Path) -> None:
    """As ``git clone … /tmp/elsewhere/x && scripts/test`` would: the copy collects every test
    module (a missing file read at import or in a parametrization fails here) and runs the
    tests driven by files in tests/data."""
    copy = tmp_path / "elsewhere" / "sipbot"
    shutil.copytree(ROOT, copy, ignore=CACHES)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
         "-k", "test_torture"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", run.stdout) and " error" not in run.stdout, run.stdout
