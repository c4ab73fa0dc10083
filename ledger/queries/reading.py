"""How the reconciler reads: big reads as plain tuples in PostgreSQL's binary format, and the planner settings
its aggregating queries run with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

AGGREGATE_WORK_MEM = "128MB"
AGGREGATE_IN_MEMORY = text(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
"""Aggregate in memory, not on disk."""
NO_JIT = text("SET LOCAL jit = off")
"""For queries whose estimated cost calls for JIT, whose compiling costs more than it saves."""
HASH_GROUPS = text("SET LOCAL enable_sort = off")
SORT_GROUPS = text("SET LOCAL enable_sort = DEFAULT")


def read_rows(session: Session, query: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a query (psycopg's `%(name)s` placeholders) as plain tuples, on the session's connection and
    in its transaction, in PostgreSQL's binary format: for the reconciler's big reads, some 10^5 values a run,
    without SQLAlchemy's result objects and without parsing every integer and numeric from text."""
    driver = session.connection().connection.driver_connection
    assert driver is not None  # a checked-out connection
    with driver.cursor(binary=True) as cursor:
        rows: list[tuple[Any, ...]] = cursor.execute(query, params).fetchall()
    return rows


def column_positions(columns: tuple[str, ...]) -> dict[str, int]:
    """Each name of a list of columns (a query's SELECT list, in order) with its position in a row of them."""
    positions = {name: position for position, name in enumerate(columns)}
    assert len(positions) == len(columns), f"a column name is repeated in {columns}"
    return positions
