"""Importing billing statements as an operator does: from the provider's API or from saved files, with
re-imports that replace instead of adding up, and bad documents that write nothing."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.cli.main import app
from ledger.periods import Period
from ledger.statements.importing import importer_named, parse_documents, read_documents
from ledger.statements.store import store_statements
from ledger.storage.database import session_factory
from tests.conftest import TenantKeys
from tests.openai_admin_api import OpenAIAdminApi

OPENAI = Path(__file__).parent.parent / "importers" / "openai"
ANTHROPIC = Path(__file__).parent.parent / "importers" / "anthropic"
FOCUS_BEDROCK = Path(__file__).parent.parent / "importers" / "focus" / "bedrock_aws_focus_1_2.csv"


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    return CliRunner()


def totals(engine: Engine, tenant: TenantKeys) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.text(
                    "SELECT usage_type, sum(quantity), sum(amount), count(*) FROM statement_lines l "
                    "JOIN tenants t ON t.id = l.tenant_id WHERE t.name = :n GROUP BY usage_type ORDER BY usage_type"
                ),
                {"n": tenant.name},
            )
        ]


def test_fetching_a_month_from_the_openai_admin_api(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, openai_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENLEDGER_OPENAI_BASE_URL", openai_api)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-test")
    result = cli.invoke(app, ["import", "openai", "--period", "2026-10", "--tenant", tenant.name])
    assert result.exit_code == 0, result.output
    assert "openai 2026-10:" in result.output
    assert "gpt-5.4" in result.output
    assert any("page=" in path for path in OpenAIAdminApi.seen), "the second usage page was not followed"
    first = totals(engine, tenant)
    assert {row[0] for row in first} >= {"uncached_input", "cached_input", "output", "requests"}

    again = cli.invoke(app, ["import", "openai", "--period", "2026-10", "--tenant", tenant.name])
    assert again.exit_code == 0, again.output
    assert "replaced" in again.output
    assert totals(engine, tenant) == first


def test_a_refused_admin_key_is_one_clear_line(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, openai_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENLEDGER_OPENAI_BASE_URL", openai_api)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-not-admin")
    result = cli.invoke(app, ["import", "openai", "--period", "2026-10", "--tenant", tenant.name])
    assert result.exit_code == 1
    assert "an admin key is needed" in result.output
    assert "sk-not-admin" not in result.output
    assert totals(engine, tenant) == []
    monkeypatch.delenv("OPENAI_ADMIN_KEY")
    missing = cli.invoke(app, ["import", "openai", "--period", "2026-10", "--tenant", tenant.name])
    assert missing.output.strip() == "error: an admin key is needed: set OPENAI_ADMIN_KEY"


def test_importing_saved_files_and_reading_the_totals(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, client: TestClient
) -> None:
    files = [ANTHROPIC / "usage_report_p1.json", ANTHROPIC / "usage_report_p2.json", ANTHROPIC / "cost_report.json"]
    args = ["import", "anthropic", "--tenant", tenant.name]
    for path in files:
        args += ["--file", str(path)]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    once = totals(engine, tenant)
    assert cli.invoke(app, args).exit_code == 0
    assert totals(engine, tenant) == once

    body = client.get("/v1/statements", params={"period": "2026-10"}, headers=tenant.read).json()
    assert body["period"] == "2026-10"
    assert {row["provider"] for row in body["rows"]} == {"anthropic"}
    by_type = {}
    for row in body["rows"]:
        if row["quantity"] is not None:
            by_type[row["usage_type"]] = by_type.get(row["usage_type"], 0) + float(row["quantity"])
    assert by_type == {row[0]: float(row[1]) for row in once if row[1] is not None}


def test_tokens_stated_by_both_openai_documents_are_totalled_once(
    cli: CliRunner, tenant: TenantKeys, client: TestClient
) -> None:
    """OpenAI's usage pages state output tokens per project and key; its costs state them again per project,
    with the money. The import summary and the statement totals count the tokens once, from the usage pages,
    and the money from the costs: 124,000 output tokens of gpt-5.4, not 224,943."""
    args = ["import", "openai", "--tenant", tenant.name]
    result = cli.invoke(
        app, [*args, "--file", str(OPENAI / "usage_completions_p1.json"), "--file", str(OPENAI / "costs.json")]
    )
    assert result.exit_code == 0, result.output
    (summary,) = [line for line in result.output.splitlines() if " gpt-5.4 " in line and " output " in line]
    assert [cell.strip() for cell in summary.split("│")[4:6]] == ["124,000", "1.5808"]

    rows = client.get("/v1/statements", params={"period": "2026-10"}, headers=tenant.read).json()["rows"]
    output = [row for row in rows if row["model"] == "gpt-5.4" and row["usage_type"] == "output"]
    assert sum(Decimal(row["quantity"]) for row in output if row["quantity"]) == 124_000
    assert sum(Decimal(row["amount"]) for row in output if row["amount"]) == Decimal("1.580775")


def test_imports_of_one_month_started_together_still_bill_it_once(
    cli: CliRunner, tenant: TenantKeys, engine: Engine
) -> None:
    """The daily pull and a hand import at the same moment: each replaces the month's lines in turn."""
    args = ["import", "focus", "--tenant", tenant.name, "--period", "2026-10", "--file", str(FOCUS_BEDROCK)]
    assert cli.invoke(app, args).exit_code == 0
    once = totals(engine, tenant)
    documents = read_documents([FOCUS_BEDROCK], "focus")
    lines = parse_documents(importer_named("focus", None), documents)
    with engine.connect() as conn:
        tenant_id = conn.scalar(sa.text("SELECT id FROM tenants WHERE name = :n"), {"n": tenant.name})
    start = threading.Barrier(3)

    def import_it(_: int) -> None:
        with session_factory(engine).begin() as session:
            start.wait()
            store_statements(
                session, tenant_id=tenant_id, source="focus", period=Period.month("2026-10"), documents=documents,
                lines=lines, now=datetime.now(UTC),
            )  # fmt: skip

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(import_it, range(3)))
    assert totals(engine, tenant) == once


