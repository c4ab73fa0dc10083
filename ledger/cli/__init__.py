"""The command line, `tokenledger`: each command group in a module of its own, assembled here. The command line
is a composition root: like `ledger.server`, it may import `reports` (for `report`); nothing else in ledger does.

Errors are one clear line and a non-zero exit, never a traceback (set TOKENLEDGER_DEBUG=1 to see one)."""

from __future__ import annotations

import typer

from ledger.cli.alerts import alerts_app
from ledger.cli.budgets import budgets_app
from ledger.cli.db import db_app
from ledger.cli.demo import demo
from ledger.cli.findings import findings_app
from ledger.cli.keys import keys_app
from ledger.cli.models import models_app
from ledger.cli.prices import prices_app
from ledger.cli.reconcile import reconcile
from ledger.cli.report import report
from ledger.cli.serve import serve
from ledger.cli.statements import import_statements
from ledger.cli.tenants import tenants_app

app = typer.Typer(
    help="TokenLedger: what your LLM applications used, against what the providers billed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# `--help` lists the commands, then the groups, each in the order registered here.
app.command()(reconcile)
app.command("import")(import_statements)
app.command()(demo)
app.command()(serve)
app.command()(report)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(prices_app, name="prices")
app.add_typer(models_app, name="models")
app.add_typer(findings_app, name="findings")
app.add_typer(alerts_app, name="alerts")
app.add_typer(budgets_app, name="budgets")

__all__ = ["app"]
