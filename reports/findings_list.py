"""The findings list of the web report: narrowed by choices (provider, account, model, kind, severity, status),
sorted by any column, and a CSV of what is shown (the page totals the impacts with `ledger.queries.footing`). Pure:
works on the period's findings as `ledger.queries.findings.list_findings` returns them (without their evidence)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from ledger.display import plain_decimal
from ledger.errors import InvalidRequest
from ledger.queries.findings import SEVERITIES, STATUSES, severity_rank
from ledger.storage.tables import Finding

NARROWING = ("provider", "account", "model", "kind", "severity", "status")
"""The filters, each a choice among the values the period's findings have."""

_SORT_KEYS: dict[str, Callable[[Finding], Any]] = {
    "severity": lambda f: (severity_rank(f.severity), f.impact_usd),
    "kind": lambda f: f.kind,
    "scope": lambda f: (f.provider or "", f.account or "", f.api_key_id or "", f.model or ""),
    "period": lambda f: (f.period_start, f.period_end),
    "impact": lambda f: f.impact_usd,
    "status": lambda f: STATUSES.index(f.status) if f.status in STATUSES else len(STATUSES),
}
SORTS = tuple(_SORT_KEYS)
CSV_COLUMNS = (
    "id",
    "severity",
    "kind",
    "provider",
    "account",
    "api_key_id",
    "model",
    "period_start",
    "period_end",
    "impact_usd",
    "status",
    "summary",
)


@dataclass(frozen=True, slots=True)
class ListView:
    """What the list shows: a value per filter (None: any), the column it is sorted by and the direction."""

    provider: str | None = None
    account: str | None = None
    model: str | None = None
    kind: str | None = None
    severity: str | None = None
    status: str | None = None
    sort: str = "severity"
    descending: bool = True

    @classmethod
    def of(cls, sort: str | None, order: str | None, **chosen: str | None) -> ListView:
        """From query parameters; an unknown sort column falls back to severity, empty filters mean any."""
        column = sort if sort in _SORT_KEYS else "severity"
        for name, value in chosen.items():
            if value is not None and "\x00" in value:
                raise InvalidRequest(f"{name} holds a NUL character")
        return cls(
            **{name: chosen.get(name) or None for name in NARROWING},
            sort=column,
            descending=(order or ("desc" if column in ("severity", "impact") else "asc")) != "asc",
        )

    def keeps(self, finding: Finding) -> bool:
        return all(
            getattr(self, name) is None or (getattr(finding, name) or "") == getattr(self, name) for name in NARROWING
        )

    def query(self, **changes: Any) -> str:
        """This view's query string, with `changes` applied (without the period)."""
        view = replace(self, **changes)
        values = {name: getattr(view, name) for name in NARROWING if getattr(view, name)}
        values["sort"] = view.sort
        values["order"] = "desc" if view.descending else "asc"
        return urlencode(values)

    def sort_query(self, column: str) -> str:
        """The query that sorts by `column`: the other direction when it is the current column."""
        if column == self.sort:
            return self.query(descending=not self.descending)
        return self.query(sort=column, descending=column in ("severity", "impact"))

    def arrow(self, column: str) -> str:
        if column != self.sort:
            return ""
        return " ▼" if self.descending else " ▲"

    @property
    def narrowed(self) -> bool:
        return any(getattr(self, name) is not None for name in NARROWING)


def shown(findings: Sequence[Finding], view: ListView) -> list[Finding]:
    """The findings the view keeps, in its order (ties by id)."""
    kept = sorted((f for f in findings if view.keeps(f)), key=lambda f: f.id)
    return sorted(kept, key=_SORT_KEYS[view.sort], reverse=view.descending)


def choices(findings: Sequence[Finding]) -> dict[str, tuple[str, ...]]:
    """Per filter, the values the period's findings have (severities and statuses in their own order)."""
    result: dict[str, tuple[str, ...]] = {}
    for name in NARROWING:
        found = {getattr(f, name) for f in findings if getattr(f, name)}
        if name == "severity":
            result[name] = tuple(level for level in reversed(SEVERITIES) if level in found)
        elif name == "status":
            result[name] = tuple(status for status in STATUSES if status in found)
        else:
            result[name] = tuple(sorted(found))
    return result


def to_csv(findings: Sequence[Finding]) -> str:
    """The findings shown, one line each; impact as an exact decimal; text a spreadsheet would run as a formula
    gets a leading apostrophe (as in the monthly CSV)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for finding in findings:
        writer.writerow([_cell(column, getattr(finding, column)) for column in CSV_COLUMNS])
    return out.getvalue()


def _cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column == "impact_usd":
        return plain_decimal(value)
    if column in ("period_start", "period_end"):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value
