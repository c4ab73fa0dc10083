"""OpenRouter statements: per-request generation records and daily activity.

Shapes from the OpenRouter OpenAPI document (OpenRouterTeam/typescript-sdk `.speakeasy/in.openapi.yaml`) and
https://openrouter.ai/docs/api/api-reference/analytics/get-user-activity:
`GET /api/v1/generation?id=` → `{data: {id, created_at, model, total_cost, native_tokens_prompt, …}}`;
`GET /api/v1/activity?date=YYYY-MM-DD` → `{data: [{date, model, usage, requests, prompt_tokens, …}]}` for
completed UTC days within the last 30 (a management key is required).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Final

from importers.base import FetchContext, Importer, LineTemplate, RawDocument, StatementLine, implausible
from importers.fetching import FetchClient
from importers.json_fields import JsonObject, load_json, peek_json
from ledger.periods import Period
from ledger.vocabulary import UsageType

GENERATION_PATH: Final = "/generation"
ACTIVITY_PATH: Final = "/activity"


class OpenRouterImporter(Importer):
    """`GET /api/v1/generation` records (one request each) and `GET /api/v1/activity` days."""

    source = "openrouter"
    credential_env = "OPENROUTER_API_KEY"
    default_base_url = "https://openrouter.ai/api/v1"

    def identify(self, document: RawDocument) -> bool:
        body = peek_json(document)
        if not isinstance(body, dict) or "has_more" in body or "object" in body:
            return False
        data = body.get("data")
        if isinstance(data, dict):
            return "id" in data and "total_cost" in data
        if isinstance(data, list) and data:
            return all(isinstance(row, dict) and "date" in row and "requests" in row for row in data)
        return isinstance(data, list) and "activity" in document.name  # a day without activity

    def parse(self, document: RawDocument) -> list[StatementLine]:
        body = JsonObject.root(document.name, load_json(document))
        record = body.data.get("data")
        if isinstance(record, Mapping):
            return generation_lines(JsonObject(document.name, "data", record))
        return [line for row in body.need_objects("data") for line in activity_lines(row)]

    def fetch(
        self, period: Period, *, credential: str, client: FetchClient, context: FetchContext
    ) -> Iterator[RawDocument]:
        headers = {"Authorization": f"Bearer {credential}"}

        def get(path: str, params: list[tuple[str, str]]) -> RawDocument:
            return client.get(path, params, headers=headers, source=self.source, credential_env=self.credential_env)

        for day in period.days():
            day_end = datetime.combine(day + timedelta(days=1), time(0), UTC)
            if context.now is None or day_end <= context.now:  # activity covers completed UTC days only
                yield get(ACTIVITY_PATH, [("date", day.isoformat())])
        for request_id in context.request_ids:
            yield get(GENERATION_PATH, [("id", request_id)])


def generation_lines(record: JsonObject) -> list[StatementLine]:
    """One request: tokens by the model's native tokenizer (what is billed), and its total cost."""
    created = record.need_timestamp("created_at")
    request_id = record.need_str("id")
    template = LineTemplate(
        source="openrouter",
        provider="openrouter",
        account=record.get_str("workspace_id"),
        api_key_id=None,
        model=record.get_str("model"),
        service_tier=record.get_str("service_tier"),
        period_start=created,
        period_end=created,  # an instant: the request
        document=record.document,
        location=record.path,
        raw=record.raw(),
        request_id=request_id,
    )
    lines = []
    prompt = record.get_count("native_tokens_prompt")
    cached = record.get_count("native_tokens_cached")
    if prompt is not None:
        if cached is not None and cached > prompt:
            raise record.error("native_tokens_cached", f"{cached} is more than native_tokens_prompt ({prompt})")
        lines.append(template.line(UsageType.UNCACHED_INPUT, quantity=Decimal(prompt - (cached or 0)), unit="tokens"))
    if cached is not None:
        lines.append(template.line(UsageType.CACHED_INPUT, quantity=Decimal(cached), unit="tokens"))
    completion = record.get_count("native_tokens_completion")  # includes reasoning tokens
    if completion is not None:
        lines.append(template.line(UsageType.OUTPUT, quantity=Decimal(completion), unit="tokens"))
    lines.append(
        template.line(
            UsageType.REQUESTS,
            quantity=Decimal(1),
            unit="requests",
            amount=record.need_decimal("total_cost"),  # USD (OpenRouter credits)
            currency="USD",
        )
    )
    return lines


def activity_lines(row: JsonObject) -> list[StatementLine]:
    """One model endpoint on one UTC day.

    `prompt_tokens` count cached and uncached input together, so they cannot be split into usage
    types: they are kept as an `other` line located at the field. Reasoning tokens are part of
    `completion_tokens` and stay in `raw`.
    """
    day = _day(row, "date")
    start = datetime.combine(day, time(0), UTC)
    template = LineTemplate(
        source="openrouter",
        provider="openrouter",
        account=row.get_str("workspace_id"),
        api_key_id=None,
        model=row.get_str("model"),
        service_tier=None,
        period_start=start,
        period_end=start + timedelta(days=1),
        document=row.document,
        location=row.path,
        raw=row.raw(),
    )
    lines = [
        template.line(
            UsageType.REQUESTS,
            quantity=Decimal(row.need_count("requests")),
            unit="requests",
            amount=row.need_decimal("usage"),  # USD (OpenRouter credits)
            currency="USD",
        )
    ]
    completion = row.get_count("completion_tokens")
    if completion is not None:
        lines.append(template.line(UsageType.OUTPUT, quantity=Decimal(completion), unit="tokens"))
    prompt = row.get_count("prompt_tokens")
    if prompt is not None:
        located = replace(template, location=f"{row.path}.prompt_tokens")
        lines.append(located.line("other", quantity=Decimal(prompt), unit="tokens"))
    return lines


def _day(row: JsonObject, key: str) -> date:
    text = row.need_str(key)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise row.error(key, f"expected a date like 2026-10-01, got {text!r}") from None
    if problem := implausible(datetime.combine(day, time(0), UTC)):
        raise row.error(key, problem)
    return day
