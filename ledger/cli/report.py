"""`tokenledger report`: a month's reconciliation report written to a file (the `reports` package's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.access import auth
from ledger.cli.command import console, one_line_errors, session_scope
from ledger.clock import SystemClock
from ledger.settings import get_settings


@one_line_errors
def report(
    period: Annotated[str, typer.Option(help="Month, e.g. 2026-10.")],
    output: Annotated[Path, typer.Option(help="File to write the report to.")],
    output_format: Annotated[str, typer.Option("--format", help="html, csv or json.")] = "html",
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Write a month's reconciliation report (per provider × account × model, with totals)."""
    from ledger.periods import Period
    from reports import monthly

    if output_format not in monthly.FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(monthly.FORMATS)}, got {output_format!r}")
    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        result = monthly.load_monthly_report(session, owner.id, Period.month(period), SystemClock().now())
    output.write_text(monthly.render(result, output_format), encoding="utf-8")
    console.print(
        f"{output_format} report of {owner.name} for {period} ({len(result.rows)} rows) written to {output}",
        highlight=False,
    )
