"""Storing billing statements: raw documents archived with their SHA-256, lines normalized, and a re-import of
a source's period replacing its lines in the same transaction (so totals never depend on how often a period
was imported). Services take a session and a `now`, and never commit.

Lines are streamed: each is checked and copied (binary COPY) into a temporary staging table as the importer
yields it, while the summary is added up, so an export of any size takes bounded memory; the staged lines
then replace the period's in one statement. A file-backed document is archived in parts of a few megabytes."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import Copy
from psycopg.types.json import Jsonb
from sqlalchemy import BigInteger, Numeric, cast, delete, func, insert, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from importers.base import RawDocument, StatementError, StatementLine, item_label
from ledger.events.schema import nul_path
from ledger.periods import Period
from ledger.pricing.catalog import shared_catalog
from ledger.pricing.model_names import first_known, normalize_model_name
from ledger.reconcile.matching import counted_figures, finest_grains, grain_of, sum_present
from ledger.reconcile.model import DIMENSIONS
from ledger.storage.database import take_turns
from ledger.storage.tables import Money, Quantity, StatementDocument, StatementDocumentPart, StatementImport
from ledger.storage.tables import StatementLine as StatementLineRow


@dataclass
class SummaryRow:
    """Tokens and money of one provider × model, by usage type."""

    provider: str
    model: str
    quantities: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    amounts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))


@dataclass(frozen=True)
class ImportSummary:
    source: str
    period: Period
    documents: int
    lines: int
    replaced: int
    rows: list[SummaryRow]
    unrecognised: dict[str, int]


def covering_period(lines: Sequence[StatementLine]) -> Period:
    """The calendar months a file's lines cover, for imports that name no period."""
    if not lines:
        raise ValueError("the documents hold no statement line, so they cover no period; pass --period")
    first = Period.containing(min(line.period_start for line in lines))
    last = Period.containing(max(line.period_start for line in lines))
    return Period(first.start, last.end)


def store_statements(
    session: Session,
    *,
    tenant_id: int,
    source: str,
    period: Period | None,
    documents: Sequence[RawDocument],
    lines: Iterable[StatementLine],
    now: datetime,
) -> ImportSummary:
    """Archive `documents` and make `lines` the source's lines for `period` (None: the months the lines cover),
    replacing earlier imports. `lines` is read once, as it comes. A line that cannot be stored as it is refuses
    the whole import, naming its document, location and field; nothing is written then. A line that gives
    several names for its model is stored for the first the price catalog knows (`known_model`)."""
    staged = _LineTally()
    _create_staging(session)
    with _copy_staging(session) as copy:
        for given in lines:
            line = staged.with_known_model(given)
            raw = check_storable(line)
            if period is not None and line.period_start not in period:
                raise ValueError(
                    f"{line.document}: {line.location}: line for {line.period_start.date()} is outside the period "
                    f"{period.label}"
                )
            staged.add(line)
            copy.write_row(_staged_row(line, staged.model_of(line), raw))
    period = period or staged.covering_period()
    # Imports of one source's period take turns: two at once (the daily pull and a hand import) would each
    # delete the lines the other has not committed yet, then both insert theirs, billing the month twice.
    take_turns(session, "import", tenant_id, source, period.start.isoformat(), period.end.isoformat())
    replaced = session.execute(
        delete(StatementLineRow).where(
            StatementLineRow.tenant_id == tenant_id,
            StatementLineRow.source == source,
            StatementLineRow.period_start >= period.start,
            StatementLineRow.period_start < period.end,
        )
    ).rowcount  # type: ignore[attr-defined]
    document_ids = {
        document.name: _archive(session, tenant_id, source, period, document, now) for document in documents
    }
    session.execute(
        text(_MOVE_STAGED),
        {
            "tenant_id": tenant_id,
            "import_period_start": period.start,
            "names": list(document_ids),
            "ids": list(document_ids.values()),
        },
    )
    session.add(
        StatementImport(
            tenant_id=tenant_id,
            source=source,
            period_start=period.start,
            period_end=period.end,
            imported_at=now,
            documents=len(documents),
            lines=staged.count,
            unknown_lines=sum(staged.unrecognised.values()),
        )
    )
    session.flush()
    return ImportSummary(
        source, period, len(documents), staged.count, replaced, staged.summary(), dict(staged.unrecognised)
    )


