"""FOCUS exports: AI rows become lines; token blocks become tokens; every error names file, line and column."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importers.base import StatementError, StatementLine
from importers.focus import FocusImporter, billing_label_models, model_of_aws_usage_type
from importers.units import Unit, parse_unit
from tests.importers.golden import csv_document

HEADER = (
    "BilledCost,BillingCurrency,ChargeCategory,ChargeDescription,ChargePeriodStart,ChargePeriodEnd,"
    "ConsumedQuantity,ConsumedUnit,PricingQuantity,PricingUnit,ProviderName,ResourceId,ServiceCategory,"
    "ServiceName,SkuMeter,SubAccountId,x_UsageType"
)
PERIOD = "2026-10-01T00:00:00Z,2026-10-02T00:00:00Z"
AI = "AI and Machine Learning"


def parse(*rows: str, header: str = HEADER) -> list[StatementLine]:
    return FocusImporter().parse(csv_document("focus.csv", "\n".join([header, *rows]) + "\n"))


def bedrock_row(usage_type: str, quantity: str = "1000", unit: str = "Tokens", resource: str = "") -> str:
    return f"1.5,USD,Usage,,{PERIOD},{quantity},{unit},,,AWS,{resource},{AI},Amazon Bedrock,,123456789012,{usage_type}"


@pytest.mark.parametrize(
    ("usage_type", "expected"),
    [
        ("USE1-Claude4.5Sonnet-input-tokens", ("uncached_input", "claude-sonnet-4-5")),
        ("USE1-Claude4.5Sonnet-output-tokens", ("output", "claude-sonnet-4-5")),
        ("EUC1-Claude4.5Sonnet-cache-read-input-token-count", ("cached_input", "claude-sonnet-4-5")),
        ("USW2-Claude4.5Sonnet-cache-write-input-token-count", ("cache_write_5m", "claude-sonnet-4-5")),
        ("USE1-gpt-oss-120b-mantle-input-tokens-flex", ("uncached_input", "gpt-oss-120b")),
        ("USE1-gpt-oss-120b-mantle-output-tokens-priority", ("output", "gpt-oss-120b")),
        ("USE1-Guardrail-TextUnits", ("other", None)),
    ],
)
def test_aws_usage_types_give_the_token_class_and_model(usage_type: str, expected: tuple[str, str | None]) -> None:
    [line] = parse(bedrock_row(usage_type))

    assert (line.usage_type, line.model) == expected
    assert (line.provider, line.account, line.amount) == ("bedrock", "123456789012", Decimal("1.5"))


def test_a_bedrock_model_arn_names_the_model_when_the_usage_type_does_not() -> None:
    arn = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"

    [line] = parse(bedrock_row("USE1-Guardrail-TextUnits", resource=arn))

    assert line.model == "anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_every_column_naming_the_model_is_kept_on_the_line_most_trusted_first() -> None:
    """Which of them has a known price is the statements store's to find (tests/statements: `known_model`)."""
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"

    [line] = parse(bedrock_row("USE1-AcmeHaikuTier-input-tokens", resource=arn))
    [alone] = parse(bedrock_row("USE1-AcmeHaikuTier-input-tokens"))

    assert line.model_labels == ("acme-haiku-tier", "us.anthropic.claude-haiku-4-5-20251001-v1:0")
    assert line.model == "acme-haiku-tier"
    assert (alone.model, alone.model_labels) == ("acme-haiku-tier", ("acme-haiku-tier",))


def test_pricing_quantity_in_token_blocks_is_counted_in_tokens_when_consumed_quantity_is_empty() -> None:
    row = f"2.7,USD,Usage,,{PERIOD},,,180,1K tokens,AWS,,{AI},Amazon Bedrock,,1,USE1-X-output-tokens"

    [line] = parse(row)

    assert (line.quantity, line.unit) == (Decimal(180000), "tokens")


def test_credits_are_credit_lines_and_taxes_are_other_lines_without_a_model() -> None:
    credit = f"-10,USD,Credit,AWS Activate credit,{PERIOD},,,,,AWS,,{AI},Amazon Bedrock,,1,"
    tax = f"0.99,USD,Tax,Tax for AmazonBedrock,{PERIOD},,,,,AWS,,{AI},Amazon Bedrock,,1,"

    lines = parse(credit, tax)

    assert [(line.usage_type, line.model, line.amount) for line in lines] == [
        ("credit", None, Decimal(-10)),
        ("other", None, Decimal("0.99")),
    ]


def test_rows_outside_ai_services_are_not_statement_lines_unless_asked_for() -> None:
    compute = f"17.28,USD,Usage,g5.xlarge hours,{PERIOD},24,Hours,24,Hours,AWS,i-0abc,Compute,Amazon EC2,,1,BoxUsage"
    document = csv_document("focus.csv", f"{HEADER}\n{compute}\n")

    assert FocusImporter().parse(document) == []
    [line] = FocusImporter(service_categories=("Compute",)).parse(document)
    assert (line.usage_type, line.quantity, line.unit) == ("other", Decimal(24), "Hours")


