"""`tokenledger budgets`: monthly budgets and the month's spend against them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ledger.access import auth
from ledger.cli.command import TenantName, console, one_line_errors, print_table, session_scope
from ledger.clock import SystemClock
from ledger.settings import get_settings

budgets_app = typer.Typer(
    help="Monthly budgets in USD for the tenant, a provider, an account or an app (alerts at 50/80/100%).",
    no_args_is_help=True,
)
BudgetProvider = Annotated[
    str | None, typer.Option(help="A provider's budget (none of --provider, --account, --app: the tenant's).")
]
BudgetAccount = Annotated[str | None, typer.Option(help="An account's budget (a project or workspace id).")]
BudgetApp = Annotated[str | None, typer.Option(help="An app's budget (the `app` label of its events).")]


def budget_scope(provider: str | None, account: str | None, app: str | None) -> tuple[str, str | None]:
    given = [(scope, value) for scope, value in (("provider", provider), ("account", account), ("app", app)) if value]
    if len(given) > 1:
        raise typer.BadParameter("give one of --provider, --account and --app, not several")
    return given[0] if given else ("tenant", None)


@budgets_app.command("set")
@one_line_errors
def budgets_set(
    usd: Annotated[str, typer.Option(help="The monthly budget in USD, e.g. 500.")],
    provider: BudgetProvider = None,
    account: BudgetAccount = None,
    app: BudgetApp = None,
    tenant: TenantName = None,
) -> None:
    """Set (or change) a monthly budget."""
    from ledger.alerts.budgets import BudgetError, set_budget

    scope, value = budget_scope(provider, account, app)
    try:
        with session_scope(get_settings()) as session:
            owner = auth.tenant_for_cli(session, tenant)
            budget = set_budget(session, owner.id, scope=scope, value=value, amount=usd, now=SystemClock().now())
            label = "tenant" if budget.scope == "tenant" else f"{budget.scope} {budget.value}"
            amount = budget.amount_usd
    except BudgetError as error:
        raise typer.BadParameter(str(error)) from None
    from ledger.display import money

    console.print(f"monthly budget of {label} ({owner.name}): {money(amount)}", highlight=False)


@budgets_app.command("list")
@one_line_errors
def budgets_list(tenant: TenantName = None) -> None:
    """Each budget with the month's spend so far and its month-end forecast."""
    from ledger.alerts.budgets import budget_statuses
    from ledger.display import money

    now = SystemClock().now()
    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        statuses = budget_statuses(session, owner.id, now)
    if not statuses:
        console.print(f"no budgets for {owner.name}: set one with tokenledger budgets set --usd 500", highlight=False)
        return
    table = Table("budget", "monthly", "spent", "%", "forecast", "%", "forecast from", title=now.strftime("%Y-%m"))
    for status in statuses:
        table.add_row(
            status.label,
            money(status.amount),
            money(status.spent),
            f"{status.spent_percent}%",
            money(status.forecast),
            f"{status.forecast_percent}%",
            status.forecast_method,
        )
    print_table(table)


@budgets_app.command("remove")
@one_line_errors
def budgets_remove(
    provider: BudgetProvider = None, account: BudgetAccount = None, app: BudgetApp = None, tenant: TenantName = None
) -> None:
    """Remove a monthly budget."""
    from ledger.alerts.budgets import BudgetError, remove_budget

    scope, value = budget_scope(provider, account, app)
    label = "tenant" if scope == "tenant" else f"{scope} {value}"
    try:
        with session_scope(get_settings()) as session:
            owner = auth.tenant_for_cli(session, tenant)
            removed = remove_budget(session, owner.id, scope=scope, value=value)
    except BudgetError as error:
        raise typer.BadParameter(str(error)) from None
    if not removed:
        raise typer.BadParameter(f"{owner.name} has no budget of {label}")
    console.print(f"budget of {label} removed", highlight=False)
