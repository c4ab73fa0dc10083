"""The house's dependency rules hold: the contracts in pyproject.toml's [tool.importlinter] (the report builds on
the ledger and never the other way, the rooms import only those below them, importers know the statement-line
types only, the reconcile core is pure) are checked by import-linter over the installed packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def test_every_dependency_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout
