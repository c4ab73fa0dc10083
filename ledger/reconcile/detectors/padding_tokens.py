"""Billed input exceeds logged input by a near-constant number of tokens per request."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.excess import fit_evidence
from ledger.reconcile.findings import cost_of, estimate, fmt_int, new_finding
from ledger.reconcile.model import Finding

KIND = "padding_tokens"
ORDER = 40
ON_THE_BILL = True


def detect(context: DetectionContext) -> list[Finding]:
    findings = []
    for scope, fit in context.input_excess.items():
        padding = fit.padding
        if not padding.fires:
            continue
        impact = cost_of(padding.tokens, fit.unit_price)
        per_request = estimate(padding.coefficient, 1)
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=impact or Decimal(0),
                rate=Decimal(padding.tokens) / fit.logged_tokens if fit.logged_tokens else None,
                evidence={
                    **fit_evidence(fit, context.settings),
                    "tokens_per_request": estimate(padding.coefficient, 2),
                    "excess_tokens": padding.tokens,
                    "impact_priced": impact is not None,
                },
                summary=(
                    f"billed {fmt_int(fit.billed_tokens)} input tokens, logged {fmt_int(fit.logged_tokens)}: "
                    f"{per_request} tokens per request over {fmt_int(fit.requests)} requests"
                ),
                settings=context.settings,
            )
        )
    return findings