class _LineTally:
    """What an import's summary needs, added up line by line: a few sums per provider × model × usage type ×
    grain, whatever the number of lines."""

    def __init__(self) -> None:
        self.count = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.unrecognised: Counter[str] = Counter()
        # (provider, model, usage type, grain) → [quantity sum or None, amount sum or None]
        self._sums: dict[tuple[str, str | None, str, tuple[str, ...]], list[Decimal | None]] = {}
        self._models: dict[tuple[str, str], str] = {}
        self._known: dict[tuple[str, tuple[str, ...]], str | None] = {}

    def with_known_model(self, line: StatementLine) -> StatementLine:
        """The line with, of its `model_labels`, the first the shared price catalog knows as its model (the first
        label when none is known); remembered per provider and labels."""
        if len(line.model_labels) < 2:
            return line
        key = (line.provider, line.model_labels)
        known = self._known.get(key)
        if key not in self._known:
            known = self._known[key] = known_model(line)
        return line if known == line.model else replace(line, model=known, model_labels=())

    def model_of(self, line: StatementLine) -> str | None:
        """The line's model, normalized (remembered per provider and model as written)."""
        if not line.model:
            return None
        key = (line.provider, line.model)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = normalize_model_name(line.provider, line.model)
        return model

    def add(self, line: StatementLine) -> None:
        self.count += 1
        self.first = line.period_start if self.first is None else min(self.first, line.period_start)
        self.last = line.period_start if self.last is None else max(self.last, line.period_start)
        if line.usage_type == "other":
            self.unrecognised[item_label(line)] += 1
        sums = self._sums.setdefault(
            (line.provider, self.model_of(line), line.usage_type, grain_of(line)), [None, None]
        )
        sums[0] = sum_present(sums[0], line.quantity)
        sums[1] = sum_present(sums[1], line.amount)

    def covering_period(self) -> Period:
        """The calendar months the lines cover, for imports that name no period."""
        if self.first is None or self.last is None:
            raise ValueError("the documents hold no statement line, so they cover no period; pass --period")
        return Period(Period.containing(self.first).start, Period.containing(self.last).end)

    def summary(self) -> list[SummaryRow]:
        """As `summarize` would give for the lines: each figure counted once, at its finest grain."""
        finest = finest_grains(
            (provider, f"{figure}:{usage_type}", grain)
            for (provider, _, usage_type, grain), sums in self._sums.items()
            for figure, value in zip(("quantity", "amount"), sums, strict=True)
            if value is not None
        )
        rows: dict[tuple[str, str], SummaryRow] = {}
        for (provider, model, usage_type, grain), (quantity, amount) in self._sums.items():
            row = rows.setdefault((provider, model or "(all models)"), SummaryRow(provider, model or "(all models)"))
            if quantity is not None and finest.get((provider, f"quantity:{usage_type}")) == grain:
                row.quantities[usage_type] += quantity
            if amount is not None and finest.get((provider, f"amount:{usage_type}")) == grain:
                row.amounts[usage_type] += amount
        return [rows[key] for key in sorted(rows)]


