"""Snapshot files of rendered reports: `tests/reports/snapshots/<name>`. A mismatch fails with a unified diff;
set TOKENLEDGER_UPDATE_SNAPSHOTS=1 to rewrite the files from the current output."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_VARIABLE = "TOKENLEDGER_UPDATE_SNAPSHOTS"


def assert_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get(UPDATE_VARIABLE):
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}; run with {UPDATE_VARIABLE}=1 to create it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"snapshots/{name}",
                tofile="rendered",
            )
        )
        pytest.fail(f"{name} differs from its snapshot ({UPDATE_VARIABLE}=1 to accept):\n{diff}", pytrace=False)
