"""Failed requests (429 / 5xx) billed, which should not be charged: billed requests exceed the logged
successful ones by about the number of logged failures, or, where the statement states no request counts, the
billed input exceeds the logged input by the logged prompt tokens of the failed requests (the input-excess
fit's third regressor, `ledger.reconcile.excess`). Failures should not be charged (Microsoft's answer for
Azure OpenAI: 429 errors "do not incur any charges", https://learn.microsoft.com/en-us/answers/questions/1632971)."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.excess import InputExcessFit, fit_evidence
from ledger.reconcile.findings import cost_of, estimate, fmt_int, new_finding, series_entry
from ledger.reconcile.model import Comparison, Finding, Scope
from ledger.vocabulary import PROMPT_CATEGORIES

KIND = "charged_errors"
ORDER = 80
ON_THE_BILL = True


def detect(context: DetectionContext) -> list[Finding]:
    findings = _billed_requests(context)
    by_requests = {finding.scope for finding in findings}
    findings += [
        _billed_prompts(context, scope, fit)
        for scope, fit in context.input_excess.items()
        if fit.failed_prompt.fires and scope not in by_requests
    ]
    return findings


def _billed_prompts(context: DetectionContext, scope: Scope, fit: InputExcessFit) -> Finding:
    settings = context.settings
    billed = fit.failed_prompt
    impact = cost_of(billed.tokens, fit.unit_price)
    return new_finding(
        kind=KIND,
        scope=scope,
        period=context.window,
        impact_usd=impact if impact is not None else Decimal(0),
        rate=Decimal(billed.tokens) / fit.logged_tokens if fit.logged_tokens else None,
        evidence={
            **fit_evidence(fit, settings),
            "error_requests": fit.failed_requests,
            "error_prompt_tokens": fit.failed_prompt_tokens,
            "billed_extra_tokens": billed.tokens,
            "ratio": estimate(billed.coefficient, 3),
            "impact_basis": "billed input of the failed requests at the expected input price"
            if impact is not None
            else "unpriced",
        },
        summary=(
            f"billed input exceeds logged by {fmt_int(billed.tokens)} tokens, "
            f"{estimate(billed.coefficient, 2)}× the {fmt_int(fit.failed_prompt_tokens)} prompt tokens of "
            f"{fmt_int(fit.failed_requests)} logged 429/5xx failures: failed requests were billed"
        ),
        settings=settings,
    )


def _billed_requests(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, excess in context.request_excess.items():
        if not excess.charged_errors:
            continue
        per_request = (
            excess.expected_cost / excess.successful if excess.expected_cost is not None and excess.successful else None
        )
        impact = _billed_token_excess(context, excess.buckets)
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=impact if impact is not None else Decimal(0),
                rate=Decimal(excess.extra) / excess.successful if excess.successful else None,
                evidence={
                    "error_requests": excess.failed,
                    "billed_extra": excess.extra,
                    "billed_requests": excess.billed,
                    "successful_requests": excess.successful,
                    "expected": excess.successful,
                    "billed": excess.billed,
                    "difference": excess.extra,
                    "impact_basis": "billed − logged tokens of the scope at the expected prices"
                    if impact is not None
                    else "unpriced",
                    "impact_if_billed_per_request": None if per_request is None else excess.extra * per_request,
                    "tolerance": {
                        "requests": excess.tolerance,
                        "match": excess.match_tolerance,
                        **settings.as_evidence(
                            "request_rel_tolerance", "request_abs_tolerance", "charged_errors_rel_tolerance"
                        ),
                    },
                    "series": [
                        {
                            **series_entry(b, b.logged.successful_requests, b.billed_requests),
                            "error_requests": b.logged.errors_429 + b.logged.errors_5xx,
                        }
                        for b in excess.buckets
                    ],
                },
                summary=(
                    f"billed {fmt_int(excess.billed)} requests, {fmt_int(excess.successful)} succeeded: the "
                    f"{fmt_int(excess.extra)} extra match the {fmt_int(excess.failed)} logged 429/5xx failures"
                ),
                settings=settings,
            )
        )
    return findings


def _billed_token_excess(context: DetectionContext, buckets: tuple[Comparison, ...]) -> Decimal | None:
    """The money the failures added to the bill: billed − logged input tokens, at most the failed requests' logged
    prompt tokens where they were logged (a request billed but never logged is not a failure's), at the expected
    unit price; failures add no output. 0 where the statement bills them as requests and no token moved; None
    when unpriced."""
    totals = context.logged_totals(buckets)
    billed = context.billed_quantities(buckets)
    budget = totals.failed_prompt_tokens or None
    money = Decimal(0)
    for category in PROMPT_CATEGORIES:
        if category not in billed:
            continue
        difference = billed[category] - totals.tokens.get(category)
        if difference <= 0:
            continue
        if budget is not None:
            difference = min(difference, budget)
            budget -= difference
        price = totals.unit_price(category)
        if price is None:
            return None
        money += difference * price
    return money
