"""Drift over time in money: expected (the catalog's price of logged usage, as the reconciler prices it) against
billed USD per UTC day and provider, with the difference; and, as a second view, tokens compared like with like:
only the token categories the provider's statement states (OpenRouter's activity states output tokens alone, so
its logged output is set against its billed output, never all logged tokens against billed output). Pure.

Inputs are counted once already (`sources.logged_money`, `sources.billed_money`): logged usage per scope × day,
priced; statement figures per scope × day at the finest grain that states them. A filter on account, key or
model keeps the statement lines that state that dimension with that value; lines that do not break down by it
(a provider-wide invoice line, say) cannot be attributed and are counted apart (`unattributed_billed`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ledger.periods import Period
from ledger.queries.footing import footed
from ledger.vocabulary import TOKEN_CATEGORIES, TOKEN_USAGE_TYPES, TokenCategory

USD = "USD"
HUNDRED = Decimal(100)
CATEGORY_LABELS: dict[str, str] = {
    TokenCategory.UNCACHED_INPUT: "uncached input",
    TokenCategory.CACHED_INPUT: "cached input",
    TokenCategory.CACHE_WRITE_5M: "cache writes (5 min)",
    TokenCategory.CACHE_WRITE_1H: "cache writes (1 h)",
    TokenCategory.OUTPUT: "output",
}


@dataclass(frozen=True, slots=True)
class LoggedMoney:
    """Logged usage of one scope × app × UTC day: its expected cost in USD (None: a category it used has no
    price) and its tokens per category."""

    day: date
    provider: str
    account: str
    api_key_id: str
    model: str
    expected: Decimal | None
    tokens: Mapping[str, int]
    app: str = ""


@dataclass(frozen=True, slots=True)
class BilledMoney:
    """Statement figures of one scope × UTC day and usage type, each counted once; a dimension is None where the
    statement does not break down by it. `undated`: the lines span more than a day (a monthly invoice)."""

    undated: bool
    day: date
    provider: str
    account: str | None
    api_key_id: str | None
    model: str | None
    usage_type: str
    quantity: int | None
    amount: Decimal | None
    currency: str


@dataclass(frozen=True, slots=True)
class ScopeFilter:
    """What the page is narrowed to (None: every value)."""

    provider: str | None = None
    account: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    app: str | None = None
    """Statements never state an app: narrowed to one, every statement line is unattributed."""

    @property
    def narrowed(self) -> bool:
        return any(value is not None for value in (self.account, self.api_key_id, self.model, self.app))

    def keeps_logged(self, row: LoggedMoney) -> bool:
        return (
            (self.provider is None or row.provider == self.provider)
            and (self.account is None or row.account == self.account)
            and (self.api_key_id is None or row.api_key_id == self.api_key_id)
            and (self.model is None or row.model == self.model)
            and (self.app is None or row.app == self.app)
        )

    def attributes_billed(self, row: BilledMoney) -> bool | None:
        """True: the line is in the scope; False: it is not; None: it does not state a dimension the filter
        narrows by, so it cannot be told."""
        if self.provider is not None and row.provider != self.provider:
            return False
        for wanted, stated in ((self.account, row.account), (self.api_key_id, row.api_key_id), (self.model, row.model)):
            if wanted is None:
                continue
            if stated is None:
                return None
            if stated != wanted:
                return False
        return None if self.app is not None else True


@dataclass(frozen=True, slots=True)
class MoneyDay:
    day: date
    expected: Decimal
    billed: Decimal | None
    """None on every day when no statement amount in USD of the provider was imported for the period."""

    @property
    def difference(self) -> Decimal | None:
        return None if self.billed is None else self.billed - self.expected


@dataclass(frozen=True, slots=True)
class TokenDay:
    day: date
    logged: int
    billed: int


@dataclass(frozen=True, slots=True)
class FootedRow:
    """A row of the daily table as written: rounded to the cent so that the column adds up to its total."""

    label: str
    expected: Decimal | None
    billed: Decimal | None
    difference: Decimal | None


@dataclass(frozen=True, slots=True)
class ProviderMoney:
    """One provider's days in USD, and its tokens over the categories its statement states."""

    provider: str
    days: tuple[MoneyDay, ...]
    undated_billed: Decimal | None
    """Statement amounts (USD) on lines spanning more than a day: billed, but not on any one day."""
    unattributed_billed: Decimal | None
    """Statement amounts (USD) that do not state the dimension the page is narrowed by."""
    unpriced_tokens: int
    """Logged tokens of scope-days with no expected cost (a model without a price)."""
    other_currencies: Mapping[str, Decimal]
    token_categories: tuple[str, ...]
    """The categories the statement states, in TOKEN_CATEGORIES order (none: it states money only)."""
    token_days: tuple[TokenDay, ...]
    unstated_tokens: Mapping[str, int] = field(default_factory=dict)
    """Logged tokens of categories the statement does not state (left out of the token comparison)."""

    @property
    def billed_known(self) -> bool:
        return any(point.billed is not None for point in self.days) or self.undated_billed is not None

    @property
    def expected_total(self) -> Decimal:
        return sum((point.expected for point in self.days), Decimal(0))

    @property
    def billed_total(self) -> Decimal | None:
        if not self.billed_known:
            return None
        dated = sum((point.billed or Decimal(0) for point in self.days), Decimal(0))
        return dated + (self.undated_billed or Decimal(0))

    @property
    def difference(self) -> Decimal | None:
        billed = self.billed_total
        return None if billed is None else billed - self.expected_total

    @property
    def percent(self) -> Decimal | None:
        difference, expected = self.difference, self.expected_total
        if difference is None or not expected:
            return None
        return (difference / expected * HUNDRED).quantize(Decimal("0.01"))

    @property
    def token_label(self) -> str:
        """The categories compared, in words ("output only", "uncached input, cached input and output")."""
        names = [CATEGORY_LABELS[category] for category in self.token_categories]
        if len(names) == 1:
            return f"{names[0]} only"
        return ", ".join(names[:-1]) + f" and {names[-1]}" if names else ""

    def table(self) -> tuple[list[FootedRow], FootedRow]:
        """The daily rows (and, when there is one, a row of the lines longer than a day) and the total row, each
        column rounded to the cent so that it adds up to its total."""
        labels = [point.day.isoformat() for point in self.days]
        expected: list[Decimal | None] = [point.expected for point in self.days]
        billed: list[Decimal | None] = [point.billed for point in self.days]
        if self.undated_billed is not None:
            labels.append("lines longer than a day")
            expected.append(None)
            billed.append(self.undated_billed)
        differences = [None if b is None else b - (e or Decimal(0)) for e, b in zip(expected, billed, strict=True)]
        rows_e, total_e = footed(expected)
        rows_b, total_b = footed(billed)
        rows_d, total_d = footed(differences)
        rows = [FootedRow(label, e, b, d) for label, e, b, d in zip(labels, rows_e, rows_b, rows_d, strict=True)]
        return rows, FootedRow("total", total_e, total_b, total_d)

    def chart(self) -> dict[str, Any]:
        """Expected and billed USD per day (lines) and their difference (bars), in cents as decimal strings that
        add up to the totals shown under the chart."""
        rows, _total = self.table()
        dated = rows[: len(self.days)]
        return {
            "labels": [row.label for row in dated],
            "datasets": [
                {"label": "expected USD", "data": [_text(row.expected) for row in dated]},
                {"label": "billed USD", "data": [_text(row.billed) for row in dated]},
                {"label": "billed − expected USD", "data": [_text(row.difference) for row in dated], "type": "bar"},
            ],
        }

    def token_chart(self) -> dict[str, Any]:
        return {
            "labels": [point.day.isoformat() for point in self.token_days],
            "datasets": [
                {"label": f"logged tokens ({self.token_label})", "data": [p.logged for p in self.token_days]},
                {"label": f"billed tokens ({self.token_label})", "data": [p.billed for p in self.token_days]},
            ],
        }


