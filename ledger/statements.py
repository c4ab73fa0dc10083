"""Storing billing statements: raw documents archived with their SHA-256, lines normalized, and a re-import of
a source's period replacing its lines in the same transaction (so totals never depend on how often a period
was imported). Services take a session and a `now`, and never commit."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric, cast, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from importers.base import RawDocument, StatementError, StatementLine, unrecognised
from ledger.database import take_turns
from ledger.events import nul_path
from ledger.model_names import normalize_model_name
from ledger.periods import Period
from ledger.reconcile.matching import counted_figures, grain_of, sum_present
from ledger.reconcile.model import DIMENSIONS
from ledger.tables import Money, Quantity, StatementDocument, StatementImport
from ledger.tables import StatementLine as StatementLineRow


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
    period: Period,
    documents: Sequence[RawDocument],
    lines: Sequence[StatementLine],
    now: datetime,
) -> ImportSummary:
    """Archive `documents` and make `lines` the source's lines for `period`, replacing earlier imports. A line
    that cannot be stored as it is refuses the whole import, naming its document, location and field."""
    for line in lines:
        check_storable(line)
    outside = [line for line in lines if line.period_start not in period]
    if outside:
        line = outside[0]
        raise ValueError(
            f"{line.document}: {line.location}: line for {line.period_start.date()} is outside the period "
            f"{period.label}"
        )
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
    if lines:
        session.execute(
            insert(StatementLineRow),
            [_line_row(tenant_id, period, line, document_ids.get(line.document, 0)) for line in lines],
        )
    session.add(
        StatementImport(
            tenant_id=tenant_id,
            source=source,
            period_start=period.start,
            period_end=period.end,
            imported_at=now,
            documents=len(documents),
            lines=len(lines),
            unknown_lines=sum(1 for line in lines if line.usage_type == "other"),
        )
    )
    session.flush()
    return ImportSummary(
        source, period, len(documents), len(lines), replaced, summarize(lines), dict(unrecognised(lines))
    )


def _limit(column: Numeric[Decimal]) -> Decimal:
    """The first magnitude a numeric(precision, scale) column cannot hold."""
    return Decimal(10) ** ((column.precision or 0) - (column.scale or 0))


QUANTITY_LIMIT = _limit(Quantity)
AMOUNT_LIMIT = _limit(Money)
_TEXT_FIELDS = ("provider", "account", "api_key_id", "model", "service_tier", "unit", "currency", "request_id")


def check_storable(line: StatementLine) -> None:
    """Refuse, naming the document, location and field, what the statement tables cannot hold as given: a number
    beyond its column (PostgreSQL would only say "numeric field overflow") or a NUL character in any text."""
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
    field = nul_path(line.raw, "")
    if field is not None:
        raise StatementError(line.document, line.location, field, "holds a NUL character, which cannot be stored")


def summarize(lines: Iterable[StatementLine]) -> list[SummaryRow]:
    """Quantities and amounts per provider × model × usage type, each counted once (`counted_figures`)."""
    rows: dict[tuple[str, str], SummaryRow] = {}
    for line, quantity, amount in counted_figures(list(lines), grain_of):
        model = normalize_model_name(line.provider, line.model) if line.model else "(all models)"
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


def _archive(
    session: Session, tenant_id: int, source: str, period: Period, document: RawDocument, now: datetime
) -> int:
    statement = (
        pg_insert(StatementDocument)
        .values(
            tenant_id=tenant_id,
            source=source,
            name=document.name,
            sha256=document.sha256,
            media_type=document.media_type,
            content=document.content,
            period_start=period.start,
            period_end=period.end,
            imported_at=now,
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "source", "period_start", "sha256"],
            set_={"imported_at": now, "name": document.name},
        )
        .returning(StatementDocument.id)
    )
    return int(session.execute(statement).scalar_one())


def _line_row(tenant_id: int, period: Period, line: StatementLine, document_id: int) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "source": line.source,
        "document_id": document_id,
        "provider": line.provider,
        "account": line.account,
        "api_key_id": line.api_key_id,
        "model_raw": line.model,
        "model": normalize_model_name(line.provider, line.model) if line.model else None,
        "service_tier": line.service_tier,
        "period_start": line.period_start,
        "period_end": line.period_end,
        "usage_type": line.usage_type,
        "quantity": line.quantity,
        "unit": line.unit,
        "amount": line.amount,
        "currency": line.currency,
        "request_id": line.request_id,
        "final": line.final,
        "import_period_start": period.start,
        "location": line.location,
        "raw": json.loads(json.dumps(line.raw, default=str)),
    }
