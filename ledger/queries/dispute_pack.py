"""A finding's dispute pack: one ZIP to send a provider's billing support. Built from plain data read by
`ledger.queries.sources`; the one function with I/O is `load_dispute_pack`, which reads (never writes) them.

- `summary.txt`: one page: the finding, what was billed (the statement lines summed), what was used (logged
  usage in the same scope and period, priced with the catalog), the arithmetic, and the prices applied with
  their source and date;
- `statement_lines.csv`: the statement lines with their provenance (document, SHA-256, location, raw values);
- `events.csv`: the usage events in the finding's scope and period, as `GET /v1/events` lists them;
- `finding.json`: the finding as `GET /v1/findings/{id}` gives it."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from ledger.display import money, plain_decimal, signed_money, tokens, when
from ledger.periods import Period
from ledger.pricing.prices import PriceRow
from ledger.queries import sources
from ledger.queries.finding_sources import StatementSource, events_url, explanation
from ledger.queries.findings import finding_json, get_finding
from ledger.queries.money_over_time import CATEGORY_LABELS, LoggedMoney

LINE_COLUMNS = (
    "line_id",
    "source",
    "document",
    "document_sha256",
    "location",
    "period_start",
    "period_end",
    "usage_type",
    "model_as_billed",
    "quantity",
    "unit",
    "amount",
    "currency",
    "raw",
)
EVENT_COLUMNS = (
    "event_id",
    "occurred_at",
    "provider",
    "account",
    "api_key_id",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "finish_reason",
    "status_code",
    "error_type",
    "app",
    "provider_request_id",
    "reported_cost",
)


@dataclass(frozen=True, slots=True)
class Used:
    """Logged usage in a finding's scope and period: tokens per category, and its expected cost in USD (None
    where some of it has no price)."""

    tokens: Mapping[str, int]
    expected: Decimal | None


def used_in_scope(logged: Iterable[LoggedMoney], finding: Mapping[str, Any]) -> Used:
    """The logged usage (as `sources.logged_money` reads it) in the finding's provider, account, key, model and
    days."""
    first = datetime.fromisoformat(str(finding["period_start"])).date()
    end = datetime.fromisoformat(str(finding["period_end"])).date()
    counts: dict[str, int] = {}
    expected: Decimal | None = Decimal(0)
    for row in logged:
        if not first <= row.day < end or row.provider != finding["provider"]:
            continue
        if any(finding.get(name) is not None and getattr(row, name) != finding[name] for name in _SCOPE):
            continue
        for category, count in row.tokens.items():
            counts[category] = counts.get(category, 0) + count
        expected = None if expected is None or row.expected is None else expected + row.expected
    return Used(
        tokens={category: counts[category] for category in CATEGORY_LABELS if counts.get(category)}, expected=expected
    )


_SCOPE = ("account", "api_key_id", "model")


def summary_text(
    finding: Mapping[str, Any],
    lines: Sequence[StatementSource],
    used: Used,
    prices: Sequence[PriceRow],
    *,
    generated_at: datetime,
) -> str:
    """The one-page summary."""
    scope = " / ".join(
        str(finding[name]) for name in ("provider", "account", "api_key_id", "model") if finding.get(name)
    )
    kind = str(finding["kind"]).replace("_", " ")
    out = [
        f"TokenLedger dispute pack — finding #{finding['id']}: {kind} ({finding['severity']})",
        f"Scope: {scope}",
        f"Period: {finding['period_start']} to {finding['period_end']} (UTC, end exclusive)",
        f"Generated: {when(generated_at)}",
        "",
        "What we found",
        *(f"  {sentence}" for sentence in explanation(finding)),
        "",
        "What was billed (the statement lines in statement_lines.csv)",
    ]
    billed_amounts: dict[str, Decimal] = {}
    quantities: dict[tuple[str, str], Decimal] = {}
    for line in lines:
        if line.amount is not None:
            code = line.currency or "USD"
            billed_amounts[code] = billed_amounts.get(code, Decimal(0)) + line.amount
        if line.quantity is not None:
            key = (line.usage_type, line.unit or "")
            quantities[key] = quantities.get(key, Decimal(0)) + line.quantity
    for (usage_type, unit), quantity in sorted(quantities.items()):
        if not quantity:
            continue
        out.append(f"  {usage_type.replace('_', ' ')}: {tokens(quantity)} {unit}".rstrip())
    for code, amount in sorted(billed_amounts.items()):
        out.append(f"  amount: {money(amount, code)}")
    if not lines:
        out.append("  no statement line in this scope and period")
    out += ["", "What was used (usage your applications logged, in events.csv)"]
    for category, count in used.tokens.items():
        out.append(f"  {CATEGORY_LABELS[category]}: {tokens(count)} tokens")
    out.append(f"  expected cost at the prices below: {money(used.expected)}")
    out += ["", "The arithmetic"]
    billed_usd = billed_amounts.get("USD")
    if billed_usd is not None and used.expected is not None:
        difference = signed_money(billed_usd - used.expected)
        out.append(f"  billed {money(billed_usd)} − expected {money(used.expected)} = {difference}")
    else:
        out.append("  billed and expected cannot both be stated in USD for this scope")
    out.append(f"  the finding's estimate of the amount in question: {money(Decimal(str(finding['impact_usd'])))}")
    evidence = finding.get("evidence") or {}
    for name in ("expected", "billed", "difference", "tolerance"):
        if name in evidence and not isinstance(evidence[name], (dict, list)):
            out.append(f"  the detector's {name}: {evidence[name]}")
    out += ["", "Prices applied (per unit, in effect at the start of the period)"]
    for row in prices:
        out.append(
            f"  {row.token_type} ({row.service_tier}): {plain_decimal(row.unit_price)} {row.currency} per {row.unit}"
            f" — source: {row.source}, {row.source_date.isoformat()};"
            f" in effect from {row.valid_from.date().isoformat()}"
        )
    if not prices:
        out.append("  no catalog price for this model")
    out += [
        "",
        "Files",
        "  statement_lines.csv  every statement line above, with its document, SHA-256, location and raw values",
        f"  events.csv           the logged events (GET {events_url(finding, limit=1000)})",
        "  finding.json         the finding with all its evidence",
    ]
    return "\n".join(out) + "\n"


def lines_csv(lines: Sequence[StatementSource]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LINE_COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line.id,
                line.source,
                _cell(line.document),
                line.sha256,
                _cell(line.location),
                line.period_start.isoformat(),
                line.period_end.isoformat(),
                line.usage_type,
                _cell(line.model_raw or ""),
                plain_decimal(line.quantity) or "",
                line.unit or "",
                plain_decimal(line.amount) or "",
                line.currency or "",
                json.dumps(line.raw, ensure_ascii=False, sort_keys=True, default=str),
            ]
        )
    return out.getvalue()


def events_csv(events: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EVENT_COLUMNS)
    for event in events:
        writer.writerow([_cell(event.get(column)) for column in EVENT_COLUMNS])
    return out.getvalue()


def dispute_pack(
    finding: Mapping[str, Any],
    lines: Sequence[StatementSource],
    events: Iterable[Mapping[str, Any]],
    used: Used,
    prices: Sequence[PriceRow],
    *,
    generated_at: datetime,
) -> bytes:
    """The ZIP's bytes."""
    buffer = io.BytesIO()
    stamp = generated_at.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            ("summary.txt", summary_text(finding, lines, used, prices, generated_at=generated_at)),
            ("statement_lines.csv", lines_csv(lines)),
            ("events.csv", events_csv(events)),
            ("finding.json", json.dumps(finding, indent=2, ensure_ascii=False, default=str) + "\n"),
        ):
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), text.encode())
    return buffer.getvalue()