@dataclass(frozen=True, slots=True)
class MoneyOverTime:
    providers: tuple[ProviderMoney, ...]
    filter: ScopeFilter

    def totals(self) -> dict[str, Decimal | None]:
        """Expected, billed and difference over the providers shown (a difference only where billed is known)."""
        known = [p for p in self.providers if p.billed_total is not None]
        return {
            "expected": sum((p.expected_total for p in self.providers), Decimal(0)) if self.providers else None,
            "billed": sum((p.billed_total or Decimal(0) for p in known), Decimal(0)) if known else None,
            "difference": sum((p.difference or Decimal(0) for p in known), Decimal(0)) if known else None,
        }


def money_over_time(
    logged: Iterable[LoggedMoney], billed: Iterable[BilledMoney], period: Period, scope: ScopeFilter
) -> MoneyOverTime:
    """Per provider with usage or statement figures in the scope: expected and billed USD per day of `period`,
    and tokens per day over the categories its statement states."""
    days = list(period.days())
    expected: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    logged_tokens: dict[str, dict[date, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    unpriced: dict[str, int] = defaultdict(int)
    for row in logged:
        if not scope.keeps_logged(row):
            continue
        expected[row.provider][row.day] += row.expected if row.expected is not None else Decimal(0)
        if row.expected is None:
            unpriced[row.provider] += sum(row.tokens.values())
        for category, count in row.tokens.items():
            logged_tokens[row.provider][row.day][category] += count
    billed_usd: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    undated: dict[str, Decimal] = {}
    unattributed: dict[str, Decimal] = {}
    others: dict[str, dict[str, Decimal]] = defaultdict(dict)
    billed_tokens: dict[str, dict[date, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    stated: dict[str, set[str]] = defaultdict(set)
    seen: set[str] = set()
    for line in billed:
        attributed = scope.attributes_billed(line)
        if attributed is False:
            continue
        seen.add(line.provider)
        if line.amount is not None and attributed is None and line.currency == USD:
            unattributed[line.provider] = unattributed.get(line.provider, Decimal(0)) + line.amount
        if attributed is None:
            continue
        if line.amount is not None:
            if line.currency != USD:
                into = others[line.provider]
                into[line.currency] = into.get(line.currency, Decimal(0)) + line.amount
            elif line.undated:
                undated[line.provider] = undated.get(line.provider, Decimal(0)) + line.amount
            else:
                billed_usd[line.provider][line.day] += line.amount
        if line.quantity is not None and line.usage_type in TOKEN_USAGE_TYPES and not line.undated:
            stated[line.provider].add(line.usage_type)
            billed_tokens[line.provider][line.day][line.usage_type] += line.quantity
    shown = sorted(set(expected) | seen)
    return MoneyOverTime(
        providers=tuple(
            _provider(
                name,
                days,
                expected.get(name, {}),
                billed_usd.get(name) if name in billed_usd or name in undated else None,
                undated.get(name),
                unattributed.get(name),
                unpriced.get(name, 0),
                others.get(name, {}),
                tuple(category for category in TOKEN_CATEGORIES if category in stated.get(name, ())),
                logged_tokens.get(name, {}),
                billed_tokens.get(name, {}),
            )
            for name in shown
        ),
        filter=scope,
    )


def _provider(
    name: str,
    days: Sequence[date],
    expected: Mapping[date, Decimal],
    billed: Mapping[date, Decimal] | None,
    undated: Decimal | None,
    unattributed: Decimal | None,
    unpriced: int,
    other_currencies: Mapping[str, Decimal],
    categories: tuple[str, ...],
    logged_tokens: Mapping[date, Mapping[str, int]],
    billed_tokens: Mapping[date, Mapping[str, int]],
) -> ProviderMoney:
    unstated: dict[str, int] = defaultdict(int)
    for counts in logged_tokens.values():
        for category, count in counts.items():
            if category not in categories and count:
                unstated[category] += count
    return ProviderMoney(
        provider=name,
        days=tuple(
            MoneyDay(
                day=day,
                expected=expected.get(day, Decimal(0)),
                billed=None if billed is None else billed.get(day, Decimal(0)),
            )
            for day in days
        ),
        undated_billed=undated,
        unattributed_billed=unattributed,
        unpriced_tokens=unpriced,
        other_currencies=dict(other_currencies),
        token_categories=categories,
        token_days=tuple(
            TokenDay(
                day=day,
                logged=sum(logged_tokens.get(day, {}).get(category, 0) for category in categories),
                billed=sum(billed_tokens.get(day, {}).get(category, 0) for category in categories),
            )
            for day in days
        )
        if categories
        else (),
        unstated_tokens={category: unstated[category] for category in TOKEN_CATEGORIES if category in unstated},
    )


@dataclass(frozen=True, slots=True)
class Choices:
    """The values the page can be narrowed to, from the period's usage and statements."""

    providers: tuple[str, ...]
    accounts: tuple[str, ...]
    api_key_ids: tuple[str, ...]
    models: tuple[str, ...]
    apps: tuple[str, ...] = ()


def choices(logged: Sequence[LoggedMoney], billed: Sequence[BilledMoney]) -> Choices:
    def values(name: str) -> tuple[str, ...]:
        found = {getattr(row, name) for row in logged} | {getattr(row, name) for row in billed}
        return tuple(sorted(value for value in found if value))

    apps = tuple(sorted({row.app for row in logged if row.app}))
    return Choices(values("provider"), values("account"), values("api_key_id"), values("model"), apps)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
