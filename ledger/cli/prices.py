"""`tokenledger prices`: the bundled price catalog and a tenant's own prices."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ledger.access import auth
from ledger.cli.command import console, errors, one_line_errors, print_table, prose, session_scope
from ledger.clock import SystemClock
from ledger.errors import InvalidRequest
from ledger.settings import get_settings

prices_app = typer.Typer(help="Prices: the bundled catalog and your own.", no_args_is_help=True)


@prices_app.command("set")
@one_line_errors
def prices_set(
    provider: Annotated[str, typer.Option(help="Provider, e.g. openai or vllm.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    token_type: Annotated[
        str,
        typer.Option(
            help="input, cached_input, cache_write_5m, cache_write_1h, output, request, web_search or gpu_hour."
        ),
    ],
    price: Annotated[str, typer.Option(help="Price per unit, a decimal number.")],
    unit: Annotated[str, typer.Option(help="1M tokens, 1K tokens, token, request, 1K requests or hour.")] = "1M tokens",
    tier: Annotated[str, typer.Option(help="standard, batch, flex or priority.")] = "standard",
    valid_from: Annotated[str, typer.Option("--from", help="First day (UTC) the price applies.")] = "2020-01-01",
    valid_to: Annotated[
        str | None, typer.Option("--until", "--to", help="Day (UTC) the price stops applying (exclusive).")
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="Only for usage billed to this account (project, workspace) of the provider.")
    ] = None,
    currency: Annotated[str, typer.Option()] = "USD",
    context_threshold: Annotated[int, typer.Option(help="0, or the input size above which it applies.")] = 0,
    window: Annotated[str | None, typer.Option(help="UTC hours it applies, e.g. mon-fri@01-04.")] = None,
    source: Annotated[str, typer.Option(help="Where the price comes from (contract, invoice…).")] = "tenant price",
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Set a tenant's own price (a negotiated discount, a self-hosted rate) for usage billed by --provider
    (and --account); it wins over the bundled ones and never applies to the model billed by another provider."""
    from ledger.pricing.catalog import add_overrides
    from ledger.pricing.prices import PRICE_FILE_COLUMNS, parse_price_csv

    now = SystemClock().now()
    values = {
        "provider": provider,
        "model": model,
        "token_type": token_type,
        "service_tier": tier,
        "context_threshold": str(context_threshold),
        "unit_price": price,
        "unit": unit,
        "currency": currency,
        "valid_from": valid_from,
        "valid_to": valid_to or "",
        "window": window or "",
        "source": source,
        "source_date": now.date().isoformat(),
        "note": "set with tokenledger prices set",
    }
    header = ",".join(PRICE_FILE_COLUMNS)
    line = ",".join('"' + values[column].replace('"', '""') + '"' for column in PRICE_FILE_COLUMNS)
    rows = [replace(row, account=account) for row in parse_price_csv(f"{header}\n{line}\n", origin="command line")]
    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        add_overrides(session, owner.id, rows, now=now)
    scope = f"{provider}/{model}" + (f" (account {account})" if account else "")
    console.print(
        f"price set for {owner.name}: {scope} {token_type} {tier} = {price} {currency} per {unit}",
        highlight=False,
    )


