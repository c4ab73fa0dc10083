"""The `tokenledger` command line as an operator uses it."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.cli.main import app
from ledger.storage.database import session_factory
from ledger.storage.tables import Tenant
from tests import rows
from tests.conftest import TenantKeys
from tests.events_factory import usage_event
from tests.sink.test_durability import free_port, wait_until_healthy


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    return CliRunner()


def test_an_operator_creates_a_tenant_and_keys_and_revokes_one(cli: CliRunner, client: TestClient) -> None:
    name = f"acme-{secrets.token_hex(3)}"
    assert cli.invoke(app, ["tenants", "create", name]).exit_code == 0
    created = cli.invoke(app, ["keys", "create", "--tenant", name, "--role", "ingest"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    key_id = created.output.split("key id: ")[1].split()[0]
    assert key.startswith("tl_")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/v1/events", json=usage_event(), headers=headers).status_code == 202
    listed = cli.invoke(app, ["keys", "list", "--tenant", name])
    assert listed.exit_code == 0, listed.output
    (row,) = [line for line in listed.output.splitlines() if key_id in line]
    assert [cell.strip() for cell in row.split("│")[1:4]] == [key_id, name, "ingest"]
    assert key.split(".")[1] not in listed.output  # the secret is never shown again
    tenants = cli.invoke(app, ["tenants", "list"]).output
    assert [cell.strip() for cell in next(line for line in tenants.splitlines() if f" {name} " in line).split("│")][
        4
    ] == "1"
    revoked = cli.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert client.post("/v1/events", json=usage_event(), headers=headers).status_code == 401
    (row,) = [
        line for line in cli.invoke(app, ["keys", "list", "--tenant", name]).output.splitlines() if key_id in line
    ]
    assert row.split("│")[6].strip().endswith("UTC")  # when it was revoked


def test_errors_are_one_line_and_a_nonzero_exit(cli: CliRunner) -> None:
    name = f"dup-{secrets.token_hex(3)}"
    assert cli.invoke(app, ["tenants", "create", name]).exit_code == 0
    again = cli.invoke(app, ["tenants", "create", name])
    assert again.exit_code == 1
    assert again.output.strip() == f"error: tenant '{name}' already exists"
    missing = cli.invoke(app, ["keys", "create", "--tenant", "no-such-tenant", "--role", "read"])
    assert missing.exit_code == 1
    assert missing.output.strip() == "error: no tenant named 'no-such-tenant'"
    bad_role = cli.invoke(app, ["keys", "create", "--tenant", name, "--role", "owner"])
    assert bad_role.output.strip() == "error: role must be one of ingest, read, admin, got 'owner'"
    unknown_key = cli.invoke(app, ["keys", "revoke", "000000000000"])
    assert unknown_key.exit_code == 1
    assert "Traceback" not in unknown_key.output
    too_long = cli.invoke(app, ["tenants", "create", "x" * 101])
    assert too_long.output.strip() == "error: tenant name must be at most 100 printable characters"
    wider_than_a_terminal = cli.invoke(app, ["import", "no-such-source"])
    assert wider_than_a_terminal.output == (
        "error: unknown statement source 'no-such-source'; expected one of openai, anthropic, openrouter, focus, csv\n"
    )


def test_a_database_url_names_postgresql_or_is_refused_naming_the_variable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`postgres://…` and `postgresql://…`, as hosting platforms hand them out, reach the same database through
    psycopg 3; another database's URL is refused in one line naming the variable, not 'No module named …'."""
    plain = database_url.replace("postgresql+psycopg://", "postgres://", 1)
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", plain)
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", "mysql://root@127.0.0.1/ledger")
    refused = CliRunner().invoke(app, ["db", "upgrade"])
    assert refused.exit_code == 1
    assert refused.output == (
        "error: TOKENLEDGER_DATABASE_URL: must be a PostgreSQL URL such as "
        "postgresql+psycopg://user@host:5432/tokenledger, got one starting 'mysql'\n"
    )


def test_serve_refuses_a_port_in_use_before_starting_anything(cli: CliRunner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli.invoke(app, ["serve", "--port", str(port), "--no-migrate"])
    assert result.exit_code == 1
    assert result.output == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(choose another with --port or TOKENLEDGER_PORT)\n"
    )


