"""How a period's drift is accounted for: `explain_drift` splits it into the money the billing findings
explain and an unexplained remainder, and lists the anomalies (money at risk, not on the bill) apart, so the
numbers add up on screen: drift = explained + unexplained, exactly."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from ledger.reconcile.detectors import DETECTORS
from ledger.reconcile.drift import per_account_and_model
from ledger.reconcile.model import DriftRow

AT_RISK_KINDS = frozenset(detector.KIND for detector in DETECTORS if not detector.ON_THE_BILL)
"""Kinds whose impact is not on the bill (their detectors say so: `ON_THE_BILL = False`), such as more spend than
usual, output cut short, streams without an end."""
SERVED_BY_ANOTHER = "requested:"
"""The subject prefix of a `model_substitution` whose requests another model answered, at no extra bill: at
risk, where one billed under another model (`billed_as:`) is on the bill."""


class ImpactOf(Protocol):
    """What `explain_drift` reads of a finding (a `Finding`, a stored finding row, an API answer's object)."""

    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def impact_usd(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class KindTotal:
    kind: str
    findings: int
    impact_usd: Decimal


@dataclass(frozen=True, slots=True)
class DriftExplanation:
    """`drift` = `explained` + `unexplained`; `at_risk` is apart and not in the drift."""

    drift: Decimal
    """Billed − expected over the period, every figure once (`per_account_and_model` rows with both sides)."""
    explained: Decimal
    """The sum of the billing findings' impacts."""
    unexplained: Decimal
    """What no finding explains: rounding, noise below tolerance, or a discrepancy nothing names."""
    billing: tuple[KindTotal, ...]
    """Per billing kind, its findings' count and impact (the parts of `explained`)."""
    at_risk: Decimal
    at_risk_by_kind: tuple[KindTotal, ...]
    not_compared: int
    """Account × model rows with no difference to add (unpriced usage, or no statement covers it)."""


def is_billing_finding(finding: ImpactOf) -> bool:
    """Its impact is billed − expected money on the statement (not an anomaly at risk)."""
    if finding.kind in AT_RISK_KINDS:
        return False
    return not (finding.kind == "model_substitution" and finding.subject.startswith(SERVED_BY_ANOTHER))


def explain_drift(drift_rows: Sequence[DriftRow], findings: Iterable[ImpactOf]) -> DriftExplanation:
    """Split a period's drift (the reconciler's drift rows) into the findings' billing impacts and an unexplained
    remainder, with the anomaly kinds (spend spike, truncation, missing finish reason, substitution at no extra
    bill) totalled apart as at risk. Pure: the same numbers for the CLI, the web report and the API."""
    rows = per_account_and_model(drift_rows)
    differences = [row.difference for row in rows if row.difference is not None]
    drift = sum(differences, Decimal(0))
    billing, risky = totals_by_side(findings)
    explained = sum((total.impact_usd for total in billing), Decimal(0))
    return DriftExplanation(
        drift=drift,
        explained=explained,
        unexplained=drift - explained,
        billing=billing,
        at_risk=sum((total.impact_usd for total in risky), Decimal(0)),
        at_risk_by_kind=risky,
        not_compared=len(rows) - len(differences),
    )


def totals_by_side(findings: Iterable[ImpactOf]) -> tuple[tuple[KindTotal, ...], tuple[KindTotal, ...]]:
    """The findings' count and impact per kind: the billing kinds', then the at-risk kinds', each largest first."""
    billing: dict[str, list[Decimal]] = defaultdict(list)
    risky: dict[str, list[Decimal]] = defaultdict(list)
    for finding in findings:
        (billing if is_billing_finding(finding) else risky)[finding.kind].append(finding.impact_usd)
    return _totals(billing), _totals(risky)


def _totals(grouped: dict[str, list[Decimal]]) -> tuple[KindTotal, ...]:
    totals = [KindTotal(kind, len(impacts), sum(impacts, Decimal(0))) for kind, impacts in grouped.items()]
    return tuple(sorted(totals, key=lambda total: (-abs(total.impact_usd), total.kind)))