EVENT_CAP = 100_000
"""Events written to `events.csv` at most (the summary says when there are more; the query lists them all)."""


def load_dispute_pack(session: Session, tenant_id: int, finding_id: int, *, now: datetime) -> tuple[str, bytes]:
    """Read what a finding of the tenant rests on and pack it: (file name, ZIP bytes). Another tenant's finding
    is not found (404)."""
    finding = get_finding(session, tenant_id, finding_id)
    lines, _count = sources.finding_statement_lines(session, tenant_id, finding, limit=None)
    period = Period(finding.period_start, finding.period_end)
    logged = sources.logged_money(session, tenant_id, _whole_days(period))
    data = finding_json(finding)
    pack = dispute_pack(
        data,
        lines,
        sources.all_finding_events(session, tenant_id, finding, cap=EVENT_CAP),
        used_in_scope(logged, data),
        sources.finding_prices(session, tenant_id, finding),
        generated_at=now,
    )
    return filename(data), pack


def _whole_days(period: Period) -> Period:
    """The UTC days a period touches (the rollups are by day)."""
    start = datetime.combine(period.start.astimezone(UTC).date(), time(0), UTC)
    end_day = period.end.astimezone(UTC)
    end = datetime.combine(end_day.date(), time(0), UTC)
    return Period(start, end if end == end_day else end + timedelta(days=1))


def filename(finding: Mapping[str, Any]) -> str:
    return f"tokenledger-finding-{finding['id']}-dispute-pack.zip"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe (as in the monthly CSV)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
