"""The period's drift split into what the findings explain and what they do not. Pure.

A drift (billed − expected, over the rows with both) is explained in part by billing findings: those whose
impact is money billed that the logged usage does not account for (padded tokens, cache reads billed at the
full rate, a price above the catalog's, billed failures, usage no application logged…), as the reconciler
classifies them (`ledger.reconcile.drift_explanation`). What they leave is
the unexplained remainder, so that billing findings + remainder = drift, to the cent. Other findings are
"at risk": anomalies whose impact is not part of the drift (a spend spike is billed as logged; a substituted
model or truncated answers cost what they are billed), shown beside it and never added to it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from ledger.queries.footing import footed
from ledger.reconcile.drift_explanation import ImpactOf, KindTotal, totals_by_side


@dataclass(frozen=True, slots=True)
class DriftSplit:
    drift: Decimal
    billing: tuple[KindTotal, ...]
    at_risk: tuple[KindTotal, ...]

    @property
    def explained(self) -> Decimal:
        return sum((part.impact_usd for part in self.billing), Decimal(0))

    @property
    def unexplained(self) -> Decimal:
        """The drift no billing finding accounts for (negative when findings claim more than the drift)."""
        return self.drift - self.explained

    @property
    def at_risk_total(self) -> Decimal:
        return sum((part.impact_usd for part in self.at_risk), Decimal(0))


@dataclass(frozen=True, slots=True)
class WrittenSplit:
    """The split as written, to the cent: the billing kinds' impacts and the remainder add up to the drift."""

    billing: tuple[tuple[KindTotal, Decimal], ...]
    explained: Decimal
    unexplained: Decimal
    drift: Decimal


def written(split: DriftSplit) -> WrittenSplit:
    """Each part rounded so that the parts add up to the drift rounded once (largest remainder)."""
    rounded, total = footed([*(part.impact_usd for part in split.billing), split.unexplained])
    parts = [value or Decimal(0) for value in rounded]
    return WrittenSplit(
        billing=tuple(zip(split.billing, parts[:-1], strict=True)),
        explained=sum(parts[:-1], Decimal(0)),
        unexplained=parts[-1],
        drift=total or Decimal(0),
    )


def split_drift(drift: Decimal, findings: Iterable[ImpactOf]) -> DriftSplit:
    """The period's findings summed per kind, on the side the reconciler puts them
    (`ledger.reconcile.drift_explanation.totals_by_side`): billing impacts or at risk."""
    billing, at_risk = totals_by_side(findings)
    return DriftSplit(drift=drift, billing=billing, at_risk=at_risk)