def test_reconciling_a_month_with_nothing_in_it_says_so_instead_of_all_is_well(cli: CliRunner) -> None:
    name = f"empty-{secrets.token_hex(3)}"
    assert cli.invoke(app, ["tenants", "create", name]).exit_code == 0
    result = cli.invoke(app, ["reconcile", "--period", "2026-09", "--tenant", name])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"nothing to reconcile for 2026-09 ({name}): no usage logged and no statement")
    assert "match" not in result.output


def test_db_upgrade_is_idempotent(cli: CliRunner) -> None:
    result = cli.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "latest revision" in result.output


def test_the_migrations_build_exactly_the_schema_the_code_declares(engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ledger.storage.database import managed_by_migrations
    from ledger.storage.tables import Base

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": managed_by_migrations})
        assert compare_metadata(context, Base.metadata) == []


def test_serve_stops_its_embedded_postgres_when_terminated(tmp_path: Path) -> None:
    """A process manager stops the service with SIGTERM: the embedded PostgreSQL it started stops with it. It
    starts without a Python warning, also where no XDG_RUNTIME_DIR is set (containers, CI runners)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TOKENLEDGER_") and key != "XDG_RUNTIME_DIR"
    }
    env |= {"TOKENLEDGER_DATA_DIR": str(tmp_path), "TOKENLEDGER_SCHEDULER_ENABLED": "false"}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli.main", "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE
    )
    postmaster = 0
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", server)
        postmaster = int((tmp_path / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert running(postmaster)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 128 + signal.SIGTERM  # an orderly exit, not death by the signal
        assert server.stderr is not None
        log = server.stderr.read().decode()
        assert "using an embedded PostgreSQL" in log
        assert "INFO embedded_postgres" not in log  # its initdb command lines: noise in a service log
        assert not re.search(r"\w+Warning: ", log), log
        deadline = time.monotonic() + 30
        while running(postmaster) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running(postmaster)
    finally:
        if server.poll() is None:
            server.kill()
        if postmaster and running(postmaster):
            os.kill(postmaster, signal.SIGINT)  # leave no server behind, whatever failed


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TOKENLEDGER_STATEMENT_PULL_HOUR_UTC", "24", "less than or equal to 23"),
        ("TOKENLEDGER_CLOSE_MONTH_DAY", "0", "greater than or equal to 1"),
        ("TOKENLEDGER_TOLERANCE_USD", "-0.5", "greater than or equal to 0"),
        ("TOKENLEDGER_TOLERANCE_RELATIVE", "-0.01", "greater than or equal to 0"),
    ],
)
def test_a_setting_out_of_range_stops_serve_with_one_line_naming_it(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli.invoke(app, ["serve", "--port", str(free_port()), "--no-migrate"])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {variable}: Input should be {says}"


def test_a_failed_reconcile_says_so_in_one_line_without_a_traceback(
    database_url: str, engine: Engine, tenant: TenantKeys
) -> None:
    with session_factory(engine).begin() as session:
        tenant_id = session.scalar(sa.select(Tenant.id).where(Tenant.name == tenant.name))
        rows.unreadable_price(session, tenant_id)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOKENLEDGER_")}
    result = subprocess.run(
        [sys.executable, "-m", "ledger.cli.main", "reconcile", "--period", "2026-10", "--tenant", tenant.name],
        env=env | {"TOKENLEDGER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert re.search(r"^error: reconciliation run \d+ failed: .*every full moon", result.stderr, re.M), result.stderr


def test_keys_are_created_without_naming_the_only_tenant(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", fresh_engine.url.render_as_string(hide_password=False))
    cli = CliRunner()
    assert cli.invoke(app, ["tenants", "create", "acme"]).exit_code == 0
    created = cli.invoke(app, ["keys", "create", "--role", "read"])
    assert created.exit_code == 0, created.output
    assert "(tenant acme, role read)" in created.output
    assert cli.invoke(app, ["tenants", "create", "globex"]).exit_code == 0
    ambiguous = cli.invoke(app, ["keys", "create", "--role", "read"])
    assert (ambiguous.exit_code, ambiguous.output.strip()) == (1, "error: name a tenant with --tenant")


def test_serve_without_migrating_and_with_the_database_down_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens there once the probe is closed
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{closed}/ledger")
    result = CliRunner().invoke(app, ["serve", "--port", str(free), "--no-migrate"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert len(result.output.strip().splitlines()) == 1, result.output
