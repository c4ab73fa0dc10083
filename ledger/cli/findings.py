"""`tokenledger findings`: a finding's dispute pack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.access import auth
from ledger.cli.command import console, one_line_errors, session_scope
from ledger.clock import SystemClock
from ledger.settings import get_settings

findings_app = typer.Typer(help="Findings of the reconciler.", no_args_is_help=True)


@findings_app.command("export")
@one_line_errors
def findings_export(
    finding_id: Annotated[int, typer.Argument(help="The finding's id (as in GET /v1/findings).")],
    output: Annotated[
        Path | None, typer.Option(help="ZIP file to write (default: its name in this directory).")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Write a finding's dispute pack: a ZIP with a one-page summary, the statement lines with their provenance and
    the affected events as CSV (what GET /v1/findings/{id}/dispute-pack returns)."""
    from ledger.queries.dispute_pack import load_dispute_pack

    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        name, body = load_dispute_pack(session, owner.id, finding_id, now=SystemClock().now())
    target = output or Path(name)
    target.write_bytes(body)
    console.print(f"dispute pack of finding {finding_id} ({owner.name}) written to {target}", highlight=False)
