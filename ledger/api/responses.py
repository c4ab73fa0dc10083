"""The shapes of the API's JSON answers, for the OpenAPI document. Routes build their answers as plain dicts
(fast, and nothing silently dropped); the contract test (tests/api/test_openapi_contract.py) checks every
answer against these shapes, so a field added to one and not the other fails it.

Money is a decimal string (never a float); instants are ISO 8601 with their UTC offset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from ledger.events.schema import MEASURES

Money = str | None
"""A decimal string such as "12.34" (exact), or null where unknown."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FindingOut(Strict):
    id: int
    kind: str = Field(description="A finding kind (padding_tokens, cache_mischarge, …; GET /v1/findings lists them).")
    severity: str = Field(description="info, warning or critical")
    provider: str
    account: str | None
    api_key_id: str | None
    model: str | None
    period_start: str
    period_end: str
    impact_usd: str = Field(description="Billed minus used, in USD, as a decimal string; positive: billed more.")
    evidence: dict[str, Any] = Field(description="The figures behind the finding, tolerances and daily series.")
    summary: str
    status: str = Field(description="open, acknowledged, resolved or disputed")
    note: str | None
    first_seen: str
    last_seen: str


class StatusChangeOut(Strict):
    changed_at: str
    from_status: str
    to_status: str
    note: str | None
    actor: str | None = Field(description="The id of the key that made the change.")


class FindingWithChanges(FindingOut):
    changes: list[StatusChangeOut]


class Findings(Strict):
    findings: list[FindingOut]


class DriftLine(Strict):
    provider: str
    account: str
    model: str
    logged_tokens: int
    billed_tokens: int | None
    logged_by_category: dict[str, int]
    billed_by_category: dict[str, int]
    expected_cost: Money
    billed_cost: Money
    difference: Money = Field(description="billed_cost − expected_cost")
    percent: Money = Field(description="difference ÷ expected_cost × 100")
    currency: str
    note: str | None = Field(
        description="what the reconciler adds, e.g. that a statement label is probably this model (alias it)"
    )
    computed_at: str


class RunOut(Strict):
    id: int
    trigger: str = Field(description="schedule, close, cli, api, …")
    status: str = Field(description="running, succeeded or failed")
    started_at: str
    finished_at: str | None
    counts: dict[str, int]
    error: str | None


class Reconciliation(Strict):
    period: str
    rows: list[DriftLine]
    runs: list[RunOut]


class RunResult(Strict):
    run_id: int
    period: str
    status: str = Field(description="succeeded or failed")
    counts: dict[str, int]
    error: str | None


class StatementTotal(Strict):
    provider: str
    account: str | None
    model: str | None
    usage_type: str
    quantity: Money
    amount: Money
    currency: str | None
    lines: int


class Statements(Strict):
    period: str
    rows: list[StatementTotal]


def _event_measures() -> type[Strict]:
    """The fields of the counts an event states, from the event field list (`ledger.events.schema.MEASURES`)."""
    fields: dict[str, Any] = {
        measure.name: (
            int | None if measure.optional else int,
            Field(description=measure.description) if measure.description else ...,
        )
        for measure in MEASURES
    }
    return create_model("EventMeasuresOut", __base__=Strict, **fields)


if TYPE_CHECKING:
    EventMeasuresOut = Strict
else:
    EventMeasuresOut = _event_measures()


class EventOut(EventMeasuresOut):
    """An event as GET /v1/events lists it (`ledger.queries.usage.EVENT_FIELDS`): its measures, and these."""

    event_id: str
    occurred_at: str
    received_at: str
    provider: str
    account: str | None
    api_key_id: str | None
    request_model: str
    response_model: str
    max_tokens: int | None
    finish_reason: str | None
    status_code: int
    error_type: str | None
    latency_ms: int | None
    ttft_ms: int | None
    stream: bool
    service_tier: str | None
    region: str | None
    app: str | None
    user: str | None
    tags: dict[str, str] | None
    provider_request_id: str | None
    reported_cost: Money
    usage: dict[str, Any] | None = Field(description="The provider's raw usage object, as sent.")


class Events(Strict):
    events: list[EventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class UsageRange(Strict):
    start: str
    end: str


class Usage(Strict):
    period: UsageRange
    group_by: list[str]
    rows: list[dict[str, Any]] = Field(
        description="One row per group: the `group_by` dimensions, then requests, input_tokens, output_tokens, "
        "cache_read_input_tokens, cache_creation_input_tokens, cache_creation_1h_input_tokens, reasoning_tokens, "
        "web_search_requests, errors and reported_cost."
    )


def ok(model: type[BaseModel], description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting a route's 200 answer as `model` (the route returns a plain dict)."""
    return {200: {"model": model, "description": description}}
