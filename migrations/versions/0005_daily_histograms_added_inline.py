"""The daily rollup's triggers add latency histograms with an inline ARRAY[...] expression

Merging a row into `usage_daily` added its two histograms with `tl_array_add`, a SQL function whose body is
a subquery (unnest … WITH ORDINALITY); PostgreSQL cannot inline it, so every call ran a small query of its
own, and those calls were a third of the cost of storing a batch of events. The trigger functions are
rebuilt with the element-wise sum written out over the 44 buckets, which PostgreSQL evaluates natively.
What the triggers compute is unchanged. `tl_array_add` and `tl_array_sum` stay for ad-hoc queries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _revision_0004() -> ModuleType:
    """Migration 0004, whose trigger definitions these are (its file name is not an importable name)."""
    path = Path(__file__).with_name("0004_usage_daily_per_scope.py")
    spec = importlib.util.spec_from_file_location("tokenledger_migration_0004", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _histogram_sum(left: str, right: str, buckets: int) -> str:
    return "ARRAY[" + ", ".join(f"{left}[{i}] + {right}[{i}]" for i in range(1, buckets + 1)) + "]"


def _replace_functions(*, inline: bool) -> None:
    before = _revision_0004()
    for event, (_, changes) in before.EVENTS.items():
        body = before.apply_change(before.SCOPE_KEY, changes)
        if inline:
            for name in before.HISTOGRAMS:
                call = f"tl_array_add(d.{name}, EXCLUDED.{name})"
                assert call in body, call
                body = body.replace(call, _histogram_sum(f"d.{name}", f"EXCLUDED.{name}", before.BUCKETS))
        op.execute(f"""
CREATE OR REPLACE FUNCTION usage_daily_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {body};
    RETURN NULL;
END
$$""")


def upgrade() -> None:
    _replace_functions(inline=True)


def downgrade() -> None:
    _replace_functions(inline=False)
