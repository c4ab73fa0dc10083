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

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from ledger.reconcile.model import Finding, Scope

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
    finer = _scopes_with_a_finer_one(findings)
    quantity_models = _quantity_models(findings)
    kept = [
        finding
        for finding in findings
        if (finding.kind, finding.subject, finding.period_start, finding.scope) not in finer
        and not _implied_rate_explained(finding, quantity_models)
    ]
    return sorted(kept, key=_order)


def _scopes_with_a_finer_one(findings: Sequence[Finding]) -> set[tuple[str, str, datetime, Scope]]:
    """(kind, subject, period start, scope) of the findings for which another finding of that kind, subject
    and period start has a different scope that theirs contains (`Scope.contains`).

    A scope contains another exactly when it equals the other's projection onto its own grain (the
    dimensions it fixes), so per group the projections of every scope onto every grain present are
    counted once per scope: a scope with a finer one is the projection of at least two distinct scopes
    (itself and the finer one)."""
    groups: dict[tuple[str, str, datetime], set[Scope]] = defaultdict(set)
    for finding in findings:
        groups[(finding.kind, finding.subject, finding.period_start)].add(finding.scope)
    found: set[tuple[str, str, datetime, Scope]] = set()
    for (kind, subject, start), scopes in groups.items():
        grains = {scope.grain for scope in scopes}
        projected: Counter[Scope] = Counter(
            projection for scope in scopes for projection in {_project(scope, grain) for grain in grains}
        )
        found.update((kind, subject, start, scope) for scope in scopes if projected[scope] > 1)
    return found


def _project(scope: Scope, grain: tuple[str, ...]) -> Scope:
    """The scope with the dimensions outside `grain` left None."""
    return Scope(provider=scope.provider, **{name: getattr(scope, name) for name in grain})


def _quantity_models(findings: Sequence[Finding]) -> dict[str, set[str | None]]:
    """Provider → the models (None: all) of its quantity findings."""
    models: dict[str, set[str | None]] = defaultdict(set)
    for finding in findings:
        if finding.kind in QUANTITY_KINDS:
            models[finding.provider].add(finding.model)
    return models


def _implied_rate_explained(finding: Finding, quantity_models: Mapping[str, set[str | None]]) -> bool:
    """A `price_drift` on a logged quantity is explained by a quantity finding on its provider and model."""
    if finding.kind != "price_drift" or finding.evidence.get("quantity_source") == "billed":
        return False
    models = quantity_models.get(finding.provider, set())
    if finding.model is None:
        return bool(models)
    return None in models or finding.model in models


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
