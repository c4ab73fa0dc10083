"""The pull service does what an importer declares, whatever its source is called: the admin key's variable, the
setting that moves its API, the provider whose logged request ids a fetch looks up. Here a source the registry
does not hold (`metered`), declared the way a new one would be, is pulled like the shipped ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from importers.base import FetchContext, Importer, LineTemplate, RawDocument, StatementLine
from importers.fetching import FetchClient
from ledger.access import auth
from ledger.errors import InvalidRequest
from ledger.periods import Period
from ledger.settings import Settings
from ledger.statements.importing import base_url_for
from ledger.statements.pull import importers_with_credentials, pull_from_api
from tests.conftest import TenantKeys
from tests.events_factory import usage_event

OCTOBER = Period.month("2026-10")
NOW = datetime(2026, 11, 2, tzinfo=UTC)


class MeteredImporter(Importer):
    """A per-request source: one document per request id the fetch is given, fetched without touching a network
    (what it was asked is kept, for the test to read)."""

    source = "metered"
    credential_env = "METERED_BILLING_KEY"
    default_base_url = "https://billing.metered.invalid/v1"
    base_url_setting = "anthropic_base_url"  # any Settings field: the declaration names which
    request_ids_of = "anthropic"
    asked: ClassVar[list[tuple[str, FetchContext]]] = []

    def identify(self, document: RawDocument) -> bool:
        return document.name.startswith("metered/")

    def parse(self, document: RawDocument) -> list[StatementLine]:
        body = json.loads(document.content)
        template = LineTemplate(
            source=self.source, provider="anthropic", account=None, api_key_id=None, model="claude-haiku-4-5",
            service_tier=None, period_start=OCTOBER.start, period_end=OCTOBER.start, document=document.name,
            location="request", raw=body, request_id=body["id"],
        )  # fmt: skip
        return [template.line("requests", quantity=Decimal(1), unit="requests")]

    def fetch(
        self, period: Period, *, credential: str, client: FetchClient, context: FetchContext
    ) -> Iterator[RawDocument]:
        self.asked.append((credential, context))
        for request_id in context.request_ids:
            body = json.dumps({"id": request_id}).encode()
            yield RawDocument(f"metered/{request_id}", body, "application/json", self.source)


@pytest.fixture
def metered() -> Iterator[MeteredImporter]:
    yield MeteredImporter()
    MeteredImporter.asked.clear()


def test_a_missing_admin_key_is_reported_naming_the_variable_the_importer_declares(
    db_session: Session, metered: MeteredImporter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("METERED_BILLING_KEY", raising=False)

    with pytest.raises(InvalidRequest, match=r"^an admin key is needed: set METERED_BILLING_KEY$"):
        pull_from_api(db_session, tenant_id=1, importer=metered, period=OCTOBER, settings=settings, now=NOW)
    assert metered.asked == []


def test_the_fetch_gets_the_declared_key_and_the_logged_request_ids_of_the_declared_provider(
    client: TestClient,
    tenant: TenantKeys,
    db_session: Session,
    metered: MeteredImporter,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METERED_BILLING_KEY", "mk-test")
    in_october = datetime(2026, 10, 14, 9, tzinfo=UTC).isoformat()
    events = [
        usage_event(provider="anthropic", provider_request_id="msg_b", occurred_at=in_october),
        usage_event(provider="anthropic", provider_request_id="msg_a", occurred_at=in_october),
        usage_event(provider="openai", provider_request_id="chatcmpl_x", occurred_at=in_october),  # not its provider
    ]
    assert client.post("/v1/events", json=events, headers=tenant.ingest).status_code < 300
    tenant_id = auth.tenant_by_name(db_session, tenant.name).id

    summary = pull_from_api(
        db_session, tenant_id=tenant_id, importer=metered, period=OCTOBER, settings=settings, now=NOW
    )

    [(credential, context)] = metered.asked
    assert (credential, context.request_ids, context.now) == ("mk-test", ("msg_a", "msg_b"), NOW)
    assert (summary.source, summary.lines, summary.documents) == ("metered", 2, 2)


def test_the_base_url_is_the_declared_setting_else_the_declared_default(metered: MeteredImporter) -> None:
    assert base_url_for(metered, Settings(anthropic_base_url="http://127.0.0.1:9/proxy")) == "http://127.0.0.1:9/proxy"
    assert base_url_for(metered, Settings(anthropic_base_url="")) == "https://billing.metered.invalid/v1"


def test_the_daily_pull_takes_the_api_sources_whose_declared_key_is_set_and_never_the_file_ones() -> None:
    environ = {"ANTHROPIC_ADMIN_KEY": "sk-ant-admin", "UNRELATED": "x"}

    assert [importer.source for importer in importers_with_credentials(environ)] == ["anthropic"]
    assert importers_with_credentials({}) == []
