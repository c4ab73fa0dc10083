"""The findings JSON API: list with filters, read one with its history, change its status (admin), and a
period's drift rows with its runs. A key sees only its tenant's findings."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.storage.database import session_factory
from ledger.storage.tables import FindingChange
from tests.conftest import make_tenant
from tests.months import Month


def test_findings_are_listed_most_severe_first_with_money_as_decimal_strings(
    client: TestClient, october: Month
) -> None:
    answer = client.get("/v1/findings", params={"period": "2026-10"}, headers=october.keys.read)
    assert answer.status_code == 200, answer.text
    findings = answer.json()["findings"]
    assert [(f["kind"], f["severity"], f["impact_usd"]) for f in findings] == [
        ("quantity_mismatch", "critical", "120.5"),
        ("spend_spike", "warning", "85"),
        ("missing_finish_reason", "info", "0"),
    ]
    first = findings[0]
    assert set(first) == {
        "id",
        "kind",
        "severity",
        "provider",
        "account",
        "api_key_id",
        "model",
        "period_start",
        "period_end",
        "impact_usd",
        "evidence",
        "summary",
        "status",
        "note",
        "first_seen",
        "last_seen",
    }
    assert first["period_start"] == "2026-10-01T00:00:00+00:00"
    assert first["evidence"]["series"][0] == {"day": "2026-10-01", "logged": 600_000, "billed": 630_000}


def test_findings_filter_by_kind_provider_status_and_period(client: TestClient, october: Month) -> None:
    def kinds(**params: str) -> list[str]:
        answer = client.get("/v1/findings", params=params, headers=october.keys.read)
        assert answer.status_code == 200, answer.text
        return [finding["kind"] for finding in answer.json()["findings"]]

    assert kinds(period="2026-10", kind="spend_spike") == ["spend_spike"]
    assert kinds(period="2026-10", provider="anthropic") == []
    assert kinds(period="2026-10", status="resolved") == []
    assert kinds(period="2026-09") == []
    assert len(kinds()) == 3


def test_a_bad_filter_names_the_parameter(client: TestClient, october: Month) -> None:
    bad_status = client.get("/v1/findings", params={"status": "closed"}, headers=october.keys.read)
    assert bad_status.status_code == 422
    assert "status must be one of open, acknowledged, resolved, disputed" in bad_status.json()["error"]["message"]
    bad_period = client.get("/v1/findings", params={"period": "October"}, headers=october.keys.read)
    assert bad_period.status_code == 422
    assert "2026-10" in bad_period.json()["error"]["message"]


def test_an_admin_changes_a_status_with_a_note_and_the_change_is_recorded(
    client: TestClient, engine: Engine, october: Month
) -> None:
    path = f"/v1/findings/{october.finding_id}"
    answer = client.patch(
        path, json={"status": "disputed", "note": "ticket 4411 with OpenAI"}, headers=october.keys.admin
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["note"]) == ("disputed", "ticket 4411 with OpenAI")
    (change,) = body["changes"]
    assert (change["from_status"], change["to_status"], change["actor"]) == (
        "open",
        "disputed",
        october.keys.key_ids["admin"],
    )
    again = client.patch(path, json={"status": "resolved"}, headers=october.keys.admin).json()
    assert [c["to_status"] for c in again["changes"]] == ["disputed", "resolved"]
    assert again["note"] == "ticket 4411 with OpenAI"
    assert client.get(path, headers=october.keys.read).json()["status"] == "resolved"
    with session_factory(engine)() as session:
        stored = session.scalars(select(FindingChange).where(FindingChange.finding_id == october.finding_id)).all()
    assert len(stored) == 2


def test_a_read_key_cannot_change_a_status(client: TestClient, october: Month) -> None:
    answer = client.patch(f"/v1/findings/{october.finding_id}", json={"status": "resolved"}, headers=october.keys.read)
    assert answer.status_code == 403
    assert "needs an admin key" in answer.json()["error"]["message"]
    assert client.get(f"/v1/findings/{october.finding_id}", headers=october.keys.read).json()["status"] == "open"


def test_a_status_outside_the_list_or_an_unknown_field_is_refused(client: TestClient, october: Month) -> None:
    path = f"/v1/findings/{october.finding_id}"
    assert client.patch(path, json={"status": "closed"}, headers=october.keys.admin).status_code == 422
    unknown = client.patch(path, json={"status": "open", "assignee": "me"}, headers=october.keys.admin)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "assignee"


def test_a_note_with_a_nul_character_is_refused_and_nothing_changes(client: TestClient, october: Month) -> None:
    path = f"/v1/findings/{october.finding_id}"

    answer = client.patch(path, json={"status": "resolved", "note": "see\u0000ticket"}, headers=october.keys.admin)

    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "note holds a NUL character, which cannot be stored"
    assert client.get(path, headers=october.keys.read).json()["status"] == "open"


def test_another_tenants_finding_is_not_found(client: TestClient, engine: Engine, october: Month) -> None:
    stranger = make_tenant(engine)
    path = f"/v1/findings/{october.finding_id}"
    assert client.get(path, headers=stranger.read).status_code == 404
    assert client.patch(path, json={"status": "resolved"}, headers=stranger.admin).status_code == 404
    assert client.get("/v1/findings", params={"period": "2026-10"}, headers=stranger.read).json() == {"findings": []}


def test_findings_need_a_key_with_read_rights(client: TestClient, october: Month) -> None:
    assert client.get("/v1/findings").status_code == 401
    assert client.get("/v1/findings", headers=october.keys.ingest).status_code == 403


def test_reconciliation_shows_the_drift_rows_and_the_latest_runs(client: TestClient, october: Month) -> None:
    answer = client.get("/v1/reconciliation", params={"period": "2026-10"}, headers=october.keys.read)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["period"] == "2026-10"
    assert [
        (r["provider"], r["model"], r["expected_cost"], r["billed_cost"], r["difference"]) for r in body["rows"]
    ] == [
        ("anthropic", "claude-haiku-4-5", "310.25", None, None),
        ("openai", "gpt-5.4-mini", "2400", "2520.5", "120.5"),
        ("openai", "my-finetune", None, "12", None),
    ]
    assert [(run["status"], run["trigger"]) for run in body["runs"]] == [("succeeded", "schedule")]
    empty = client.get("/v1/reconciliation", params={"period": "2026-09"}, headers=october.keys.read).json()
    assert empty == {"period": "2026-09", "rows": [], "runs": []}