_STAGED_COLUMNS = (
    "document",
    "source",
    "provider",
    "account",
    "api_key_id",
    "model_raw",
    "model",
    "service_tier",
    "period_start",
    "period_end",
    "usage_type",
    "quantity",
    "unit",
    "amount",
    "currency",
    "request_id",
    "final",
    "location",
    "raw",
)
_STAGED_TYPES = (
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "text",
    "numeric",
    "text",
    "numeric",
    "text",
    "text",
    "bool",
    "text",
    "jsonb",
)
_LINE_COLUMNS = ", ".join(column for column in _STAGED_COLUMNS if column != "document")
_MOVE_STAGED = f"""
INSERT INTO statement_lines (tenant_id, document_id, import_period_start, {_LINE_COLUMNS})
SELECT :tenant_id, coalesce(documents.id, 0), :import_period_start, {_LINE_COLUMNS}
FROM statement_line_staging AS staged
LEFT JOIN unnest(CAST(:names AS text[]), CAST(:ids AS bigint[])) AS documents (name, id)
    ON documents.name = staged.document
"""


def _create_staging(session: Session) -> None:
    """The connection's staging table for this transaction, empty."""
    columns = ", ".join(f"{name} {kind}" for name, kind in zip(_STAGED_COLUMNS, _STAGED_TYPES, strict=True))
    session.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS statement_line_staging ({columns}) ON COMMIT DROP"))
    session.execute(text("TRUNCATE statement_line_staging"))


@contextmanager
def _copy_staging(session: Session) -> Iterator[Copy]:
    connection: psycopg.Connection[Any] = session.connection().connection.driver_connection  # type: ignore[assignment]
    with connection.cursor() as cursor:
        statement: str = f"COPY statement_line_staging ({', '.join(_STAGED_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(list(_STAGED_TYPES))
            yield copy


def _staged_row(line: StatementLine, model: str | None, raw: str) -> tuple[Any, ...]:
    return (
        line.document,
        line.source,
        line.provider,
        line.account,
        line.api_key_id,
        line.model,
        model,
        line.service_tier,
        line.period_start,
        line.period_end,
        line.usage_type,
        line.quantity,
        line.unit,
        line.amount,
        line.currency,
        line.request_id,
        line.final,
        line.location,
        Jsonb(raw, dumps=_as_written),
    )


def _as_written(text: str) -> str:
    """`Jsonb`'s dumps for a value that is JSON text already."""
    return text


def _limit(column: Numeric[Decimal]) -> Decimal:
    """The first magnitude a numeric(precision, scale) column cannot hold."""
    return Decimal(10) ** ((column.precision or 0) - (column.scale or 0))


QUANTITY_LIMIT = _limit(Quantity)
AMOUNT_LIMIT = _limit(Money)
_TEXT_FIELDS = ("provider", "account", "api_key_id", "model", "service_tier", "unit", "currency", "request_id")


def check_storable(line: StatementLine) -> str:
    """Refuse, naming the document, location and field, what the statement tables cannot hold as given: a number
    beyond its column (PostgreSQL would only say "numeric field overflow") or a NUL character in any text. The
    line's raw values as the JSON text to store."""
    for name, limit in (("quantity", QUANTITY_LIMIT), ("amount", AMOUNT_LIMIT)):
        value: Decimal | None = getattr(line, name)
        if value is not None and (not value.is_finite() or abs(value) >= limit):
            raise StatementError(
                line.document, line.location, name, f"{value} is beyond what a line holds (< {limit:.0E})"
            )
    for name in _TEXT_FIELDS:
        text = getattr(line, name)
        if text is not None and "\x00" in text:
            raise StatementError(line.document, line.location, name, "holds a NUL character, which cannot be stored")
    raw = json.dumps(line.raw, default=str)
    field = nul_path(line.raw, "") if "\\u0000" in raw else None  # JSON writes a NUL so: one search, in C
    if field is not None:
        raise StatementError(line.document, line.location, field, "holds a NUL character, which cannot be stored")
    return raw


def known_model(line: StatementLine) -> str | None:
    """Of the names the line gives its model (`model_labels`, else `model`), the first the shared price catalog
    (no tenant's prices or aliases) knows, else the first."""
    if not line.model_labels:
        return line.model
    return first_known(line.provider, line.model_labels, shared_catalog().resolve)


