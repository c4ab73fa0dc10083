"""Digests of what the reconciler stores: the findings (with their evidence) and the drift rows, of two months,
the demo month and the benchmark month. A change that promises unchanged behaviour must leave every digest as it
was: run this before and after, and compare (diff the --dump files to see what changed).

Each month gets a fresh database on TOKENLEDGER_BENCH_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432), migrated with `tokenledger db upgrade` and dropped at the end:

  demo   tokenledger_digest_demo: what `tokenledger demo` does, at its full size and a fixed "now" (2026-11-20
         09:00 UTC, so the month 2026-10): usage through POST /v1/events, the providers' statements through the
         importers, then the reconciliation run
  bench  tokenledger_digest_bench: benchmarks/reconcile.py's month (events from fixed seeds, loaded with COPY,
         its rollups and statement lines), then `tokenledger reconcile --period 2026-10`

The stored rows are then read with plain SQL. The columns that say when a row was written or by which run
(surrogate ids, the tenant's id, first/last seen, computed at) are left out; the others are written as canonical
JSON, one row a line, rows in the order of their natural key: keys sorted, numeric columns as strings, JSON
values' numbers digit for digit as stored. A digest is the sha256 of that text. What could change the figures
without the code changing is pinned: TOKENLEDGER_* variables of the environment are ignored, and the data
directory is a new, empty one (prices come from the genai-prices snapshot installed, not one that `tokenledger
prices update` stored).

Usage: python -m benchmarks.reconcile_digest [--events 1000000] [--dump DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import set_json_loads
from sqlalchemy.engine import make_url

from benchmarks.common import conninfo
from benchmarks.reconcile import PERIOD as BENCH_PERIOD
from benchmarks.reconcile import load as load_bench_month
from ledger.demo.setup import BackgroundServer, ensure_demo_tenant, populate
from ledger.settings import Settings
from ledger.sink.ingest import partition_ddl

# The one place this script reaches into ledger's modules (update these imports when they move). The demo month
# needs a fixed "now", which `tokenledger demo` does not take (it reconciles the month before the wall clock's),
# so it is set up with the functions behind that command; the benchmark month's events need their partition of
# usage_events, created with ingest's own DDL as benchmarks/reconcile.py does.
from ledger.storage.database import create_db_engine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
DEMO_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BENCH_TENANT = "digest-bench"
VOLATILE = {
    "findings": {"id", "tenant_id", "first_seen", "last_seen", "last_run_id"},
    "drift_rows": {"tenant_id", "computed_at"},
}
"""Per table, the columns that record when a row was written, by which run, or a surrogate id."""
NATURAL_KEY = {
    "findings": ("fingerprint",),
    "drift_rows": ("period_start", "provider", "account", "model"),
}


@dataclass(frozen=True)
class Digest:
    month: str
    """The month as the table of digests names it."""
    prefix: str
    """The month as the dump's file names name it."""
    table: str
    rows: int
    text: bytes

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.table}.json"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text).hexdigest()


class FixedClock:
    def now(self) -> datetime:
        return DEMO_NOW


# ---------------------------------------------------------------- databases and the command line