def test_a_document_of_another_source_or_a_directory_is_one_line_naming_it(
    cli: CliRunner, tenant: TenantKeys, tmp_path: Path
) -> None:
    anthropic_page = ANTHROPIC / "usage_report_p1.json"

    wrong_source = cli.invoke(app, ["import", "openai", "--tenant", tenant.name, "--file", str(anthropic_page)])
    directory = cli.invoke(app, ["import", "openai", "--tenant", tenant.name, "--file", str(tmp_path)])

    assert (
        wrong_source.output.strip() == "error: usage_report_p1.json: not a statement document the openai importer reads"
    )
    assert directory.output.strip() == f"error: {tmp_path}: not a file"


def test_a_malformed_document_names_the_file_and_writes_nothing(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, tmp_path: Path
) -> None:
    good = json.loads((OPENAI / "usage_completions_p2.json").read_text())
    bad = json.loads(json.dumps(good))
    bad["data"][0]["results"][0]["output_tokens"] = "many"
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "broken.json").write_text(json.dumps(bad))
    result = cli.invoke(
        app,
        [
            "import",
            "openai",
            "--tenant",
            tenant.name,
            "--file",
            str(tmp_path / "good.json"),
            "--file",
            str(tmp_path / "broken.json"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: broken.json: data[0].results[0].output_tokens")
    assert totals(engine, tenant) == []


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("BilledCost", "1e400", "line 2: amount: 1E+400 is beyond what a line holds"),
        ("ConsumedQuantity", "1e30", "line 2: quantity: 1000000000000000000000000000000 is beyond what a line holds"),
        ("SubAccountName", "ml\x00prod", "line 2: SubAccountName: holds a NUL character"),
    ],
)
def test_a_value_the_statement_tables_cannot_hold_names_its_line_and_writes_nothing(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, tmp_path: Path, column: str, value: str, message: str
) -> None:
    header, first, *rest = FOCUS_BEDROCK.read_text().splitlines()
    cells = first.split(",")
    cells[header.split(",").index(column)] = value
    (tmp_path / "export.csv").write_text("\n".join([header, ",".join(cells), *rest]) + "\n")

    result = cli.invoke(
        app, ["import", "focus", "--tenant", tenant.name, "--period", "2026-10", "--file", str(tmp_path / "export.csv")]
    )

    assert result.exit_code == 1
    assert " ".join(result.output.split()).startswith(f"error: export.csv: {message}")
    assert totals(engine, tenant) == []


def test_statements_need_a_read_key_and_stay_within_the_tenant(client: TestClient, tenant: TenantKeys) -> None:
    assert client.get("/v1/statements", params={"period": "2026-10"}).status_code == 401
    assert client.get("/v1/statements", params={"period": "2026-10"}, headers=tenant.ingest).status_code == 403
    assert client.get("/v1/statements", params={"period": "2026-10"}, headers=tenant.read).json()["rows"] == []


def long_export(rows: int) -> str:
    """A CSV export in the shipped generic_long_example format: `rows` rows over October 2026."""
    header = "Date,Project,API key,Model,Usage type,Quantity,Cost,Currency\n"
    kinds = ("Input", "Cached input", "Output", "Requests")
    return header + "".join(
        f"2026-10-{1 + n % 31:02d},proj_{n % 7},key_{n % 11},gpt-5.4-mini,{kinds[n % 4]},{1000 + n},{n % 97}.25,USD\n"
        for n in range(rows)
    )


def test_a_large_csv_export_is_stored_line_by_line_and_archived_byte_for_byte(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ledger.statements.store.ARCHIVE_PART_BYTES", 64 * 1024)  # several parts for a small file
    export = tmp_path / "export.csv"
    export.write_text(long_export(5_000))

    result = cli.invoke(
        app, ["import", "csv", "--mapping", "generic_long_example", "--tenant", tenant.name, "--file", str(export)]
    )

    assert result.exit_code == 0, result.output
    assert "csv 2026-10: 5000 lines from 1 documents" in result.output
    with engine.connect() as conn:
        stored_lines = conn.execute(
            sa.text(
                "SELECT count(*), sum(quantity) FROM statement_lines l JOIN tenants t ON t.id = l.tenant_id "
                "WHERE t.name = :name"
            ),
            {"name": tenant.name},
        ).one()
        document = conn.execute(
            sa.text(
                "SELECT d.id, d.content, d.sha256 FROM statement_documents d JOIN tenants t ON t.id = d.tenant_id "
                "WHERE t.name = :name"
            ),
            {"name": tenant.name},
        ).one()
        parts = (
            conn.execute(
                sa.text("SELECT content FROM statement_document_parts WHERE document_id = :id ORDER BY part"),
                {"id": document.id},
            )
            .scalars()
            .all()
        )
    assert stored_lines == (5_000, sum(1000 + n for n in range(5_000)))
    assert document.content is None
    assert len(parts) > 1
    assert b"".join(parts) == export.read_bytes()
    assert hashlib.sha256(b"".join(parts)).hexdigest() == document.sha256


def test_a_bad_row_at_the_end_of_a_csv_export_writes_nothing(
    cli: CliRunner, tenant: TenantKeys, engine: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(long_export(3_000) + "9999-12-31,proj_1,key_1,gpt-5.4-mini,Input,1,1,USD\n")

    result = cli.invoke(
        app, ["import", "csv", "--mapping", "generic_long_example", "--tenant", tenant.name, "--file", str(export)]
    )

    assert result.exit_code == 1
    assert " ".join(result.output.split()).startswith(
        "error: export.csv: line 3002: Date: 9999-12-31T00:00:00+00:00 is outside the dates a statement covers"
    )
    assert totals(engine, tenant) == []
