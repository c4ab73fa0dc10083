"""Resolving overlaps between findings that describe the same money twice.

Most overlaps are prevented where the analyses are shared (see `DetectionContext`): quantity mismatches
subtract the input excess explained by padding / system-prompt findings and leave cache-write excess to
`cache_mischarge` and extra usage on a charged-errors scope to `charged_errors`; unlogged + unbilled
buckets with equal tokens become `model_substitution`. What is left here:

1. Grain: when a finding of one kind and subject has a scope containing another's of the same kind and
   subject (a coarser statement saw the same thing), only the finer one is kept.
2. Implied rates: a `price_drift` whose quantity came from the log (no billed quantity) is dropped when a
   quantity finding covers the same provider and model, since the amount moved with the quantity.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.reconcile.model import Finding

QUANTITY_KINDS = frozenset(
    {
        "padding_tokens",
        "system_prompt_double_count",
        "cache_mischarge",
        "quantity_mismatch",
        "unlogged_usage",
        "unbilled_usage",
        "charged_errors",
        "model_substitution",
    }
)
KIND_ORDER = (
    "unlogged_usage",
    "unbilled_usage",
    "model_substitution",
    "padding_tokens",
    "system_prompt_double_count",
    "cache_mischarge",
    "price_drift",
    "charged_errors",
    "quantity_mismatch",
    "silent_truncation",
    "missing_finish_reason",
    "spend_spike",
)


def resolve_overlaps(findings: Sequence[Finding]) -> list[Finding]:
    """The findings without duplicates, in a stable order (kind, scope, subject, period)."""
    kept = [f for f in findings if not _has_finer(f, findings) and not _implied_rate_explained(f, findings)]
    return sorted(kept, key=_order)


def _has_finer(finding: Finding, findings: Sequence[Finding]) -> bool:
    scope = finding.scope
    return any(
        other.kind == finding.kind
        and other.subject == finding.subject
        and other.period_start == finding.period_start
        and other.scope != scope
        and scope.contains(other.scope)
        for other in findings
    )


def _implied_rate_explained(finding: Finding, findings: Sequence[Finding]) -> bool:
    if finding.kind != "price_drift" or finding.evidence.get("quantity_source") == "billed":
        return False
    return any(
        other.kind in QUANTITY_KINDS
        and other.provider == finding.provider
        and (finding.model is None or other.model in (None, finding.model))
        for other in findings
    )


def _order(finding: Finding) -> tuple[object, ...]:
    rank = KIND_ORDER.index(finding.kind) if finding.kind in KIND_ORDER else len(KIND_ORDER)
    scope = (
        finding.provider,
        finding.account or "",
        finding.api_key_id or "",
        finding.model or "",
        finding.service_tier or "",
    )
    return rank, finding.kind, scope, finding.subject, finding.period_start
