"""The monthly reconciliation report: per provider × account × model, logged and billed tokens, expected and
billed cost, their difference and the findings count; totals per currency. `monthly_report` builds it from
drift rows and finding counts and `to_csv` / `to_json` / `to_html` render it, all pure; the one function
with I/O is `send_monthly_report`, which reads the period and queues the report to the tenant's alert
channels (the scheduler calls it once a month is closed)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.orm import Session

from ledger.alerts import rules
from ledger.alerts.channels import enabled_channels
from ledger.alerts.messages import Attachment, Message
from ledger.alerts.outbox import queue_to_channels
from ledger.display import money, percent, plain_decimal, signed_money, tokens
from ledger.periods import Period
from ledger.queries import sources
from ledger.queries.footing import footed
from ledger.queries.sources import DriftLine
from ledger.vocabulary import TOKEN_CATEGORIES
from reports.rendering import environment

FORMATS = ("html", "csv", "json")
CSV_COLUMNS = (
    "provider",
    "account",
    "model",
    "logged_tokens",
    "billed_tokens",
    "token_categories",
    "expected_cost",
    "billed_cost",
    "difference",
    "percent",
    "currency",
    "findings",
)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class MonthlyRow:
    provider: str
    account: str
    model: str
    logged_tokens: int
    """Logged tokens of the `token_categories` (of every category when the statement states no tokens), so
    that they compare with `billed_tokens`."""
    billed_tokens: int | None
    token_categories: tuple[str, ...]
    """The token categories the statement states for this row, in TOKEN_CATEGORIES order (none: it states money
    only, or nothing)."""
    unstated_usage: tuple[str, ...]
    """Categories with logged tokens that the statement does not state (left out of `logged_tokens`)."""
    expected_cost: Decimal | None
    billed_cost: Decimal | None
    difference: Decimal | None
    percent: Decimal | None
    currency: str
    findings: int


@dataclass(frozen=True, slots=True)
class MonthlyTotal:
    """The rows of one currency summed; a money total is None when no row has that figure."""

    currency: str
    logged_tokens: int
    billed_tokens: int | None
    expected_cost: Decimal | None
    billed_cost: Decimal | None
    difference: Decimal | None
    percent: Decimal | None
    findings: int


@dataclass(frozen=True, slots=True)
class MonthlyReport:
    tenant: str
    period: Period
    generated_at: datetime
    rows: tuple[MonthlyRow, ...]
    totals: tuple[MonthlyTotal, ...]
    unattributed_findings: int
    """Findings of the period whose scope matches no row (a provider-wide finding, say)."""
    has_input: bool = True
    """Whether the period has logged usage or statement lines: without either there is nothing to reconcile."""

    @property
    def findings(self) -> int:
        return sum(total.findings for total in self.totals) + self.unattributed_findings

    def written(self) -> tuple[list[tuple[MonthlyRow, WrittenCosts]], list[tuple[MonthlyTotal, WrittenCosts]]]:
        """Rows and totals with their money as written: to the cent, each currency's column adding up to its
        total (round once, then distribute the remainder: `ledger.queries.footing`)."""
        return written_costs(self.rows, self.totals)


@dataclass(frozen=True, slots=True)
class WrittenCosts:
    expected_cost: Decimal | None
    billed_cost: Decimal | None
    difference: Decimal | None


def written_costs(
    rows: Sequence[MonthlyRow], totals: Sequence[MonthlyTotal]
) -> tuple[list[tuple[MonthlyRow, WrittenCosts]], list[tuple[MonthlyTotal, WrittenCosts]]]:
    """`MonthlyReport.written` of any rows and their totals (one total per currency)."""
    written_rows: dict[int, WrittenCosts] = {}
    written_totals = []
    for total in totals:
        indexes = [index for index, row in enumerate(rows) if row.currency == total.currency]
        columns = [
            footed([getattr(rows[index], name) for index in indexes])
            for name in ("expected_cost", "billed_cost", "difference")
        ]
        for position, index in enumerate(indexes):
            written_rows[index] = WrittenCosts(*(column[0][position] for column in columns))
        written_totals.append((total, WrittenCosts(*(column[1] for column in columns))))
    return [(row, written_rows[index]) for index, row in enumerate(rows)], written_totals


def monthly_report(
    tenant: str,
    period: Period,
    drift: Sequence[DriftLine],
    finding_counts: Iterable[tuple[str, str, str, str, str, int]],
    *,
    generated_at: datetime,
    has_input: bool = True,
) -> MonthlyReport:
    """The report from the period's drift rows and finding counts (as `sources.finding_counts` gives them)."""
    per_scope: Counter[tuple[str, str, str]] = Counter()
    for provider, account, model, _severity, _status, count in finding_counts:
        per_scope[(provider, account, model)] += count
    rows = tuple(
        MonthlyRow(
            provider=line.provider,
            account=line.account,
            model=line.model,
            **_compared_tokens(line),
            expected_cost=line.expected_cost,
            billed_cost=line.billed_cost,
            difference=line.difference,
            percent=line.percent,
            currency=line.currency,
            findings=per_scope.pop((line.provider, line.account, line.model), 0),
        )
        for line in sorted(drift, key=lambda d: (d.provider, d.account, d.model))
    )
    currencies = sorted({row.currency for row in rows})
    return MonthlyReport(
        tenant=tenant,
        period=period,
        generated_at=generated_at,
        rows=rows,
        totals=tuple(_total(currency, [row for row in rows if row.currency == currency]) for currency in currencies),
        unattributed_findings=sum(per_scope.values()),
        has_input=has_input,
    )


