"""When an alert is due, and how alerts are told apart. Pure.

- A finding alerts a channel when its severity is at or above the channel's `min_severity` and — when the
  channel sets a `min_impact_usd` above zero — its impact (in absolute value) is at least that too, and it
  is of a kind, provider and account the channel's route takes (a route without a list takes any).
- It alerts once per fingerprint, then again only when it worsens: its severity rises, or its impact moves
  into a higher bracket (the decade of |impact| in USD: below 1, 1–10, 10–100, …). A finding someone has
  acknowledged or disputed has been seen to: it alerts again only when its severity rises or its impact
  climbs two brackets (a hundredfold). The outbox's dedupe key
  is fingerprint + severity + bracket, so the same level never alerts twice, even after flapping.
- Failed runs, stale statement sources and monthly reports go to every enabled channel, once each.
- Delivery retries back off exponentially: 30 s, 1 min, 2 min, … capped at 1 h; after `MAX_ATTEMPTS` the
  alert is marked failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from ledger.queries.findings import severity_rank

STALE_AFTER_DAYS = 3
"""A statement source whose latest import is older than this is stale (flagged in the report, alerted)."""
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


def impact_bracket(impact: Decimal | None) -> int:
    """0 when |impact| < 1 USD (or unknown), else the number of digits of its whole part."""
    if impact is None:
        return 0
    whole = int(abs(impact))
    return len(str(whole)) if whole >= 1 else 0


ROUTE_FIELDS = ("kinds", "providers", "accounts")
"""What a channel's route can name: lists of finding kinds, providers and accounts."""


def finding_qualifies(severity: str, impact: Decimal, *, min_severity: str, min_impact_usd: Decimal) -> bool:
    """Both thresholds: the severity, and the impact when one is set."""
    if severity_rank(severity) < severity_rank(min_severity):
        return False
    return min_impact_usd <= 0 or abs(impact) >= min_impact_usd


def routed(route: Mapping[str, Sequence[str]], *, kind: str, provider: str | None, account: str | None) -> bool:
    """Whether a finding of this kind and scope is one the route takes."""
    return all(
        not route.get(field) or value in route[field]
        for field, value in zip(ROUTE_FIELDS, (kind, provider, account), strict=True)
    )


SEEN_TO = ("acknowledged", "disputed")
"""Statuses of findings someone is dealing with: they re-alert only past a higher threshold."""
SEEN_TO_BRACKETS = 2


def worsened(
    severity: str,
    impact: Decimal,
    *,
    previous_severity: str,
    previous_impact: Decimal | None,
    seen_to: bool = False,
) -> bool:
    brackets = SEEN_TO_BRACKETS if seen_to else 1
    return (
        severity_rank(severity) > severity_rank(previous_severity)
        or impact_bracket(impact) >= impact_bracket(previous_impact) + brackets
    )


def finding_key(fingerprint: str, severity: str, impact: Decimal) -> str:
    return f"finding:{fingerprint}:{severity}:{impact_bracket(impact)}"


def highest_alerted(keys: Iterable[str]) -> tuple[str, Decimal] | None:
    """The highest severity and an impact of the highest bracket among a finding's alert keys (None when it
    was never alerted)."""
    levels = []
    for key in keys:
        _, _, severity, bracket = key.rsplit(":", 3)
        levels.append((severity_rank(severity), severity, int(bracket)))
    if not levels:
        return None
    top_severity = max(levels)[1]
    top_bracket = max(bracket for _, _, bracket in levels)
    return top_severity, Decimal(10) ** (top_bracket - 1) if top_bracket else Decimal(0)


def cleared_key(fingerprint: str, now: datetime) -> str:
    """One "cleared" message per resolution (a finding reopened and resolved again clears again)."""
    return f"cleared:{fingerprint}:{now.isoformat()}"


def run_failure_key(run_id: int) -> str:
    return f"run_failed:{run_id}"


def stale_source_key(source: str, last_import: datetime) -> str:
    """One alert per source per stale spell: the spell is named by the import it follows."""
    return f"stale_source:{source}:{last_import.isoformat()}"


def monthly_report_key(period_label: str) -> str:
    return f"monthly_report:{period_label}"


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    doublings = min(max(0, attempts - 1), 20)  # 30 s × 2**20 is far past the cap; avoids overflow
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)
