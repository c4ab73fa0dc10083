"""Storing usage events: deduplicated per (tenant, event_id), partitions created on demand, and the hourly
rollup updated by the same statement. Everything here runs on one autocommit psycopg connection on the
event loop (the group-commit writer's): a small batch is one statement, its own transaction; a large one is
copied into a staging table and stored by the same statement inside one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from sqlalchemy.dialects import postgresql

from ledger.events.schema import COLUMNS, EventRow, json_text
from ledger.periods import month_start, next_month_start
from ledger.sink import rollup
from ledger.storage.tables import UsageEvent

PARTITION_LOCK_KEY = 0x70617274  # advisory lock serializing partition DDL between instances
AsyncConnection = psycopg.AsyncConnection[tuple[object, ...]]


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
    """Creates the monthly partitions of `usage_events` that a batch needs, once per month per writer."""

    def __init__(self) -> None:
        self._known: set[datetime] = set()

    async def ensure(self, conn: AsyncConnection, moments: Iterable[datetime]) -> None:
        months = {month_start(moment) for moment in moments} - self._known
        if not months:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK_KEY])
            for month in sorted(months):
                await conn.execute(partition_ddl(month).encode())
        self._known |= months


def partition_ddl(month: datetime) -> str:
    start, end = month_start(month), next_month_start(month)
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(start)} PARTITION OF usage_events "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def _postgres_type(name: str) -> str:
    """The PostgreSQL type name of a usage_events column, as psycopg's binary COPY needs it."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(UsageEvent.__table__.c[name].type.compile(dialect=dialect)).split("(")[0].lower()


COLUMN_TYPES = [_postgres_type(name) for name in COLUMNS]  # binary COPY: about 7x less work than text
_JSON_COLUMNS = [position for position, kind in enumerate(COLUMN_TYPES) if kind == "jsonb"]
_DECIMAL_COLUMNS = [position for position, kind in enumerate(COLUMN_TYPES) if kind == "numeric"]
_TIME_COLUMNS = [position for position, kind in enumerate(COLUMN_TYPES) if kind.startswith("timestamp")]
STAGING_TABLE = "ingest_batch"
CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING_TABLE} (LIKE usage_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
# Up to this many rows, a batch travels as the storing statement's one parameter, a JSON array of rows that
# PostgreSQL unpacks: one round trip, which is its own transaction. Larger batches go through binary COPY,
# which psycopg formats in C faster still, at the price of three more round trips.
PARAMETER_BATCH_ROWS = 64


def _store(batch: str) -> str:
    """The statement that stores the rows of relation `batch` (aliased `staged`): it marks the ids, keeps the
    rows whose id was new, and adds exactly those to the hourly rollup and then to the daily one (the writer's
    connection sets `rollup.DAILY_ROLLUP_SETTING`, so the hourly rollup's triggers leave that to it). All of it
    commits together or not at all. It returns the (tenant_id, event_id) of the rows stored."""
    return f"""
WITH new_ids AS (
    INSERT INTO event_ids (tenant_id, event_id, occurred_at)
    SELECT tenant_id, event_id, occurred_at FROM {batch} ORDER BY tenant_id, event_id
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, event_id
), stored AS (
    INSERT INTO usage_events ({", ".join(COLUMNS)})
    SELECT {", ".join(f"staged.{name}" for name in COLUMNS)}
    FROM {batch} JOIN new_ids USING (tenant_id, event_id)
    RETURNING {", ".join(rollup.EVENT_COLUMNS)}
), batch_hourly AS MATERIALIZED (
    {rollup.select_rollup("stored")}
), rolled_up AS (
    {rollup.upsert_hourly("batch_hourly")}
), rolled_up_daily AS (
    {rollup.upsert_daily("batch_hourly", after="rolled_up")}
)
SELECT tenant_id, event_id FROM new_ids
"""


STORE_STAGED = _store(f"{STAGING_TABLE} AS staged")
_FIELDS_OF_JSON_ROW = ", ".join(
    f"(row->>{position})::{kind} AS {name}"
    for position, (name, kind) in enumerate(zip(COLUMNS, COLUMN_TYPES, strict=True))
)
# Raw ($1) placeholder: psycopg would otherwise scan this long text for placeholders at every execution.
_STORE_GIVEN = _store(f"(SELECT {_FIELDS_OF_JSON_ROW} FROM jsonb_array_elements($1::jsonb) AS row) AS staged").encode()
COPY_STAGING = f"COPY {STAGING_TABLE} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"


async def prepare_connection(conn: AsyncConnection) -> None:
    """Create the connection's staging table (temporary: it lasts as long as the connection, emptied at every
    commit), and say that its statements fold into the daily rollup themselves. `conn` is in autocommit mode."""
    await conn.execute(CREATE_STAGING)
    await conn.execute(f"SET {rollup.DAILY_ROLLUP_SETTING} = 'by_statement'")


async def write_events(conn: AsyncConnection, rows: Sequence[EventRow]) -> WriteResult:
    """Store the rows whose (tenant, event_id) is new, and add them to the hourly rollup, in one transaction.
    Repeats within `rows` count as duplicates of their first occurrence. `conn` is in autocommit mode and has
    been through `prepare_connection`."""
    if not rows:
        return WriteResult(())
    first_seen: dict[tuple[int, str], int] = {}
    for index, row in enumerate(rows):
        first_seen.setdefault((row.tenant_id, row.event_id), index)
    unique = [rows[index] for index in first_seen.values()]
    if len(unique) <= PARAMETER_BATCH_ROWS:
        async with psycopg.AsyncRawCursor(conn) as raw:
            await raw.execute(_STORE_GIVEN, [_json_rows(unique)], prepare=True)
            new_ids = set(await raw.fetchall())
    else:
        async with conn.transaction(), conn.cursor() as cursor:
            async with cursor.copy(COPY_STAGING) as copy:
                copy.set_types(COLUMN_TYPES)
                for row in unique:
                    await copy.write_row(row)
            await cursor.execute(STORE_STAGED, prepare=True)
            new_ids = set(await cursor.fetchall())
    stored = tuple(
        first_seen[(row.tenant_id, row.event_id)] == index and (row.tenant_id, row.event_id) in new_ids
        for index, row in enumerate(rows)
    )
    return WriteResult(stored)


def _json_rows(rows: Sequence[EventRow]) -> str:
    """The rows as a JSON array of arrays, the parameter of _STORE_GIVEN. Values whose JSON would lose
    something travel as strings that PostgreSQL casts back: timestamps in RFC 3339, decimals digit for digit,
    and the JSON columns as their own exact JSON text (Decimal numbers included)."""
    values = []
    for row in rows:
        fields: list[object] = list(row)
        for position in _TIME_COLUMNS:
            fields[position] = fields[position].isoformat()  # type: ignore[attr-defined]
        for position in _DECIMAL_COLUMNS:
            if fields[position] is not None:
                fields[position] = str(fields[position])
        for position in _JSON_COLUMNS:
            if fields[position] is not None:
                fields[position] = json_text(fields[position])
        values.append(fields)
    return json.dumps(values, separators=(",", ":"), allow_nan=False)
