"""Monthly budgets: a tenant's spend limit in USD for itself, one provider, one account or one app, measured
against the month's actual spend (logged usage at catalog prices, as the reconciler prices it:
`sources.logged_money`) and its month-end forecast. An app's spend is the one the Spend page shows: its share,
by tokens, of each token category's cost of its scope and day (the daily rollup the reconciler prices keeps no
app; the hourly one does).

The forecast is the month so far plus what the same scope spent on the remaining days of the previous month
(the days after today's day of the month); with no priced spend in the previous month, a linear run-rate (the
month so far scaled from the time elapsed to the whole month).

Pure functions compute; `budget_statuses` reads; nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ledger.periods import Period
from ledger.queries import sources
from ledger.queries.money_over_time import LoggedMoney
from ledger.storage.tables import Budget

SCOPES = ("tenant", "provider", "account", "app")
THRESHOLDS = (50, 80, 100)
"""Percentages of a budget that alert, once each per month and budget, for actual spend and for the forecast."""
HUNDRED = Decimal(100)
SAME_DAYS_LAST_MONTH = "same days last month"
RUN_RATE = "run-rate"


class BudgetError(ValueError):
    """A budget that cannot be set: the message names the field."""


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget_id: int
    scope: str
    value: str
    amount: Decimal
    spent: Decimal
    forecast: Decimal
    forecast_method: str

    @property
    def label(self) -> str:
        return "tenant" if self.scope == "tenant" else f"{self.scope} {self.value}"

    @property
    def spent_percent(self) -> Decimal:
        return (self.spent / self.amount * HUNDRED).quantize(Decimal("0.1"))

    @property
    def forecast_percent(self) -> Decimal:
        return (self.forecast / self.amount * HUNDRED).quantize(Decimal("0.1"))

    @property
    def spent_threshold(self) -> int | None:
        """The highest alerting threshold that actual spend has reached."""
        return threshold_reached(self.spent, self.amount)

    @property
    def forecast_threshold(self) -> int | None:
        return threshold_reached(self.forecast, self.amount)


def threshold_reached(figure: Decimal, amount: Decimal) -> int | None:
    reached = [threshold for threshold in THRESHOLDS if figure * HUNDRED >= amount * threshold]
    return reached[-1] if reached else None


def check_scope(scope: str, value: str | None) -> str:
    """The budget's value as stored: "" for the tenant, the provider's or account's name otherwise."""
    if scope not in SCOPES:
        raise BudgetError(f"scope: {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "tenant":
        if value:
            raise BudgetError("value: a tenant budget names no provider, account or app")
        return ""
    if not value or not value.strip():
        raise BudgetError(f"value: a {scope} budget names its {scope}")
    return value.strip()


def check_amount(amount: str) -> Decimal:
    try:
        parsed = Decimal(amount)
    except ArithmeticError:
        raise BudgetError(f"amount: {amount!r} is not a number of USD") from None
    if not parsed.is_finite() or parsed <= 0:
        raise BudgetError(f"amount: {amount!r} must be more than 0 USD")
    return parsed


def in_scope(row: LoggedMoney, scope: str, value: str) -> bool:
    return scope == "tenant" or {"provider": row.provider, "account": row.account, "app": row.app}[scope] == value


def priced(rows: Iterable[LoggedMoney]) -> Decimal:
    return sum((row.expected for row in rows if row.expected is not None), Decimal(0))


def month_forecast(
    this_month: Sequence[LoggedMoney], last_month: Sequence[LoggedMoney], *, now: datetime
) -> tuple[Decimal, str]:
    """The month-end forecast of one scope's spend, and the method used (see the module's description)."""
    period = Period.containing(now)
    so_far = priced(this_month)
    if priced(last_month):
        last_day_of_month = (period.end - period.start).days
        remaining = [row for row in last_month if now.day < row.day.day <= last_day_of_month]
        return so_far + priced(remaining), SAME_DAYS_LAST_MONTH
    elapsed = int((now - period.start).total_seconds())
    if elapsed <= 0:
        return so_far, RUN_RATE
    whole = int((period.end - period.start).total_seconds())
    return so_far * Decimal(whole) / Decimal(elapsed), RUN_RATE


def statuses(
    budgets: Iterable[Budget], this_month: Sequence[LoggedMoney], last_month: Sequence[LoggedMoney], now: datetime
) -> list[BudgetStatus]:
    result = []
    for budget in budgets:
        current = [row for row in this_month if in_scope(row, budget.scope, budget.value)]
        previous = [row for row in last_month if in_scope(row, budget.scope, budget.value)]
        forecast, method = month_forecast(current, previous, now=now)
        result.append(
            BudgetStatus(
                budget_id=budget.id,
                scope=budget.scope,
                value=budget.value,
                amount=budget.amount_usd,
                spent=priced(current),
                forecast=forecast,
                forecast_method=method,
            )
        )
    return result


# Reading and writing


def tenant_budgets(session: Session, tenant_id: int) -> list[Budget]:
    return list(
        session.scalars(select(Budget).where(Budget.tenant_id == tenant_id).order_by(Budget.scope, Budget.value))
    )


def budget_statuses(session: Session, tenant_id: int, now: datetime) -> list[BudgetStatus]:
    """Each budget of the tenant against the spend of the month containing `now`."""
    budgets = tenant_budgets(session, tenant_id)
    if not budgets:
        return []
    period = Period.containing(now)
    return statuses(
        budgets,
        sources.logged_money(session, tenant_id, period),
        sources.logged_money(session, tenant_id, period.previous()),
        now,
    )


def set_budget(
    session: Session, tenant_id: int, *, scope: str, value: str | None, amount: str, now: datetime
) -> Budget:
    """Set (or change) the monthly budget of a scope."""
    stored_value = check_scope(scope, value)
    parsed = check_amount(amount)
    session.execute(
        insert(Budget)
        .values(tenant_id=tenant_id, scope=scope, value=stored_value, amount_usd=parsed, created_at=now)
        .on_conflict_do_update(index_elements=["tenant_id", "scope", "value"], set_={"amount_usd": parsed})
    )
    budget = session.scalars(
        select(Budget).where(Budget.tenant_id == tenant_id, Budget.scope == scope, Budget.value == stored_value)
    ).one()
    session.refresh(budget)
    return budget


def remove_budget(session: Session, tenant_id: int, *, scope: str, value: str | None) -> bool:
    stored_value = check_scope(scope, value)
    removed = session.execute(
        delete(Budget)
        .where(Budget.tenant_id == tenant_id, Budget.scope == scope, Budget.value == stored_value)
        .returning(Budget.id)
    ).all()
    return bool(removed)
