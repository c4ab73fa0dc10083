"""`tokenledger reconcile`: a month's drift and findings, printed (the demo prints them the same way)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column, Table
from sqlalchemy.orm import Session

from ledger.access import auth
from ledger.cli.command import configure_logging, console, one_line_errors, print_table, prose, session_scope
from ledger.clock import SystemClock
from ledger.settings import get_settings
from ledger.storage.database import create_db_engine, database_url, session_factory

if TYPE_CHECKING:
    from ledger.periods import Period
    from ledger.pricing.model_aliases import UnmatchedLabel
    from ledger.reconcile.model import ReconcileResult


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
        print_unmatched(unmatched_in(session, owner.id, window))


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


def unmatched_in(session: Session, tenant_id: int, period: Period) -> list[UnmatchedLabel]:
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


def _dimension(value: str | None) -> str:
    """A drift row's account or model: "(all)" where the statement does not break down by it, "(none)" for
    usage without one (Anthropic's default workspace, events logged without an account)."""
    return "(all)" if value is None else value or "(none)"