def _compared_tokens(line: DriftLine) -> dict[str, Any]:
    logged, stated, unstated = compared_tokens(line.logged_by_category, line.billed_by_category, line.logged_tokens)
    return {
        "logged_tokens": logged,
        "billed_tokens": line.billed_tokens,
        "token_categories": stated,
        "unstated_usage": unstated,
    }


def compared_tokens(
    logged_by_category: Mapping[str, Any], billed_by_category: Mapping[str, Any], logged_total: int
) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Logged tokens over the categories the statement states, so they compare with the billed ones (OpenRouter's
    activity, say, states output tokens alone: its input, cached or not, cannot be told apart there); those
    categories; and the categories with logged tokens it leaves out. A statement stating no tokens compares
    every logged token."""
    stated = tuple(category for category in TOKEN_CATEGORIES if category in billed_by_category)
    if not stated:
        return logged_total, (), ()
    used = [category for category in TOKEN_CATEGORIES if int(logged_by_category.get(category) or 0)]
    logged = sum(int(logged_by_category.get(category) or 0) for category in stated)
    return logged, stated, tuple(category for category in used if category not in stated)


class Costed(Protocol):
    """Anything with expected and billed cost and their difference (drift rows, report rows)."""

    @property
    def expected_cost(self) -> Decimal | None: ...
    @property
    def billed_cost(self) -> Decimal | None: ...
    @property
    def difference(self) -> Decimal | None: ...


@dataclass(frozen=True, slots=True)
class CostTotals:
    """Sums of known figures (None when none is known). `difference` and `percent` cover only the lines that
    have both an expected and a billed cost, so usage no statement covers never counts as drift."""

    expected_cost: Decimal | None
    billed_cost: Decimal | None
    difference: Decimal | None
    percent: Decimal | None


def cost_totals(lines: Sequence[Costed]) -> CostTotals:
    compared = [line for line in lines if line.difference is not None]
    difference = _sum(line.difference for line in compared)
    compared_expected = _sum(line.expected_cost for line in compared)
    return CostTotals(
        expected_cost=_sum(line.expected_cost for line in lines),
        billed_cost=_sum(line.billed_cost for line in lines),
        difference=difference,
        percent=(difference / compared_expected * HUNDRED).quantize(Decimal("0.01"))
        if difference is not None and compared_expected
        else None,
    )


def _total(currency: str, rows: list[MonthlyRow]) -> MonthlyTotal:
    costs = cost_totals(rows)
    return MonthlyTotal(
        currency=currency,
        logged_tokens=sum(row.logged_tokens for row in rows),
        billed_tokens=_sum_int(row.billed_tokens for row in rows),
        expected_cost=costs.expected_cost,
        billed_cost=costs.billed_cost,
        difference=costs.difference,
        percent=costs.percent,
        findings=sum(row.findings for row in rows),
    )


def as_dict(report: MonthlyReport) -> dict[str, Any]:
    """The report as JSON-ready data: money and percents as exact decimal strings."""
    return {
        "tenant": report.tenant,
        "period": report.period.label,
        "period_start": report.period.start.isoformat(),
        "period_end": report.period.end.isoformat(),
        "generated_at": report.generated_at.isoformat(),
        "rows": [_row_dict(row) for row in report.rows],
        "totals": [
            {
                "currency": total.currency,
                "logged_tokens": total.logged_tokens,
                "billed_tokens": total.billed_tokens,
                "token_categories": "",
                "expected_cost": plain_decimal(total.expected_cost),
                "billed_cost": plain_decimal(total.billed_cost),
                "difference": plain_decimal(total.difference),
                "percent": plain_decimal(total.percent),
                "findings": total.findings,
            }
            for total in report.totals
        ],
        "unattributed_findings": report.unattributed_findings,
    }


def to_json(report: MonthlyReport) -> str:
    return json.dumps(as_dict(report), indent=2, ensure_ascii=False) + "\n"


def to_csv(report: MonthlyReport) -> str:
    """One line per row, then one `TOTAL` line per currency (account and model empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in as_dict(report)["rows"]:
        writer.writerow([_csv_cell(column, row[column]) for column in CSV_COLUMNS])
    for total in as_dict(report)["totals"]:
        line = {**total, "provider": "TOTAL", "account": "", "model": ""}
        writer.writerow([_csv_cell(column, line[column]) for column in CSV_COLUMNS])
    return out.getvalue()


_LABEL_COLUMNS = frozenset({"provider", "account", "model"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(column: str, value: Any) -> Any:
    """A value for the CSV. Labels come from whoever sent usage or wrote a statement, and a spreadsheet runs a cell
    that starts like a formula (`=HYPERLINK(…)`): such a label is written with a leading apostrophe, which the
    spreadsheet shows as text (OWASP, "CSV Injection"). Numbers are never changed."""
    if value is None:
        return ""
    if column in _LABEL_COLUMNS and isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_html(report: MonthlyReport) -> str:
    """A standalone, printable HTML document (styles inline, no script)."""
    return environment().get_template("monthly_document.html").render(report=report)


def render(report: MonthlyReport, output_format: str) -> str:
    if output_format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    return {"html": to_html, "csv": to_csv, "json": to_json}[output_format](report)


def monthly_message(report: MonthlyReport) -> Message:
    """The report as an alert: totals in the text, the report as JSON data, HTML and CSV for email."""
    lines = [
        f"{total.currency}: expected {money(total.expected_cost, total.currency)}, billed "
        f"{money(total.billed_cost, total.currency)}, difference {signed_money(total.difference, total.currency)}"
        f" ({percent(total.percent)}); {tokens(total.logged_tokens)} tokens logged"
        for total in report.totals
    ] or ["No reconciliation for this period yet."]
    label = report.period.label
    return Message(
        topic="monthly_report",
        title=f"TokenLedger monthly report {label} for {report.tenant}",
        text="\n".join([*lines, f"{report.findings} findings."]),
        facts=(
            ("Tenant", report.tenant),
            ("Period", label),
            ("Rows", str(len(report.rows))),
            ("Findings", str(report.findings)),
        ),
        data=as_dict(report),
        html=to_html(report),
        attachments=(Attachment(f"tokenledger-{label}.csv", "text/csv", to_csv(report)),),
    )


def load_monthly_report(session: Session, tenant_id: int, period: Period, now: datetime) -> MonthlyReport:
    """Read the period's drift rows and findings of the tenant and build its report."""
    return monthly_report(
        sources.tenant_name(session, tenant_id),
        period,
        sources.drift_lines(session, tenant_id, period),
        sources.finding_counts(session, tenant_id, period),
        generated_at=now,
        has_input=sources.has_input(session, tenant_id, period),
    )


def send_monthly_report(session: Session, tenant_id: int, period: Period, now: datetime) -> int:
    """Queue the period's report to every enabled alert channel of the tenant, once per period; returns how
    many alerts were queued. Runs in the caller's transaction."""
    report = load_monthly_report(session, tenant_id, period, now)
    return queue_to_channels(
        session,
        tenant_id,
        enabled_channels(session, tenant_id),
        rules.monthly_report_key(period.label),
        monthly_message(report),
        now,
    )


def _row_dict(row: MonthlyRow) -> dict[str, Any]:
    return {
        "provider": row.provider,
        "account": row.account,
        "model": row.model,
        "logged_tokens": row.logged_tokens,
        "billed_tokens": row.billed_tokens,
        "token_categories": " ".join(row.token_categories),
        "expected_cost": plain_decimal(row.expected_cost),
        "billed_cost": plain_decimal(row.billed_cost),
        "difference": plain_decimal(row.difference),
        "percent": plain_decimal(row.percent),
        "currency": row.currency,
        "findings": row.findings,
    }


def _sum(values: Iterable[Decimal | None]) -> Decimal | None:
    known = [value for value in values if value is not None]
    return sum(known, Decimal(0)) if known else None


def _sum_int(values: Iterable[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None
