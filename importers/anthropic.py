"""Anthropic Admin API statements: the messages usage report and the cost report.

Shapes from the API reference pages https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages
and https://platform.claude.com/docs/en/api/admin/cost_report/retrieve: a page is
`{data: [{starting_at, ending_at, results: [row]}], has_more, next_page}` with RFC 3339 bounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from importers.base import FetchContext, Importer, LineTemplate, RawDocument, StatementLine
from importers.fetching import FetchClient, paginate_grouped
from importers.json_fields import Grouping, JsonObject, load_json, peek_json
from ledger.periods import Period
from ledger.vocabulary import ServiceTier, UsageType

USAGE_PATH: Final = "/v1/organizations/usage_report/messages"
COST_PATH: Final = "/v1/organizations/cost_report"
USAGE_GROUP_BY: Final = ("model", "api_key_id", "workspace_id", "service_tier", "context_window")
COST_GROUP_BY: Final = ("workspace_id", "description")
API_VERSION: Final = "2023-06-01"

# cost_report `token_type` values (API reference, Get Cost Report → results[].token_type).
_TOKEN_TYPES: Final = {
    "uncached_input_tokens": UsageType.UNCACHED_INPUT,
    "cache_read_input_tokens": UsageType.CACHED_INPUT,
    "cache_creation.ephemeral_5m_input_tokens": UsageType.CACHE_WRITE_5M,
    "cache_creation.ephemeral_1h_input_tokens": UsageType.CACHE_WRITE_1H,
    "output_tokens": UsageType.OUTPUT,
}


class AnthropicImporter(Importer):
    """Pages of `GET /v1/organizations/usage_report/messages` and `GET /v1/organizations/cost_report`."""

    source = "anthropic"
    credential_env = "ANTHROPIC_ADMIN_KEY"
    default_base_url = "https://api.anthropic.com"

    def identify(self, document: RawDocument) -> bool:
        body = peek_json(document)
        if not isinstance(body, dict) or "has_more" not in body or "object" in body:
            return False
        buckets = body.get("data")
        return isinstance(buckets, list) and all(
            isinstance(bucket, dict) and "starting_at" in bucket for bucket in buckets
        )

    def parse(self, document: RawDocument) -> list[StatementLine]:
        return parse_page(document.name, load_json(document))

    def fetch(
        self, period: Period, *, credential: str, client: FetchClient, context: FetchContext
    ) -> Iterator[RawDocument]:
        headers = {"x-api-key": credential, "anthropic-version": API_VERSION}
        window = [
            ("starting_at", _rfc3339(period.start)),
            ("ending_at", _rfc3339(period.end)),
            ("bucket_width", "1d"),
            ("limit", "31"),
        ]
        yield from paginate_grouped(
            client,
            ((USAGE_PATH, USAGE_GROUP_BY), (COST_PATH, COST_GROUP_BY)),
            window,
            headers=headers,
            source=self.source,
            credential_env=self.credential_env,
        )


_BLANKS: Final = {"workspace_id": "", "api_key_id": "", "service_tier": ServiceTier.STANDARD}
"""What a null dimension of a grouped page is: "" for the default workspace and Console usage (as events
without an account or key id carry), the standard tier."""


def parse_page(document: str, body: Any) -> list[StatementLine]:
    """The lines of one usage-report or cost-report page."""
    page = JsonObject.root(document, body)
    buckets = [(bucket, bucket.need_objects("results")) for bucket in page.need_objects("data")]
    # Grouped by them, a null workspace is the default workspace, a null key Console Workbench usage and a null
    # tier the standard one: buckets of their own, not usage summed over every workspace, key or tier.
    grouping = Grouping((row for _, rows in buckets for row in rows), _BLANKS)
    lines: list[StatementLine] = []
    for bucket, rows in buckets:
        start, end = bucket.need_timestamp("starting_at"), bucket.need_timestamp("ending_at")
        for row in rows:
            template = LineTemplate(
                source="anthropic",
                provider="anthropic",
                account=grouping.value(row, "workspace_id"),
                api_key_id=grouping.value(row, "api_key_id"),
                model=row.get_str("model"),
                service_tier=grouping.value(row, "service_tier"),
                period_start=start,
                period_end=end,
                document=document,
                location=row.path,
                raw=row.raw(),
            )
            if "amount" in row.data:
                lines.append(_cost_line(row, template))
            elif "uncached_input_tokens" in row.data:
                lines.extend(_usage_lines(row, template))
            else:
                lines.append(template.line(UsageType.OTHER))
    return lines


def _usage_lines(row: JsonObject, template: LineTemplate) -> list[StatementLine]:
    creation = row.get_object("cache_creation")
    tools = row.get_object("server_tool_use")
    counts = (
        (UsageType.UNCACHED_INPUT, row.need_count("uncached_input_tokens"), "tokens"),
        (UsageType.CACHED_INPUT, row.get_count("cache_read_input_tokens"), "tokens"),
        (UsageType.CACHE_WRITE_5M, creation.get_count("ephemeral_5m_input_tokens") if creation else None, "tokens"),
        (UsageType.CACHE_WRITE_1H, creation.get_count("ephemeral_1h_input_tokens") if creation else None, "tokens"),
        (UsageType.OUTPUT, row.need_count("output_tokens"), "tokens"),
        (UsageType.WEB_SEARCH, tools.get_count("web_search_requests") if tools else None, "requests"),
    )
    return [
        template.line(usage_type, quantity=Decimal(count), unit=unit)
        for usage_type, count, unit in counts
        if count is not None
    ]


def _cost_line(row: JsonObject, template: LineTemplate) -> StatementLine:
    # "Cost amount in lowest currency units (e.g. cents) as a decimal string. For example, "123.45"
    # in "USD" represents $1.23." (Get Cost Report). Kept exact: 123.45 cents is USD 1.2345.
    amount = row.need_decimal("amount").scaleb(-2)
    currency = row.need_str("currency").upper()
    cost_type = row.get_str("cost_type")  # null unless grouped by description
    if cost_type == "tokens":
        usage_type: str = _TOKEN_TYPES.get(row.get_str("token_type") or "", UsageType.OTHER)
    elif cost_type == "web_search":
        usage_type = UsageType.WEB_SEARCH
    else:  # code_execution, session_usage, newer types, or an ungrouped total
        usage_type = UsageType.OTHER
    return template.line(usage_type, amount=amount, currency=currency)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
