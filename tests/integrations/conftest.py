"""Fixtures of the integration tests: the TokenLedger server, a provider stand-in, a client of the server."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from ledger.integrations.client import TokenLedger
from tests.conftest import TenantKeys
from tests.integrations.harness import LedgerServer
from tests.integrations.provider_mock import ProviderMock

# LiteLLM fetches its model price map from GitHub at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Clients closed with events unsent keep them for the next process: in a folder of this run, not the user's.
os.environ.setdefault("TOKENLEDGER_SPILL_DIR", tempfile.mkdtemp(prefix="tokenledger-spill-"))


@pytest.fixture(scope="module")
def ledger_server(database_url: str, engine: Engine) -> Iterator[LedgerServer]:
    server = LedgerServer(database_url, engine).start()
    yield server
    server.stop()


@pytest.fixture
def provider() -> Iterator[ProviderMock]:
    mock = ProviderMock()
    yield mock
    mock.close()


@pytest.fixture
def ledger(ledger_server: LedgerServer, tenant: TenantKeys) -> Iterator[TokenLedger]:
    """A client of the running server with the tenant's ingest key, flushing fast."""
    key = tenant.ingest["Authorization"].removeprefix("Bearer ")
    client = TokenLedger(ledger_server.url, key, flush_interval=0.05, max_retry_delay=0.2)
    yield client
    client.close(timeout=2)