def summarize(lines: Iterable[StatementLine]) -> list[SummaryRow]:
    """Quantities and amounts per provider × model × usage type, each counted once (`counted_figures`)."""
    rows: dict[tuple[str, str], SummaryRow] = {}
    for line, quantity, amount in counted_figures(list(lines), grain_of):
        written = known_model(line)
        model = normalize_model_name(line.provider, written) if written else "(all models)"
        row = rows.setdefault((line.provider, model), SummaryRow(line.provider, model))
        if quantity is not None:
            row.quantities[line.usage_type] += quantity
        if amount is not None:
            row.amounts[line.usage_type] += amount
    return [rows[key] for key in sorted(rows)]


def statement_totals(session: Session, tenant_id: int, period: Period) -> list[dict[str, Any]]:
    """Totals by provider × account × model × usage type for lines starting in `period`, each figure counted
    once (`counted_figures`): `lines` counts the lines whose quantity or amount the totals hold."""
    line = StatementLineRow
    stated = [line.api_key_id.is_not(None).label("by_api_key_id"), line.service_tier.is_not(None).label("by_tier")]
    query = (
        select(
            line.provider,
            line.account,
            line.model,
            *stated,
            line.usage_type,
            line.currency,
            func.sum(line.quantity).label("quantity"),
            func.sum(line.amount).label("amount"),
            cast(func.count(), BigInteger).label("lines"),
        )
        .where(line.tenant_id == tenant_id, line.period_start >= period.start, line.period_start < period.end)
        .group_by(line.provider, line.account, line.model, *stated, line.usage_type, line.currency)
    )
    rows: list[Any] = list(session.execute(query))
    totals: dict[tuple[Any, ...], list[Any]] = {}
    for row, quantity, amount in counted_figures(rows, _grain_of_totals):
        if quantity is None and amount is None:
            continue
        total = totals.setdefault((row.provider, row.account, row.model, row.usage_type, row.currency), [None, None, 0])
        total[0], total[1] = sum_present(total[0], quantity), sum_present(total[1], amount)
        total[2] += row.lines
    return [
        {
            "provider": provider,
            "account": account,
            "model": model,
            "usage_type": usage_type,
            "quantity": None if quantity is None else str(quantity.normalize()),
            "amount": None if amount is None else str(amount),
            "currency": currency,
            "lines": lines,
        }
        for (provider, account, model, usage_type, currency), (quantity, amount, lines) in sorted(
            totals.items(), key=lambda item: tuple("" if part is None else part for part in item[0][:4])
        )
    ]


def _grain_of_totals(row: Any) -> tuple[str, ...]:
    """`grain_of` a row of statement_totals' query, which has flags in place of the key and tier."""
    given = {"account": row.account is not None, "api_key_id": row.by_api_key_id}
    given |= {"model": row.model is not None, "service_tier": row.by_tier}
    return tuple(name for name in DIMENSIONS if given[name])


ARCHIVE_PART_BYTES = 8 * 1024 * 1024


def _archive(
    session: Session, tenant_id: int, source: str, period: Period, document: RawDocument, now: datetime
) -> int:
    """The archived document's id. A file-backed document is stored in parts (read a part at a time) unless
    the same file was archived for the period before."""
    statement: Any = (
        pg_insert(StatementDocument)
        .values(
            tenant_id=tenant_id,
            source=source,
            name=document.name,
            sha256=document.sha256,
            media_type=document.media_type,
            content=None if document.path is not None else document.content,
            period_start=period.start,
            period_end=period.end,
            imported_at=now,
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "source", "period_start", "sha256"],
            set_={"imported_at": now, "name": document.name},
        )
        .returning(StatementDocument.id, literal_column("xmax = 0").label("inserted"))
    )
    document_id, inserted = session.execute(statement).one()
    if inserted and document.path is not None:
        with document.open() as stream:
            part = 0
            while content := stream.read(ARCHIVE_PART_BYTES):
                session.execute(
                    insert(StatementDocumentPart).values(
                        tenant_id=tenant_id, document_id=document_id, part=part, content=content
                    )
                )
                part += 1
    return int(document_id)
