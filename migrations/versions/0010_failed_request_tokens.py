"""The rollups keep the tokens of failed requests (429 and 5xx) apart

A failed request should not be billed; the reconciler compares the statements with the tokens of the other
requests and uses the failed ones' prompt tokens to recognise input billed for failures (a statement without
request counts). Both rollups gain four sums (input, cache-read, cache-creation and output tokens of failed
requests), the daily rollup's triggers add them, and the hourly rollup is filled in from the stored events
(the triggers carry it to the daily one).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FAILED = {
    "failed_input_tokens": "input_tokens",
    "failed_cache_read_input_tokens": "cache_read_input_tokens",
    "failed_cache_creation_input_tokens": "cache_creation_input_tokens",
    "failed_output_tokens": "output_tokens",
}
FAILED_WHERE = "(status_code = 429 OR status_code BETWEEN 500 AND 599)"
# The hourly rollup's key as ledger/rollup.py computed it at the time of this migration.
HOURLY_KEY = {
    "tenant_id": "tenant_id",
    "hour": "date_trunc('hour', occurred_at, 'UTC')",
    "provider": "provider",
    "account": "coalesce(account, '')",
    "api_key_id": "coalesce(api_key_id, '')",
    "request_model": "request_model",
    "response_model": "response_model",
    "app": "coalesce(app, '')",
    "service_tier": "coalesce(service_tier, '')",
    "input_band": "width_bucket(input_tokens - 1, ARRAY[100000, 128000, 200000, 272000])::smallint",
}


def _revision(name: str) -> ModuleType:
    """An earlier migration, whose trigger definitions these extend (its file name is not an importable name)."""
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"tokenledger_migration_{name[:4]}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _replace_functions(*, with_failed: bool) -> None:
    """The daily triggers as 0008 left them (histograms added inline; the insert and update triggers leave the
    ingest statement's own rows to it), summing the failed requests' tokens too when `with_failed`."""
    scoped = _revision("0004_usage_daily_per_scope.py")
    by_statement = _revision("0008_daily_rollup_by_statement.py")
    if with_failed:
        scoped.SUMS = (*scoped.SUMS, *FAILED)
    for event, (_, changes) in scoped.EVENTS.items():
        body = scoped.apply_change(scoped.SCOPE_KEY, changes)
        for name in scoped.HISTOGRAMS:
            call = f"tl_array_add(d.{name}, EXCLUDED.{name})"
            inline = "ARRAY[" + ", ".join(f"d.{name}[{i}] + EXCLUDED.{name}[{i}]" for i in range(1, scoped.BUCKETS + 1))
            body = body.replace(call, inline + "]")
        op.execute(f"""
CREATE OR REPLACE FUNCTION usage_daily_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {by_statement.GUARD if event in by_statement.GUARDED else ""}
    {body};
    RETURN NULL;
END
$$""")


def upgrade() -> None:
    for table in ("usage_hourly", "usage_daily"):
        op.execute(
            f"ALTER TABLE {table} " + ", ".join(f"ADD COLUMN {name} bigint NOT NULL DEFAULT 0" for name in FAILED)
        )
    _replace_functions(with_failed=True)
    keys = ", ".join(f"{expression} AS {name}" for name, expression in HOURLY_KEY.items())
    sums = ", ".join(f"coalesce(sum({column}), 0) AS {name}" for name, column in FAILED.items())
    positions = ", ".join(str(n) for n in range(1, len(HOURLY_KEY) + 1))
    op.execute(
        f"UPDATE usage_hourly AS h SET {', '.join(f'{name} = f.{name}' for name in FAILED)} "
        f"FROM (SELECT {keys}, {sums} FROM usage_events WHERE {FAILED_WHERE} GROUP BY {positions}) AS f "
        f"WHERE {' AND '.join(f'h.{name} = f.{name}' for name in HOURLY_KEY)}"
    )


def downgrade() -> None:
    _replace_functions(with_failed=False)
    for table in ("usage_hourly", "usage_daily"):
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"DROP COLUMN {name}" for name in FAILED))
