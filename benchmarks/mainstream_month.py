"""The mainstream month (`tests/mainstream_month.py`) through ingest, `tokenledger import focus` and
`tokenledger reconcile` on a fresh database: prints the unpriced models, the drift's expected costs and every
finding with its impact. Run it on two checkouts with the same statement file to compare them:

    TOKENLEDGER_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        python -m benchmarks.mainstream_month --statement /tmp/focus_2026-10.csv

Without --statement the export is written first, at the list prices of this checkout's catalog.
"""

from __future__ import annotations

import argparse
import os
import secrets
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from benchmarks.common import fresh_database
from ledger.cli.main import app
from ledger.server import create_app
from ledger.settings import Settings
from ledger.storage.database import create_db_engine
from tests import mainstream_month
from tests.conftest import make_tenant


def list_price(provider: str, model: str, token_type: str, at: datetime) -> Decimal:
    from ledger.pricing.catalog import shared_catalog

    row = shared_catalog().unit_price(provider, model, token_type, at=at)
    if row is None:
        raise SystemExit(f"no list price for {provider}/{model} {token_type}: write the statement on a newer checkout")
    return row.price_per_token() * 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statement", type=Path, help="the FOCUS export to import (written when missing)")
    args = parser.parse_args()
    statement = args.statement or Path(f"/tmp/mainstream_focus_{secrets.token_hex(3)}.csv")
    if not statement.exists():
        mainstream_month.write_statement(statement, list_price)
        print(f"statement written to {statement}")
    url = fresh_database(f"mainstream_{secrets.token_hex(3)}")
    os.environ["TOKENLEDGER_DATABASE_URL"] = url
    engine = create_db_engine(url, pool_size=2)
    tenant = make_tenant(engine)
    settings = Settings(database_url=url, auth_cache_seconds=0, scheduler_enabled=False)
    with TestClient(create_app(settings, engine=engine)) as client:
        response = client.post("/v1/events", json=mainstream_month.events(), headers=tenant.ingest)
        assert response.status_code == 202, response.text
        cli = CliRunner()
        imported = cli.invoke(app, ["import", "focus", "--file", str(statement), "--tenant", tenant.name])
        assert imported.exit_code == 0, imported.output
        reconciled = cli.invoke(app, ["reconcile", "--period", "2026-10", "--tenant", tenant.name])
        assert reconciled.exit_code == 0, reconciled.output
        drift = client.get("/v1/reconciliation", params={"period": "2026-10"}, headers=tenant.read).json()["rows"]
        found = client.get("/v1/findings", params={"period": "2026-10"}, headers=tenant.read).json()["findings"]
    engine.dispose()
    unpriced = sorted(f"{row['provider']}/{row['model']}" for row in drift if row["expected_cost"] is None)
    print(f"unpriced models: {len(unpriced)} of {len(drift)}: {', '.join(unpriced) or '-'}")
    expected = sum((Decimal(row["expected_cost"]) for row in drift if row["expected_cost"] is not None), Decimal(0))
    billed = sum((Decimal(row["billed_cost"]) for row in drift if row["billed_cost"] is not None), Decimal(0))
    print(f"expected (priced logged usage): {expected:.2f} USD; billed: {billed:.2f} USD")
    for finding in sorted(found, key=lambda f: (f["kind"], f["model"] or "")):
        print(f"  {finding['severity']:8} {finding['kind']:18} {finding['provider']}/{finding['model']}: "
              f"impact {Decimal(finding['impact_usd']):.2f} USD")  # fmt: skip


if __name__ == "__main__":
    main()
