"""Getting statement documents in: from files, or fetched from a provider's API with the admin key from the
environment. Parsing is the importers' (pure); storing is `ledger.statements.store`'."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from importers.base import FetchContext, Importer, RawDocument, StatementLine
from importers.fetching import FetchClient, ProgressHook
from importers.registry import importer_for
from ledger.errors import InvalidRequest
from ledger.periods import Period
from ledger.settings import Settings
from ledger.storage.tables import UsageEvent

BASE_URL_SETTING = {"openai": "openai_base_url", "anthropic": "anthropic_base_url", "openrouter": "openrouter_base_url"}


def read_documents(paths: Sequence[Path], source: str) -> list[RawDocument]:
    """The files as documents. CSV exports, which may be of any size, are read from their files as they are
    parsed and archived, never held whole; JSON documents (API pages) are read now."""
    documents = []
    for path in paths:
        if not path.is_file():
            raise InvalidRequest(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
        media_type = mimetypes.guess_type(path.name)[0] or ("text/csv" if path.suffix == ".csv" else "application/json")
        if media_type == "text/csv":
            documents.append(RawDocument.from_file(path, name=path.name, media_type=media_type, source=source))
        else:
            documents.append(
                RawDocument(name=path.name, content=path.read_bytes(), media_type=media_type, source=source)
            )
    return documents


def parse_documents(importer: Importer, documents: Sequence[RawDocument]) -> list[StatementLine]:
    """Every line of every document; a document the importer does not recognise is an error naming it."""
    return list(iter_document_lines(importer, documents))


def iter_document_lines(importer: Importer, documents: Sequence[RawDocument]) -> Iterator[StatementLine]:
    """The lines of every document as they are read (every document is identified first, so an unrecognised
    one is an error naming it before any line)."""
    for document in documents:
        if not importer.identify(document):
            raise InvalidRequest(f"{document.name}: not a statement document the {importer.source} importer reads")
    for document in documents:
        yield from importer.iter_lines(document)


def credential_for(importer: Importer) -> str:
    if importer.credential_env is None:
        raise InvalidRequest(f"{importer.source} statements cannot be fetched; import files with --file")
    credential = os.environ.get(importer.credential_env, "").strip()
    if not credential:
        raise InvalidRequest(f"an admin key is needed: set {importer.credential_env}")
    return credential


def openrouter_request_ids(session: Session, tenant_id: int, period: Period) -> tuple[str, ...]:
    """The OpenRouter generation ids the sink holds for the period (for per-request statements)."""
    query = select(UsageEvent.provider_request_id).where(
        UsageEvent.tenant_id == tenant_id,
        UsageEvent.provider == "openrouter",
        UsageEvent.provider_request_id.is_not(None),
        UsageEvent.occurred_at >= period.start,
        UsageEvent.occurred_at < period.end,
    )
    return tuple(sorted({request_id for request_id in session.scalars(query) if request_id}))


def fetch_documents(
    importer: Importer,
    period: Period,
    *,
    settings: Settings,
    now: datetime,
    request_ids: tuple[str, ...] = (),
    progress: ProgressHook | None = None,
) -> list[RawDocument]:
    credential = credential_for(importer)
    base_url = getattr(settings, BASE_URL_SETTING.get(importer.source, ""), None) or importer.default_base_url
    if not base_url:
        raise InvalidRequest(f"no base URL for {importer.source}")
    with FetchClient(base_url, progress=progress) as client:
        context = FetchContext(request_ids=request_ids, now=now)
        return list(importer.fetch(period, credential=credential, client=client, context=context))


def importer_named(source: str, mapping: str | None) -> Importer:
    try:
        return importer_for(source, mapping=mapping)
    except (ValueError, FileNotFoundError) as error:
        raise InvalidRequest(str(error)) from error