def server_url() -> str:
    server = os.environ.get("TOKENLEDGER_BENCH_DATABASE_URL") or DEFAULT_SERVER
    return make_url(server).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """A new database on the server, migrated by `tokenledger db upgrade`; dropped when the block ends."""
    admin = conninfo(server_url())
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url()).set(database=name).render_as_string(hide_password=False)
    try:
        tokenledger(url, "db", "upgrade")
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tokenledger(url: str, *args: str) -> str:
    """Run the `tokenledger` command on the database at `url`; its output, or SystemExit with it if it fails."""
    command = shutil.which("tokenledger", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if command is None:
        raise SystemExit("the tokenledger command is not installed (pip install -e .)")
    env = {**os.environ, "TOKENLEDGER_DATABASE_URL": url, "TOKENLEDGER_SCHEDULER_ENABLED": "false"}
    done = subprocess.run([command, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"tokenledger {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- the two months


def demo_month(url: str, work_dir: Path) -> str:
    """Populate and reconcile the demo month; its label."""
    settings = Settings(database_url=url, scheduler_enabled=False)
    engine = create_db_engine(url, pool_size=4)
    server = BackgroundServer(settings, engine, "127.0.0.1", free_port())
    server.start()
    try:
        keys = ensure_demo_tenant(engine)
        return populate(settings, engine, server.base_url, keys, work_dir, say, clock=FixedClock()).period
    finally:
        server.stop()
        engine.dispose()


def bench_month(url: str, events: int) -> None:
    tokenledger(url, "tenants", "create", BENCH_TENANT)
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM tenants WHERE name = %s", (BENCH_TENANT,)).fetchone()
        assert row is not None
        conn.execute(partition_ddl(BENCH_PERIOD.start))
    say(f"loading {events:,} events with COPY …")
    load_bench_month(url, row[0], events)
    say("reconciling …")
    tokenledger(url, "reconcile", "--period", BENCH_PERIOD.label, "--tenant", BENCH_TENANT)


def say(line: str) -> None:
    print(f"  {line.strip()}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- reading and digesting


def digests(url: str, month: str, prefix: str) -> list[Digest]:
    """The canonical text of each table's rows, after checking that every reconciliation run succeeded."""
    with psycopg.connect(conninfo(url), options="-c TimeZone=UTC") as conn:
        set_json_loads(partial(json.loads, parse_float=Decimal), conn)  # numbers digit for digit
        runs = conn.execute("SELECT status, error FROM reconciliation_runs").fetchall()
        if not runs or any(status != "succeeded" for status, _ in runs):
            raise SystemExit(f"{month}: the reconciliation did not succeed: {runs}")
        return [table_digest(conn, month, prefix, table) for table in VOLATILE]


def table_digest(conn: psycopg.Connection[Any], month: str, prefix: str, table: str) -> Digest:
    cursor = conn.execute(f"SELECT * FROM {table}")
    names = [column.name for column in cursor.description or ()]
    rows = [
        {name: plain(value) for name, value in zip(names, row, strict=True) if name not in VOLATILE[table]}
        for row in cursor.fetchall()
    ]
    rows.sort(key=lambda row: tuple(row[name] for name in NATURAL_KEY[table]))
    text = "[\n" + ",\n".join(canonical_json(row) for row in rows) + "\n]\n"
    return Digest(month, prefix, table, len(rows), text.encode())


def plain(value: object) -> object:
    """A column's value for canonical JSON: numeric as its string (scale kept), instants in UTC, dates ISO."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces; a Decimal (a JSON value's number) written as the number it is."""
    if isinstance(value, dict):
        items = (f"{json.dumps(key, ensure_ascii=False)}:{canonical_json(value[key])}" for key in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)  # str, int, bool, None; anything else fails


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the benchmark month")
    parser.add_argument("--dump", type=Path, help="write each table's canonical JSON into this directory")
    args = parser.parse_args()
    server = server_url()  # read before the environment's TOKENLEDGER_* variables are set aside
    for name in [name for name in os.environ if name.startswith("TOKENLEDGER_")]:
        del os.environ[name]
    os.environ["TOKENLEDGER_BENCH_DATABASE_URL"] = server
    results: list[Digest] = []
    with tempfile.TemporaryDirectory(prefix="tokenledger-digest-") as data_dir:
        os.environ["TOKENLEDGER_DATA_DIR"] = data_dir  # for the commands run and for this process's settings
        with fresh_database("tokenledger_digest_demo") as url:
            started = time.perf_counter()
            say("demo: populating and reconciling as `tokenledger demo` does …")
            demo = f"demo {demo_month(url, Path(data_dir) / 'demo')}"
            results += digests(url, demo, "demo")
            say(f"{demo}: {time.perf_counter() - started:.0f} s")
        bench = f"bench {BENCH_PERIOD.label} ({args.events:,} events)"
        with fresh_database("tokenledger_digest_bench") as url:
            started = time.perf_counter()
            say(f"{bench}:")
            bench_month(url, args.events)
            results += digests(url, bench, f"bench-{args.events}")
            say(f"{bench}: {time.perf_counter() - started:.0f} s")
    width = max(len(digest.month) for digest in results)
    print(f"{'month':<{width}}  {'table':<10} {'rows':>6}  sha256")
    for digest in results:
        print(f"{digest.month:<{width}}  {digest.table:<10} {digest.rows:>6}  {digest.sha256}")
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for digest in results:
            (args.dump / digest.name).write_bytes(digest.text)
        print(f"canonical JSON written to {args.dump}/")


if __name__ == "__main__":
    main()
