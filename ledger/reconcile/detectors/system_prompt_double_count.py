"""Billed input excess tracks the logged system-prompt tokens with a ratio near 1: the system prompt is
counted twice."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.excess import fit_evidence
from ledger.reconcile.findings import cost_of, estimate, fmt_int, new_finding
from ledger.reconcile.model import Finding

KIND = "system_prompt_double_count"
ORDER = 50
ON_THE_BILL = True


def detect(context: DetectionContext) -> list[Finding]:
    findings = []
    for scope, fit in context.input_excess.items():
        double = fit.system_prompt
        if not double.fires:
            continue
        impact = cost_of(double.tokens, fit.unit_price)
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=impact or Decimal(0),
                rate=Decimal(double.tokens) / fit.logged_tokens if fit.logged_tokens else None,
                evidence={
                    **fit_evidence(fit, context.settings),
                    "ratio": estimate(double.coefficient, 3),
                    "system_prompt_tokens_logged": fit.system_prompt_tokens,
                    "excess_tokens": double.tokens,
                    "impact_priced": impact is not None,
                },
                summary=(
                    f"billed input exceeds logged by {fmt_int(double.tokens)} tokens attributed to system prompts, "
                    f"{estimate(double.coefficient, 2)}× the {fmt_int(fit.system_prompt_tokens)} logged "
                    f"system-prompt tokens: the system prompt appears to be counted twice"
                ),
                settings=context.settings,
            )
        )
    return findings
