"""From a finding to what it rests on, on the demo's month: its evidence in sentences, the statement lines with
their provenance, the usage events behind it (and the GET /v1/events query that lists them), and the dispute
pack from the API and the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger.cli.main import app
from ledger.demo.setup import DemoResult
from tests.months import sign_in


def finding_of(client: TestClient, demo: DemoResult, kind: str) -> dict:
    headers = {"Authorization": f"Bearer {demo.read_key}"}
    found = client.get("/v1/findings", params={"period": demo.period, "kind": kind}, headers=headers).json()
    return found["findings"][0]


def test_a_finding_page_explains_and_leads_to_its_statement_lines_and_events(
    client: TestClient, demo_month: DemoResult, engine: Engine
) -> None:
    finding = finding_of(client, demo_month, "cache_mischarge")
    sign_in(client, demo_month.read_key)
    html = client.get(f"/report/findings/{finding['id']}").text
    explanation = html.split('id="explanation"', 1)[1].split("</div>", 1)[0]
    assert "billed at the full input price instead of the cached price" in explanation
    assert "The money at stake is estimated at" in explanation
    assert '<details id="evidence-details">' in html  # the raw figures, one click away
    with engine.connect() as connection:
        documents = connection.execute(
            text(
                "SELECT d.content, d.sha256 FROM statement_documents d JOIN tenants t ON t.id = d.tenant_id"
                " WHERE t.name = :tenant"
            ),
            {"tenant": demo_month.tenant},
        ).all()
    archived = {sha256: content for content, sha256 in documents}
    lines = html.split('id="statement-lines"', 1)[1].split("</section>", 1)[0]
    shown_documents = set(re.findall(r"SHA-256 <code>([0-9a-f]{16})…</code>", lines))
    assert shown_documents
    for prefix in shown_documents:
        (sha256,) = [digest for digest in archived if digest.startswith(prefix)]
        assert hashlib.sha256(archived[sha256]).hexdigest() == sha256  # the archived bytes the line came from
    assert "raw</summary>" in lines
    query = re.search(r"<code>GET /v1/events\?([^<]+)</code>", html)[1].replace("&amp;", "&")
    listed = client.get(f"/v1/events?{query}", headers={"Authorization": f"Bearer {demo_month.read_key}"}).json()[
        "events"
    ]
    assert listed
    assert all(event["account"] == "proj_rag" for event in listed)
    shown = re.findall(r'<tr><th scope="row"><code>([^<]+)</code></th><td data-label="When">', html)
    assert shown == [event["event_id"] for event in listed]


def test_the_dispute_pack_holds_the_summary_the_lines_and_the_events(
    client: TestClient, demo_month: DemoResult
) -> None:
    finding = finding_of(client, demo_month, "price_drift")
    read = {"Authorization": f"Bearer {demo_month.read_key}"}
    answer = client.get(f"/v1/findings/{finding['id']}/dispute-pack", headers=read)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert sorted(archive.namelist()) == ["events.csv", "finding.json", "statement_lines.csv", "summary.txt"]
    summary = archive.read("summary.txt").decode()
    assert "What was billed" in summary
    assert "What was used" in summary
    assert re.search(r"billed [\d,.]+ USD − expected [\d,.]+ USD = \+[\d,.]+ USD", summary)
    assert re.search(r"source: .+, \d{4}-\d{2}-\d{2}; in effect from", summary)
    lines = list(csv.DictReader(io.StringIO(archive.read("statement_lines.csv").decode())))
    assert lines
    assert all(len(line["document_sha256"]) == 64 and line["location"] and line["raw"] for line in lines)
    events = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))
    assert events
    assert {event["account"] for event in events} == {finding["account"]}
    assert len(summary.splitlines()) <= 60  # one page


def test_the_dispute_pack_is_refused_to_other_roles_and_other_tenants(
    client: TestClient, demo_month: DemoResult
) -> None:
    finding = finding_of(client, demo_month, "price_drift")
    ingest = {"Authorization": f"Bearer {demo_month.ingest_key}"}
    assert client.get(f"/v1/findings/{finding['id']}/dispute-pack", headers=ingest).status_code == 403
    read = {"Authorization": f"Bearer {demo_month.read_key}"}
    assert client.get("/v1/findings/999999999/dispute-pack", headers=read).status_code == 404


def test_findings_export_writes_the_same_pack_from_the_cli(
    client: TestClient,
    demo_month: DemoResult,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    finding = finding_of(client, demo_month, "cache_mischarge")
    monkeypatch.setenv("TOKENLEDGER_DATABASE_URL", database_url)
    target = tmp_path / "pack.zip"
    result = CliRunner().invoke(
        app, ["findings", "export", str(finding["id"]), "--tenant", demo_month.tenant, "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert f"dispute pack of finding {finding['id']}" in result.output
    assert "summary.txt" in zipfile.ZipFile(target).namelist()
    missing = CliRunner().invoke(app, ["findings", "export", "999999999", "--tenant", demo_month.tenant])
    assert missing.exit_code == 1


def test_the_findings_list_narrows_by_choices_sorts_totals_and_exports(
    client: TestClient, demo_month: DemoResult
) -> None:
    sign_in(client, demo_month.read_key)
    page = client.get("/report/findings", params={"period": demo_month.period}).text
    assert '<select name="account">' in page
    assert '<option value="proj_rag">proj_rag</option>' in page  # a choice, not a free-text field
    openai = client.get(
        "/report/findings", params={"period": demo_month.period, "provider": "openai", "sort": "impact", "order": "asc"}
    ).text
    impacts = [
        Decimal(value.replace(",", ""))
        for value in re.findall(r'<td class="num" data-label="Impact">([\d,.-]+) USD</td>', openai.split("<tfoot>")[0])
    ]
    assert impacts == sorted(impacts)
    total = Decimal(re.search(r'data-figure="impact">([\d,.-]+) USD', openai)[1].replace(",", ""))
    assert sum(impacts) == total
    assert "· key <span" in openai  # the key is part of the scope
    exported = client.get(
        "/report/findings.csv",
        params={"period": demo_month.period, "provider": "openai", "sort": "impact", "order": "asc"},
    )
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["provider"] for row in rows} == {"openai"}
    assert [Decimal(row["impact_usd"]) for row in rows] == sorted(Decimal(row["impact_usd"]) for row in rows)
    assert len(rows) == len(impacts)