@prices_app.command("import")
@one_line_errors
def prices_import(
    path: Annotated[Path, typer.Argument(help="A CSV file in the format of ledger/pricing/prices.csv.")],
    provider: Annotated[str, typer.Option(help="The provider that bills the usage these prices are for.")],
    account: Annotated[str | None, typer.Option(help="Only for usage billed to this account.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Import a tenant's prices from a CSV file (all rows or none); every row's provider must be --provider."""
    from ledger.pricing.catalog import add_overrides
    from ledger.pricing.prices import parse_price_csv

    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(f"{path.name}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    rows = parse_price_csv(text, origin=path.name)
    wanted = provider.strip().lower()
    for row in rows:
        if row.provider != wanted:
            raise InvalidRequest(
                f"{row.origin}: column 'provider' is {row.provider!r}, but these prices are imported for "
                f"--provider {wanted}: a price holds for the provider that bills the usage only"
            )
    rows = [replace(row, account=account) for row in rows]
    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        count = add_overrides(session, owner.id, rows, now=SystemClock().now())
    console.print(f"{count} prices imported for {owner.name} from {path.name}", highlight=False)


@prices_app.command("list")
@one_line_errors
def prices_list(
    provider: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    at: Annotated[str | None, typer.Option(help="Show prices in effect on this day (default: now).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name, to include its own prices.")] = None,
) -> None:
    """List the prices in effect, each with the layer it comes from (tenant, overlay, genai-prices) and its
    source; the first line says which genai-prices data is in use."""
    from ledger.pricing.catalog import base_layer, bundled_prices, shared_catalog, tenant_overrides

    try:
        moment = datetime.fromisoformat(at).replace(tzinfo=UTC) if at else SystemClock().now()
    except ValueError:
        raise InvalidRequest(f"--at: expected a day such as 2026-10-15, got {at!r}") from None
    overrides = []
    if tenant:
        with session_scope(get_settings()) as session:
            overrides = tenant_overrides(session, auth.tenant_for_cli(session, tenant).id)
    base, _ = base_layer()
    wanted_provider = provider.strip().lower() if provider else None
    wanted_model = shared_catalog().resolve(wanted_provider, model) if model and wanted_provider else None
    if model and wanted_model is None:
        from ledger.pricing.model_names import normalize_model_name

        wanted_model = normalize_model_name(wanted_provider or "", model)
    table = Table(
        "provider", "model", "type", "tier", "above", "price", "unit", "window", "since", "layer", prose("source", 50)
    )
    for row in [*overrides, *bundled_prices(), *base.rows]:
        if (
            not row.in_effect(moment)
            or (wanted_provider and row.provider != wanted_provider)
            or (wanted_model and row.model != wanted_model)
        ):
            continue
        layer = "tenant" if row.override else row.layer or "overlay"
        table.add_row(
            row.provider + (f" ({row.account})" if row.account else ""),
            row.model,
            row.token_type,
            row.service_tier,
            f"{row.context_threshold:,}" if row.context_threshold else "",
            f"{row.unit_price.normalize():f} {row.currency}",
            row.unit,
            row.window.spec if row.window else "",
            row.valid_from.date().isoformat(),
            layer,
            row.source,
        )
    if not table.row_count:
        known = sorted({row.provider for row in [*overrides, *bundled_prices()] if row.in_effect(moment)})
        asked = " ".join(
            part for part in (f"--provider {provider}" if provider else "", f"--model {model}" if model else "") if part
        )
        raise InvalidRequest(
            f"no price in effect on {moment.date().isoformat()} matches {asked or 'the filters'}; "
            f"providers with prices: {', '.join(known)}"
        )
    console.print(
        f"price data: overlay ledger/pricing/prices.csv ({len(bundled_prices())} rows) over {base.describe()} "
        f"({base.model_count:,} models); `tokenledger prices update` fetches newer genai-prices data",
        highlight=False,
    )
    print_table(table)


@prices_app.command("update")
@one_line_errors
def prices_update(
    url: Annotated[str | None, typer.Option(help="Where to fetch from (default: genai-prices' own URL).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 10.0,
) -> None:
    """Fetch the latest genai-prices data (genai-prices' own update mechanism) and use it from now on; without
    network, say so and keep the data in use."""
    import json

    from genai_prices import types as genai

    from ledger.pricing.base_prices import base_prices_from, fetch_latest, stored_snapshot_path
    from ledger.pricing.catalog import base_layer, forget_loaded_prices

    settings = get_settings()
    current, _ = base_layer()
    try:
        document = fetch_latest(url, timeout)
        fetched = base_prices_from(
            genai._providers_from_raw(json.loads(document)), data_date=SystemClock().now().date(), updated=True
        )
    except Exception as error:  # no network, an HTTP error, a document genai-prices cannot read
        errors.print(
            f"could not update the price data: {type(error).__name__}: {error}. Still using {current.describe()}.",
            highlight=False,
        )
        raise typer.Exit(1) from None
    target = stored_snapshot_path(settings.data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(document)
    partial.replace(target)  # whole or not at all
    forget_loaded_prices()
    console.print(
        f"price data updated: genai-prices data of {fetched.data_date.isoformat()} ({fetched.model_count:,} models) "
        f"stored in {target}; it replaces {current.describe()} from the next reconciliation run",
        highlight=False,
    )
