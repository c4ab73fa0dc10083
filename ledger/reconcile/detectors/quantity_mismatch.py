"""A token category (input, cache writes, output) or the request count differs beyond tolerance and no
more specific kind explains it: the input excess explained by padding / system-prompt double counting is
subtracted, a cache-write excess is a `cache_mischarge`, and extra billed usage on a scope with charged
errors is left to `charged_errors`."""

from __future__ import annotations

from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import cost_of, fmt_int, new_finding, series_entry
from ledger.reconcile.model import Finding
from ledger.vocabulary import CACHE_WRITE_CATEGORIES, PROMPT_CATEGORIES

KIND = "quantity_mismatch"
ORDER = 90
ON_THE_BILL = True
GROUPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("input", PROMPT_CATEGORIES, "uncached_input"),
    ("cache_write", CACHE_WRITE_CATEGORIES, "cache_write_5m"),
    ("output", ("output",), "output"),
)
"""Compared groups: name, categories, the category whose price values a difference."""


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, buckets in context.regular.items():
        if not buckets:
            continue
        fit = context.input_excess.get(scope)
        requests = context.request_excess.get(scope)
        charged_errors = requests is not None and requests.charged_errors
        totals = context.logged_totals(buckets)
        billed_quantities = context.billed_quantities(buckets)
        for name, categories, priced_as in GROUPS:
            stated = buckets[0].stated(categories)
            if not stated:
                continue
            logged = totals.tokens.total(stated)
            billed = sum(billed_quantities.get(category, 0) for category in stated)
            explained = fit.explained if fit is not None and name == "input" else 0
            difference = billed - logged - explained
            tolerance = settings.token_tolerance(logged)
            if abs(difference) <= tolerance:
                continue
            if difference > 0 and (name == "cache_write" or charged_errors):
                continue
            impact = cost_of(difference, totals.unit_price(priced_as))
            findings.append(
                new_finding(
                    kind=KIND,
                    scope=scope,
                    subject=name,
                    period=context.window,
                    impact_usd=impact or Decimal(0),
                    rate=Decimal(difference) / logged if logged else None,
                    evidence={
                        "category": name,
                        "categories": list(stated),
                        "logged": logged,
                        "billed": billed,
                        "expected": logged,
                        "explained_elsewhere": explained,
                        "difference": difference,
                        "impact_priced": impact is not None,
                        "tolerance": {
                            "tokens": tolerance,
                            **settings.as_evidence("token_rel_tolerance", "token_abs_tolerance"),
                        },
                        "series": [
                            series_entry(b, b.logged_quantity(stated), b.billed_quantity(stated)) for b in buckets
                        ],
                    },
                    summary=(
                        f"billed {fmt_int(billed)} {name} tokens, logged {fmt_int(logged)}"
                        + (f" ({fmt_int(explained)} explained by other findings)" if explained else "")
                        + f": {'+' if difference > 0 else ''}{fmt_int(difference)} beyond a tolerance of "
                        f"{fmt_int(tolerance)}"
                    ),
                    settings=settings,
                )
            )
        if requests is not None and not charged_errors and abs(requests.extra) > requests.tolerance:
            findings.append(
                new_finding(
                    kind=KIND,
                    scope=scope,
                    subject="requests",
                    period=context.window,
                    impact_usd=Decimal(0),
                    rate=Decimal(requests.extra) / requests.successful if requests.successful else None,
                    evidence={
                        "category": "requests",
                        "logged": requests.successful,
                        "billed": requests.billed,
                        "expected": requests.successful,
                        "difference": requests.extra,
                        "error_requests": requests.failed,
                        "tolerance": {
                            "requests": requests.tolerance,
                            **settings.as_evidence("request_rel_tolerance", "request_abs_tolerance"),
                        },
                        "series": [
                            series_entry(b, b.logged.successful_requests, b.billed_requests) for b in requests.buckets
                        ],
                    },
                    summary=(
                        f"billed {fmt_int(requests.billed)} requests, logged {fmt_int(requests.successful)} "
                        f"successful ones ({fmt_int(requests.failed)} failures do not account for the difference)"
                    ),
                    settings=settings,
                )
            )
    return findings
