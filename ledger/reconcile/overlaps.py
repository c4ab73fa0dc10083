"""Resolving overlaps between findings that describe the same money twice.

Most overlaps are prevented where the analyses are shared (see `DetectionContext`): quantity mismatches
subtract the input excess explained by padding / system-prompt findings and leave cache-write excess to
`cache_mischarge` and extra usage on a charged-errors scope to `charged_errors`; unlogged + unbilled
buckets with equal tokens become `model_substitution`. What is left here:

1. Grain: when a finding of one kind and subject has a scope containing another's of the same kind and
   subject (a coarser statement saw the same thing), only the finer one is kept.
2. Implied rates: a `price_drift` whose quantity came from the log (no billed quantity) is dropped when a
   quantity finding explains it: one of the same period, on the same scope or one containing it or contained
   in it (`Scope.contains`, either way), that moves the drift's token category, since the amount moved with
   the quantity. A finding on another account, key, model or tier never explains one here.

Every rule that lets one finding explain or suppress another requires the same scope (or a containing one),
period and category: findings on independent scopes never hide each other.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

from ledger.reconcile.detectors import DETECTORS
from ledger.reconcile.model import Finding, Scope
from ledger.vocabulary import CACHE_WRITE_CATEGORIES, PROMPT_CATEGORIES, TOKEN_CATEGORIES

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
_QUANTITY_SUBJECTS = {"input": PROMPT_CATEGORIES, "cache_write": CACHE_WRITE_CATEGORIES, "output": ("output",)}


def moved_categories(finding: Finding) -> frozenset[str]:
    """The token categories whose billed quantity a quantity finding says moved (an implied rate on them moves
    with it); none for the other kinds."""
    if finding.kind in ("padding_tokens", "system_prompt_double_count"):
        return frozenset(PROMPT_CATEGORIES)
    if finding.kind == "cache_mischarge":
        return frozenset(("uncached_input", "cached_input", *CACHE_WRITE_CATEGORIES))
    if finding.kind == "quantity_mismatch":
        return frozenset(_QUANTITY_SUBJECTS.get(finding.subject, ()))
    if finding.kind in QUANTITY_KINDS:
        return frozenset(TOKEN_CATEGORIES)
    return frozenset()


KIND_ORDER = tuple(detector.KIND for detector in DETECTORS)
"""The order findings come out in: by kind, as the detectors' `ORDER` says."""


def resolve_overlaps(findings: Sequence[Finding]) -> list[Finding]:
    """The findings without duplicates, in a stable order (kind, scope, subject, period)."""
    finer = _scopes_with_a_finer_one(findings)
    quantity_findings = [finding for finding in findings if finding.kind in QUANTITY_KINDS]
    kept = [
        finding
        for finding in findings
        if (finding.kind, finding.subject, finding.period_start, finding.scope) not in finer
        and not _implied_rate_explained(finding, quantity_findings)
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


def overlapping(one: Scope, other: Scope) -> bool:
    """The scopes are the same or one contains the other."""
    return one.contains(other) or other.contains(one)


def _implied_rate_explained(finding: Finding, quantity_findings: Sequence[Finding]) -> bool:
    """A `price_drift` on a logged quantity is explained by a quantity finding of the same period, on an
    overlapping scope, that moves its category."""
    if finding.kind != "price_drift" or finding.evidence.get("quantity_source") != "logged":
        return False
    scope = finding.scope
    return any(
        other.period_start == finding.period_start
        and other.period_end == finding.period_end
        and finding.subject in moved_categories(other)
        and overlapping(scope, other.scope)
        for other in quantity_findings
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
