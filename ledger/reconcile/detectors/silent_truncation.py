"""Responses stopped for length (or without a finish reason) below the `max_tokens` they asked for, with
their output clustered at one value: a cap the provider or a gateway applies silently."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ledger.reconcile.context import DetectionContext
from ledger.reconcile.findings import fmt_int, fmt_pct, new_finding
from ledger.reconcile.model import Finding, LoggedDay, ReconcileSettings

KIND = "silent_truncation"
ORDER = 100
ON_THE_BILL = False


@dataclass(slots=True)
class _Cluster:
    low: int
    high: int
    rows: list[LoggedDay]

    @property
    def count(self) -> int:
        return sum(r.truncation.count for r in self.rows)


def _allowed_spread(cap: int, settings: ReconcileSettings) -> int:
    return max(settings.truncation_cluster_tokens, math.ceil(settings.truncation_cluster_rel * cap))


def clusters(rows: list[LoggedDay], settings: ReconcileSettings) -> list[_Cluster]:
    """Group the days' truncation ranges whose combined output range stays within the allowed spread; a
    day whose own range is wider is not a cluster."""
    found: list[_Cluster] = []
    tight = [
        r
        for r in rows
        if r.truncation.count
        and r.truncation.max_output - r.truncation.min_output <= _allowed_spread(r.truncation.max_output, settings)
    ]
    for row in sorted(tight, key=lambda r: (r.truncation.max_output, r.truncation.min_output)):
        stats = row.truncation
        current = found[-1] if found else None
        if current is not None:
            low, high = min(current.low, stats.min_output), max(current.high, stats.max_output)
            if high - low <= _allowed_spread(high, settings):
                current.low, current.high = low, high
                current.rows.append(row)
                continue
        found.append(_Cluster(stats.min_output, stats.max_output, [row]))
    return found


def detect(context: DetectionContext) -> list[Finding]:
    settings = context.settings
    findings = []
    for scope, rows in context.logged_per_key_and_model.items():
        found = clusters(rows, settings)
        if not found:
            continue
        best = max(found, key=lambda c: c.count)
        requests = sum(r.successful_requests for r in rows)
        share = Decimal(best.count) / requests if requests else Decimal(0)
        if best.count < settings.truncation_min_count or share < settings.truncation_min_share:
            continue
        clustered = {_row_key(r) for r in best.rows}
        per_day: dict[str, list[int]] = {}
        for row in rows:
            entry = per_day.setdefault(row.day.isoformat(), [0, 0])
            entry[0] += row.truncation.count if _row_key(row) in clustered else 0
            entry[1] += row.successful_requests
        findings.append(
            new_finding(
                kind=KIND,
                scope=scope,
                period=context.window,
                impact_usd=Decimal(0),
                rate=share,
                evidence={
                    "cap_tokens": best.high,
                    "min_output_tokens": best.low,
                    "count": best.count,
                    "share": share.quantize(Decimal("0.0001")),
                    "requests": requests,
                    "days": len({r.day for r in best.rows}),
                    "other_clusters": [{"cap_tokens": c.high, "count": c.count} for c in found if c is not best],
                    "expected": 0,
                    "billed": None,
                    "difference": best.count,
                    "tolerance": {
                        "spread_tokens": _allowed_spread(best.high, settings),
                        **settings.as_evidence(
                            "truncation_min_count",
                            "truncation_min_share",
                            "truncation_cluster_tokens",
                            "truncation_cluster_rel",
                        ),
                    },
                    "series": [
                        {"day": day, "logged": truncated, "billed": None, "requests": n}
                        for day, (truncated, n) in sorted(per_day.items())
                    ],
                },
                summary=(
                    f"{fmt_int(best.count)} responses ({fmt_pct(share)}) stopped for length at "
                    f"{_tokens_range(best.low, best.high)} output tokens, below the max_tokens they "
                    f"requested: a silent cap at {fmt_int(best.high)} tokens"
                ),
                settings=settings,
            )
        )
    return findings


def _tokens_range(low: int, high: int) -> str:
    """ "4,096" when every truncated response stopped at the same length, else "1,017–1,024"."""
    return fmt_int(high) if low == high else f"{fmt_int(low)}–{fmt_int(high)}"


def _row_key(row: LoggedDay) -> tuple[date, str, str]:
    """A logged row among those of its provider × account × key × served model: its day, requested model and tier."""
    return row.day, row.request_model, row.service_tier
