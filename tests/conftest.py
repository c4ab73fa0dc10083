"""Test fixtures on a real PostgreSQL: the server named by TOKENLEDGER_TEST_DATABASE_URL (a fresh database
is created on it for the run and dropped after), or else an embedded server started once per run."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from ledger.access import auth
from ledger.server import create_app
from ledger.settings import Settings
from ledger.storage.database import create_db_engine, session_factory, start_embedded_postgres, upgrade
from tests.openai_admin_api import openai_admin_api

pytest_plugins = ["tests.months"]  # the reconciled months shared by the report, API and alert tests


def _fresh_database(server_url: str) -> tuple[str, str]:
    """Create an empty database on the server; return its URL and the admin URL to drop it later."""
    admin_url = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"tokenledger_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.set(database=name).render_as_string(hide_password=False), admin_url.render_as_string(
        hide_password=False
    )


def _remove_if_empty(directory: Path) -> None:
    """The embedded server deletes its data at exit; this removes the folder that held it, and nothing else."""
    with contextlib.suppress(OSError):
        directory.rmdir()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server_url = os.environ.get("TOKENLEDGER_TEST_DATABASE_URL")
    if server_url:
        url, admin_url = _fresh_database(server_url)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="tokenledger-test-"))
        atexit.register(_remove_if_empty, data_dir)  # registered first, so it runs after the server's own cleanup
        url = start_embedded_postgres(data_dir, database="tokenledger_test", delete_on_exit=True)
        admin_url = None
    upgrade(url)
    yield url
    if admin_url:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """An empty database (no schema) on the test server, dropped afterwards: for what a new installation does,
    and for work that spans every tenant of a database."""
    url = make_url(database_url)
    name = f"{url.database}_fresh_{secrets.token_hex(3)}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fresh_engine(fresh_database: str) -> Iterator[Engine]:
    """A migrated database of the test's own."""
    upgrade(fresh_database)
    engine = create_db_engine(fresh_database, pool_size=8)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url, pool_size=8)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test (commits become savepoints)."""
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, auth_cache_seconds=0, scheduler_enabled=False)


@dataclass(frozen=True)
class TenantKeys:
    """A tenant created for one test, with one key of each role (Authorization headers ready to use)."""

    name: str
    ingest: dict[str, str]
    read: dict[str, str]
    admin: dict[str, str]
    key_ids: dict[str, str]


def make_tenant(engine: Engine, name: str | None = None) -> TenantKeys:
    name = name or f"tenant-{secrets.token_hex(4)}"
    with session_factory(engine).begin() as session:
        auth.create_tenant(session, name)
        issued = {role: auth.create_key(session, name, role) for role in auth.ROLES}
    headers = {role: {"Authorization": f"Bearer {key.token}"} for role, key in issued.items()}
    return TenantKeys(
        name, headers["ingest"], headers["read"], headers["admin"], {r: k.key_id for r, k in issued.items()}
    )


@pytest.fixture
def tenant(engine: Engine) -> TenantKeys:
    return make_tenant(engine)


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


@pytest.fixture
def openai_api() -> Iterator[str]:
    """The base URL of a stand-in for OpenAI's Admin API (see tests/openai_admin_api.py)."""
    with openai_admin_api() as url:
        yield url
