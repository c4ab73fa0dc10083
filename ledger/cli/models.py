"""`tokenledger models`: aliases that say which model a statement label names."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.access import auth
from ledger.cli.command import console, one_line_errors, session_scope
from ledger.settings import get_settings

models_app = typer.Typer(help="Model names: aliases for statement labels.", no_args_is_help=True)


@models_app.command("alias")
@one_line_errors
def models_alias(
    label: Annotated[str, typer.Argument(help="The model name as a statement gives it.")],
    model: Annotated[str, typer.Argument(help="The model it names (one with a known price).")],
    provider: Annotated[str | None, typer.Option(help="Only for this provider's statements.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Say which model a statement label names; the next reconciliation run compares it as that model."""
    from ledger.pricing.catalog import set_alias

    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        canonical = set_alias(session, owner.id, label=label, model=model, provider=provider)
    where = f" in {provider} statements" if provider else ""
    console.print(
        f"{label!r}{where} now names {canonical} for {owner.name}; run tokenledger reconcile to compare it",
        highlight=False,
    )
