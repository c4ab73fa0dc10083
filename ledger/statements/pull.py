"""The pull service: a source's statement documents fetched from its API or given as files, parsed by its
importer and stored (`ledger.statements.store`), for whoever asks: the command line (`tokenledger import`), the
scheduler's daily pull and the demo.

What a source needs is what its importer declares (`importers.base.Importer`): the environment variable holding
its admin key, the setting that moves its base URL, the provider whose logged request ids a fetch looks up, and
whether it is fetched at all. Nothing here asks which source it is, so a new source is its importer module and
its line in `importers.registry`. Like every service, these take a session and the time, and never commit."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from importers.base import Importer, RawDocument
from importers.fetching import ProgressHook
from importers.registry import IMPORTERS
from ledger.periods import Period
from ledger.settings import Settings
from ledger.statements.importing import fetch_documents, iter_read_lines, logged_request_ids
from ledger.statements.store import ImportSummary, store_statements


def importers_with_credentials(environ: Mapping[str, str] | None = None) -> list[Importer]:
    """The registered importers that fetch from an API and whose admin key the environment holds, in registry
    order (what the daily pull fetches)."""
    environ = os.environ if environ is None else environ
    return [
        importer
        for importer in IMPORTERS
        if importer.fetches and importer.credential_env and environ.get(importer.credential_env)
    ]


def pull_from_api(
    session: Session,
    *,
    tenant_id: int,
    importer: Importer,
    period: Period,
    settings: Settings,
    now: datetime,
    progress: ProgressHook | None = None,
) -> ImportSummary:
    """Fetch the source's documents for `period` (with the admin key and base URL its importer declares, and the
    logged request ids of the provider it names), parse them and make them the source's lines for the period."""
    request_ids = (
        logged_request_ids(session, tenant_id, importer.request_ids_of, period) if importer.request_ids_of else ()
    )
    documents = fetch_documents(
        importer, period, settings=settings, now=now, request_ids=request_ids, progress=progress
    )
    return pull_documents(session, tenant_id=tenant_id, importer=importer, period=period, documents=documents, now=now)


def pull_documents(
    session: Session,
    *,
    tenant_id: int,
    importer: Importer,
    period: Period | None,
    documents: Sequence[RawDocument],
    now: datetime,
) -> ImportSummary:
    """Parse documents the source's importer reads and make their lines the source's for `period`."""
    return pull_readings(
        session,
        tenant_id=tenant_id,
        source=importer.source,
        period=period,
        readings=[(importer, document) for document in documents],
        now=now,
    )


def pull_readings(
    session: Session,
    *,
    tenant_id: int,
    source: str,
    period: Period | None,
    readings: Sequence[tuple[Importer, RawDocument]],
    now: datetime,
) -> ImportSummary:
    """Documents of one source each read by its own importer (CSV exports with different mappings), stored as
    one import: the lines are parsed as they are stored, so a file of any size takes bounded memory."""
    return store_statements(
        session,
        tenant_id=tenant_id,
        source=source,
        period=period,
        documents=[document for _, document in readings],
        lines=iter_read_lines(readings),
        now=now,
    )