@pytest.mark.parametrize(
    ("meter", "usage_type"),
    [
        ("Gemini 2.5 Flash Text Input", "uncached_input"),
        ("Gemini 2.5 Flash Cached Text Input", "cached_input"),
        ("claude-sonnet-4-6 cache write tokens", "cache_write_5m"),
        ("gpt-4.1 Output global Tokens", "output"),
        ("Gemini 2.5 Flash Grounding Requests", "other"),
    ],
)
def test_token_rows_without_an_aws_usage_type_are_read_from_the_sku_meter(meter: str, usage_type: str) -> None:
    header = "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,"
    header += "ConsumedQuantity,ConsumedUnit,ServiceProviderName,HostProviderName,ServiceCategory,ServiceName,SkuMeter"
    row = f"0.27,EUR,Usage,{PERIOD},900000,Tokens,Google Cloud,Google Cloud,{AI},Vertex AI,{meter}"

    [line] = parse(row, header=header)

    assert (line.usage_type, line.model, line.provider) == (usage_type, meter, "google")


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("Tokens", Unit("tokens", Decimal(1))),
        ("1000 Tokens", Unit("tokens", Decimal(1000))),
        ("1K tokens", Unit("tokens", Decimal(1000))),
        ("1M Tokens", Unit("tokens", Decimal(1_000_000))),
        ("1 Token", Unit("tokens", Decimal(1))),
        ("1000 Requests", Unit("requests", Decimal(1000))),
        ("Hours", None),
        ("1000 Text Units", None),
        ("GiBy-h", None),
    ],
)
def test_units_name_token_and_request_counts_with_their_block_size(text: str, unit: Unit | None) -> None:
    assert parse_unit(text) == unit


@given(blocks=st.integers(0, 10**9), size=st.sampled_from(["1000 Tokens", "1K tokens", "1M Tokens", "Tokens"]))
def test_a_quantity_in_token_blocks_is_the_same_number_of_tokens(blocks: int, size: str) -> None:
    unit = parse_unit(size)
    assert unit is not None

    [line] = parse(bedrock_row("USE1-X-input-tokens", quantity=str(blocks), unit=size))

    assert line.quantity == blocks * unit.scale


def test_focus_1_3_files_are_identified_by_service_provider_name() -> None:
    header = "BilledCost,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ServiceProviderName"

    assert FocusImporter().identify(csv_document("f.csv", header + "\n"))
    assert not FocusImporter().identify(csv_document("f.csv", "BilledCost,ChargeCategory\n"))
    assert not FocusImporter().identify(csv_document("f.json", '{"BilledCost": 1}'))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            f"abc,USD,Usage,,{PERIOD},1,Tokens,,,AWS,,{AI},Amazon Bedrock,,1,X-input-tokens",
            "focus.csv: line 2: BilledCost: expected a decimal number, got 'abc'",
        ),
        (
            f"1,USD,Usage,,yesterday,2026-10-02T00:00:00Z,1,Tokens,,,AWS,,{AI},Amazon Bedrock,,1,X-input-tokens",
            "focus.csv: line 2: ChargePeriodStart: expected an ISO 8601 timestamp, got 'yesterday'",
        ),
        (f"1,USD,Usage,,{PERIOD},1,Tokens,,,AWS,,{AI}", "focus.csv: line 2: has 13 cells, the header has 17"),
        (
            f"1,,Usage,,{PERIOD},1,Tokens,,,AWS,,{AI},Amazon Bedrock,,1,X-input-tokens",
            "focus.csv: line 2: BillingCurrency: is empty",
        ),
    ],
)
def test_a_bad_row_is_reported_with_its_file_line_and_column(row: str, message: str) -> None:
    with pytest.raises(StatementError) as raised:
        parse(row)

    assert str(raised.value) == message


def test_a_row_without_a_sub_account_beside_rows_with_one_is_usage_outside_any() -> None:
    """Read as "not broken down by sub-account", it would be taken for a coarser copy of the other rows' figures
    and left out of the comparison."""
    with_one = bedrock_row("USE1-Claude4.5Sonnet-input-tokens")
    without = with_one.replace(",123456789012,", ",,")
    assert [line.account for line in parse(with_one, without)] == ["123456789012", ""]
    assert [line.account for line in parse(without)] == [None]  # no row names one: not broken down by it


@pytest.mark.parametrize(
    ("usage_type", "model"),
    [
        ("USE1-Claude4.5Sonnet-input-tokens", "claude-sonnet-4-5"),
        ("USW2-Claude4.5Sonnet-output-tokens", "claude-sonnet-4-5"),
        ("EUC1-Claude4.5Haiku-cache-read-input-token-count", "claude-haiku-4-5"),
        ("USE1-Claude4.5Sonnet-cache-write-input-token-count", "claude-sonnet-4-5"),
        ("USE1-Claude4.1Opus-input-tokens", "claude-opus-4-1"),
        ("USE1-Claude3.5Haiku-output-tokens", "claude-3-5-haiku"),
        ("USE1-NovaPro-input-tokens", "nova-pro"),
        ("USW2-Nova2Lite-output-tokens", "nova-2-lite"),
        ("USE1-Llama3.3-70B-Instruct-input-tokens", "llama3-3-70b-instruct"),
        ("USE1-MistralLarge-output-tokens", "mistral-large"),
        ("USE1-gpt-oss-120b-mantle-input-tokens-flex", "gpt-oss-120b"),
        ("USE1-Guardrail-TextUnits", None),
    ],
)
def test_an_aws_usage_type_names_the_model_as_its_vendor_spells_it(usage_type: str, model: str | None) -> None:
    assert model_of_aws_usage_type(usage_type) == model


def test_a_product_name_names_a_model_only_when_it_is_a_model_edition() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert billing_label_models(
        usage_type="USE1-Claude4.5Sonnet-input-tokens",
        resource_id=arn,
        product="Claude Sonnet 4.5 (Amazon Bedrock Edition)",
        texts=["Claude Sonnet 4.5 input tokens", None],
    ) == [
        "claude-sonnet-4-5",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Claude Sonnet 4.5",
        "Claude Sonnet 4.5 input tokens",
    ]
    assert billing_label_models(product="Amazon Bedrock", texts=["Guardrail text units"]) == ["Guardrail text units"]
