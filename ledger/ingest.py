"""Storing usage events: deduplicated per (tenant, event_id), partitions created on demand, and the hourly
rollup updated in the same transaction. The caller owns the transaction: nothing here commits, except
`PartitionKeeper`, whose DDL runs in a short transaction of its own before the data is written."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from ledger import rollup
from ledger.events import COLUMNS, EventRow
from ledger.periods import month_start, next_month_start

PARTITION_LOCK_KEY = 0x70617274  # advisory lock serializing partition DDL between instances


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Per input row: True if it was stored now, False if its id had been seen before."""

    stored: tuple[bool, ...]

    @property
    def accepted(self) -> int:
        return sum(self.stored)

    @property
    def duplicates(self) -> int:
        return len(self.stored) - self.accepted


def partition_name(month: datetime) -> str:
    return f"usage_events_{month.year:04d}_{month.month:02d}"


class PartitionKeeper:
    """Creates the monthly partitions of `usage_events` that a batch needs, once per month per process."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._known: set[datetime] = set()
        self._lock = threading.Lock()

    def ensure(self, moments: Iterable[datetime]) -> None:
        months = {month_start(moment) for moment in moments} - self._known
        if not months:
            return
        with self._lock, self._engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK_KEY})
            for month in sorted(months):
                create_partition(conn, month)
            self._known |= months


def create_partition(conn: Connection, month: datetime) -> None:
    start, end = month_start(month), next_month_start(month)
    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {partition_name(start)} PARTITION OF usage_events "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )


def write_events(conn: Connection, rows: Sequence[EventRow]) -> WriteResult:
    """Store the rows whose (tenant, event_id) is new, and add them to the hourly rollup.
    Repeats within `rows` count as duplicates of their first occurrence."""
    if not rows:
        return WriteResult(())
    first_seen: dict[tuple[int, str], int] = {}
    for index, row in enumerate(rows):
        first_seen.setdefault((row.tenant_id, row.event_id), index)
    candidates = [rows[index] for index in first_seen.values()]

    raw = _driver_connection(conn)
    with raw.cursor() as cursor:
        cursor.execute(
            "INSERT INTO event_ids (tenant_id, event_id, occurred_at) "
            "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) "
            "ON CONFLICT DO NOTHING RETURNING tenant_id, event_id",
            (
                [row.tenant_id for row in candidates],
                [row.event_id for row in candidates],
                [row.occurred_at for row in candidates],
            ),
        )
        new_ids = {(tenant_id, event_id) for tenant_id, event_id in cursor.fetchall()}
        new_rows = [row for row in candidates if (row.tenant_id, row.event_id) in new_ids]
        if new_rows:
            with cursor.copy(f"COPY usage_events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in new_rows:
                    copy.write_row(_copy_values(row))
            _upsert_rollup(cursor, rollup.aggregate(new_rows))

    stored = tuple(
        first_seen[(row.tenant_id, row.event_id)] == index and (row.tenant_id, row.event_id) in new_ids
        for index, row in enumerate(rows)
    )
    return WriteResult(stored)


def _copy_values(row: EventRow) -> tuple[object, ...]:
    """The row as COPY takes it: JSON columns wrapped for jsonb."""
    if row.tags is None and row.usage_raw is None:
        return row
    return tuple(
        Jsonb(value) if name in _JSON_COLUMNS and value is not None else value
        for name, value in zip(COLUMNS, row, strict=True)
    )


_JSON_COLUMNS = frozenset({"tags", "usage_raw"})


def _merge_expression(name: str) -> str:
    if name in rollup.SUM_COLUMNS:
        return f"{name} = usage_hourly.{name} + excluded.{name}"
    if name in rollup.MIN_COLUMNS:
        return f"{name} = LEAST(usage_hourly.{name}, excluded.{name})"
    if name in rollup.MAX_COLUMNS:
        return f"{name} = GREATEST(usage_hourly.{name}, excluded.{name})"
    return f"{name} = tl_array_add(usage_hourly.{name}, excluded.{name})"  # element-wise, migration 0003


def _column_type(name: str) -> str:
    if name in rollup.HISTOGRAM_COLUMNS:
        return "text"  # '{1,0,…}' literals, cast to bigint[] per row: psycopg's nested-list dumper is slow
    if name == "hour":
        return "timestamptz"
    if name in ("tenant_id", *rollup.MIN_COLUMNS, *rollup.MAX_COLUMNS) or name in rollup.SUM_COLUMNS:
        return "numeric" if name == "reported_cost" else "bigint"
    return "smallint" if name == "input_band" else "text"


_UPSERT_ROLLUP = (
    f"INSERT INTO usage_hourly ({', '.join(rollup.ALL_COLUMNS)}) "
    "SELECT "
    + ", ".join(f"{name}::bigint[]" if name in rollup.HISTOGRAM_COLUMNS else name for name in rollup.ALL_COLUMNS)
    + " FROM unnest("
    + ", ".join(f"%s::{_column_type(name)}[]" for name in rollup.ALL_COLUMNS)
    + f") AS batch({', '.join(rollup.ALL_COLUMNS)}) "
    f"ON CONFLICT ({', '.join(rollup.KEY_COLUMNS)}) DO UPDATE SET "
    + ", ".join(
        _merge_expression(name)
        for name in rollup.SUM_COLUMNS + rollup.MIN_COLUMNS + rollup.MAX_COLUMNS + rollup.HISTOGRAM_COLUMNS
    )
)


def _upsert_rollup(cursor: psycopg.Cursor[tuple[object, ...]], deltas: Sequence[rollup.HourlyDelta]) -> None:
    """Add the deltas (sorted by key) to the rollup in one statement, one array parameter per column:
    concurrent writers lock rows in the same order, and the daily rollup's statement-level trigger
    (migration 0003) folds the whole batch at once."""
    columns = list(zip(*(_with_array_literals(delta.as_row()) for delta in deltas), strict=True))
    cursor.execute(
        _UPSERT_ROLLUP,
        [
            [Decimal(value) for value in values] if name == "reported_cost" else list(values)  # sums start at int 0
            for name, values in zip(rollup.ALL_COLUMNS, columns, strict=True)
        ],
    )


def _with_array_literals(row: tuple[object, ...]) -> tuple[object, ...]:
    *scalars, latency_histogram, ttft_histogram = row
    return (*scalars, _array_literal(latency_histogram), _array_literal(ttft_histogram))


def _array_literal(values: object) -> str:
    assert isinstance(values, list)
    return "{" + ",".join(map(str, values)) + "}"


def _driver_connection(conn: Connection) -> psycopg.Connection[tuple[object, ...]]:
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver
