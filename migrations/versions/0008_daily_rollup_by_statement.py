"""Ingest folds its rows into the daily rollup in its own statement; the triggers leave that to it

An `INSERT … ON CONFLICT DO UPDATE` into `usage_hourly` fires two statement-level triggers, one over the rows
it inserted and one over those it updated, and each merged its rows into `usage_daily` in key order, but one
after the other: a batch whose new hourly rows fall on a later day than its updated ones, running beside a
batch the other way round, locked the two days' rows in opposite orders and deadlocked. The ingest statement
now merges the whole batch into `usage_daily` itself, once, in key order, after its hourly rows
(`ledger.sink.rollup.upsert_daily`). A session that does so sets `tokenledger.daily_rollup` to `by_statement`;
the insert and update triggers then do nothing, and stay for every other writer of `usage_hourly`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GUARDED = ("insert", "update")  # the delete trigger has no ingest counterpart
GUARD = "IF current_setting('tokenledger.daily_rollup', true) = 'by_statement' THEN RETURN NULL; END IF;"


def _migration(file_name: str) -> ModuleType:
    """An earlier migration, whose trigger definitions these are (its file name is not an importable name)."""
    path = Path(__file__).with_name(file_name)
    spec = importlib.util.spec_from_file_location(f"tokenledger_migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _body(event: str) -> str:
    """The trigger function's statement as migration 0005 left it (histograms added inline)."""
    before = _migration("0004_usage_daily_per_scope.py")
    inline = _migration("0005_daily_histograms_added_inline.py")
    _, changes = before.EVENTS[event]
    body: str = before.apply_change(before.SCOPE_KEY, changes)
    for name in before.HISTOGRAMS:
        body = body.replace(
            f"tl_array_add(d.{name}, EXCLUDED.{name})",
            inline._histogram_sum(f"d.{name}", f"EXCLUDED.{name}", before.BUCKETS),
        )
    return body


def _replace(event: str, *, guarded: bool) -> None:
    guard = GUARD if guarded else ""
    op.execute(f"""
CREATE OR REPLACE FUNCTION usage_daily_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {guard}
    {_body(event)};
    RETURN NULL;
END
$$""")


def upgrade() -> None:
    for event in GUARDED:
        _replace(event, guarded=True)


def downgrade() -> None:
    for event in GUARDED:
        _replace(event, guarded=False)
