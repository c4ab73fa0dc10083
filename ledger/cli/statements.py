"""`tokenledger import`: a source's billing statement, fetched from its API or read from files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column, Table

from importers.registry import IMPORTERS
from ledger.access import auth
from ledger.cli.command import console, errors, one_line_errors, print_table, session_scope
from ledger.cli.reconcile import print_unmatched, unmatched_in
from ledger.clock import SystemClock
from ledger.settings import get_settings

if TYPE_CHECKING:
    from ledger.statements.store import ImportSummary


_SOURCES = f"{', '.join(importer.source for importer in IMPORTERS[:-1])} or {IMPORTERS[-1].source}."


@one_line_errors
def import_statements(
    source: Annotated[str, typer.Argument(help=_SOURCES)],
    period: Annotated[str | None, typer.Option(help="Month to fetch or replace, e.g. 2026-10.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Saved API responses or exports.")] = None,
    mapping: Annotated[str | None, typer.Option(help="For csv: a shipped mapping name or a .toml file.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Import a provider's billing statement for a period, from its API or from files."""
    from rich.progress import Progress

    from ledger.periods import Period
    from ledger.statements.importing import importer_named, read_documents
    from ledger.statements.pull import pull_documents, pull_from_api

    settings = get_settings()
    importer = importer_named(source, mapping)
    now = SystemClock().now()
    with session_scope(settings) as session:
        owner = auth.tenant_for_cli(session, tenant)
        if file:
            documents = read_documents(file, importer.source)
            summary = pull_documents(
                session,
                tenant_id=owner.id,
                importer=importer,
                period=Period.month(period) if period else None,
                documents=documents,
                now=now,
            )
        else:
            if not period:
                raise typer.BadParameter("give --period to fetch, or --file to import files")
            with Progress(console=errors, transient=True) as progress:
                task = progress.add_task(f"fetching {source} {period}", total=None)
                summary = pull_from_api(
                    session,
                    tenant_id=owner.id,
                    importer=importer,
                    period=Period.month(period),
                    settings=settings,
                    now=now,
                    progress=lambda document, count: progress.update(
                        task, completed=count, description=document.name[:60]
                    ),
                )
        unmatched = unmatched_in(session, owner.id, summary.period)
    print_import_summary(summary)
    print_unmatched(unmatched)


def print_import_summary(summary: ImportSummary) -> None:
    console.print(
        f"{summary.source} {summary.period.label}: {summary.lines} lines from {summary.documents} documents"
        + (f" (replaced {summary.replaced} earlier lines)" if summary.replaced else ""),
        highlight=False,
    )
    table = Table(
        "provider", "model", "usage type", Column("quantity", justify="right"), Column("amount", justify="right")
    )
    for row in summary.rows:
        for usage_type in sorted(set(row.quantities) | set(row.amounts)):
            quantity, amount = row.quantities.get(usage_type), row.amounts.get(usage_type)
            table.add_row(
                row.provider,
                row.model,
                usage_type,
                "" if quantity is None else f"{quantity:,.0f}",
                "" if amount is None else f"{amount:,.4f}",
            )
    print_table(table)
    for label, count in sorted(summary.unrecognised.items()):
        console.print(f"[yellow]kept as 'other'[/yellow]: {label} ({count} lines)", highlight=False)
