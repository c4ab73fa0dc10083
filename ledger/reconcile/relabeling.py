"""Usage billed under another model: on one scope-without-model and day, a bucket billed with nothing logged
(model X) and a bucket logged with nothing billed (model Y) carrying the same tokens are one usage the
provider labelled differently. Such pairs are reported as `model_substitution`, not as unlogged + unbilled."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from ledger.reconcile.model import Comparison, ReconcileSettings, Scope
from ledger.vocabulary import TOKEN_CATEGORIES


@dataclass(frozen=True, slots=True)
class Relabel:
    logged: Comparison
    """The unbilled bucket: the model the application logged."""
    billed: Comparison
    """The unlogged bucket: the model the statement billed."""


def relabeled_usage(buckets: tuple[Comparison, ...], settings: ReconcileSettings) -> tuple[Relabel, ...]:
    candidates: dict[tuple[Scope, date, date], list[Comparison]] = {}
    for bucket in buckets:
        if bucket.scope.model is not None and bucket.unlogged and bucket.stated(TOKEN_CATEGORIES):
            key = (replace(bucket.scope, model=None), bucket.first_day, bucket.last_day)
            candidates.setdefault(key, []).append(bucket)
    pairs = []
    for bucket in buckets:
        if bucket.scope.model is None or not bucket.unbilled or not bucket.final:
            continue
        pool = candidates.get((replace(bucket.scope, model=None), bucket.first_day, bucket.last_day), [])
        categories = bucket.stated(TOKEN_CATEGORIES)
        logged = bucket.logged_quantity(categories)
        for billed in pool:
            if abs(billed.billed_quantity(categories) - logged) <= settings.token_tolerance(logged):
                pool.remove(billed)
                pairs.append(Relabel(logged=bucket, billed=billed))
                break
    return tuple(pairs)
