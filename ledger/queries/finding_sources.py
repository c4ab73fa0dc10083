"""What a finding rests on, for people who must act on it: its evidence in sentences, the `GET /v1/events`
query that lists the usage events behind it, and the statement lines it was compared with (with their
provenance: document, location, SHA-256, raw values). Pure: the reads are in `ledger.queries.sources`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from ledger.display import money

EVENT_SAMPLE = 20
"""Events shown on a finding's page; the query behind them lists every one, page by page."""

KIND_EXPLANATIONS = {
    "padding_tokens": "The statement bills more input tokens than your applications logged, by a steady number per "
    "request: tokens your requests did not send were counted.",
    "system_prompt_double_count": "The billed input exceeds the logged input by about the size of the system prompt "
    "on each request that has one: the system prompt looks counted twice.",
    "cache_mischarge": "Input your applications logged as read from the provider's cache is billed at the full "
    "input price instead of the cached price.",
    "price_drift": "The amount billed per token is above the catalog price in effect on those days: a price "
    "change nobody announced, or a negotiated price not applied.",
    "charged_errors": "The statement bills more requests than succeeded: failed requests (rate limits, server "
    "errors) look billed.",
    "unlogged_usage": "The statement bills usage that no application logged: a key used outside your "
    "applications (leaked, or an application not instrumented).",
    "unbilled_usage": "Your applications logged usage that no statement bills: the statement may be late or "
    "incomplete, and the bill may grow.",
    "quantity_mismatch": "Billed and logged token counts differ by more than the tolerance.",
    "model_substitution": "The model that answered is not the one your applications asked for; you pay the "
    "answering model's price for a model you did not choose.",
    "silent_truncation": "Answers stopped at the length limit well below the max_tokens the requests allowed: "
    "you pay for output that was cut off.",
    "missing_finish_reason": "Streams ended without a finish reason: their answers may be cut off, and their "
    "usage may be missing from what your applications logged.",
    "spend_spike": "Spend on one day rose far above its trailing median.",
}


@dataclass(frozen=True, slots=True)
class StatementSource:
    """One statement line a finding compares with, and where it came from."""

    id: int
    source: str
    document: str
    sha256: str
    location: str
    period_start: datetime
    period_end: datetime
    usage_type: str
    model_raw: str | None
    quantity: Decimal | None
    unit: str | None
    amount: Decimal | None
    currency: str | None
    raw: Mapping[str, Any]


def explanation(finding: Mapping[str, Any]) -> list[str]:
    """The finding in sentences (as `finding_json` gives it): what was found, what it means, what is at stake."""
    sentences = [str(finding["summary"]).rstrip(".") + "."]
    meaning = KIND_EXPLANATIONS.get(str(finding["kind"]))
    if meaning:
        sentences.append(meaning)
    impact = Decimal(str(finding["impact_usd"] or 0))
    if impact > 0:
        sentences.append(f"The money at stake is estimated at {money(impact)}.")
    elif impact < 0:
        sentences.append(f"It works in your favour by {money(-impact)}.")
    else:
        sentences.append("It has no direct cost, but it is a risk to watch.")
    return sentences


def events_query(finding: Mapping[str, Any], *, limit: int = EVENT_SAMPLE) -> dict[str, str]:
    """The `GET /v1/events` parameters that list the usage events in the finding's scope and period (the
    sample on its page is the first page of them)."""
    query = {"since": str(finding["period_start"]), "until": str(finding["period_end"])}
    for name in ("provider", "account", "api_key_id", "model"):
        if finding.get(name) is not None:
            query[name] = str(finding[name])
    query["limit"] = str(limit)
    return query


def events_url(finding: Mapping[str, Any], *, limit: int = EVENT_SAMPLE) -> str:
    return "/v1/events?" + urlencode(events_query(finding, limit=limit))
