"""Specification of the shared words (ledger/vocabulary.py): each list is defined once, the lists that derive
from one another agree, and every provider's spelling of a tier maps into ours."""

from __future__ import annotations

import json

import pytest

from importers import base as importer_protocol
from ledger.access import auth
from ledger.pricing import prices
from ledger.vocabulary import (
    PRICE_TYPE_OF_CATEGORY,
    PRICE_TYPES,
    ROLES,
    SERVICE_TIERS,
    TIER_OF_STATEMENT_SPELLING,
    TOKEN_CATEGORIES,
    TOKEN_USAGE_TYPES,
    USAGE_TYPES,
    PriceType,
    Role,
    ServiceTier,
    TokenCategory,
    UsageType,
)


def test_the_words_are_the_plain_strings_stored_and_sent() -> None:
    assert TokenCategory.UNCACHED_INPUT == "uncached_input"
    assert f"{PriceType.INPUT}" == "input"
    assert json.dumps({UsageType.CACHE_WRITE_1H: ServiceTier.FLEX}) == '{"cache_write_1h": "flex"}'
    assert {Role.READ: 1}["read"] == 1


def test_every_token_category_is_a_usage_type_and_has_a_price_type() -> None:
    assert frozenset(TOKEN_CATEGORIES) == TOKEN_USAGE_TYPES
    assert set(TOKEN_USAGE_TYPES) < set(USAGE_TYPES)
    assert tuple(PRICE_TYPE_OF_CATEGORY) == TOKEN_CATEGORIES
    assert set(PRICE_TYPE_OF_CATEGORY.values()) < set(PRICE_TYPES)
    assert PRICE_TYPE_OF_CATEGORY[TokenCategory.UNCACHED_INPUT] == "input"  # the price files' name


def test_a_usage_of_every_kind_is_priced_by_a_price_type() -> None:
    usage = prices.TokenUsage(*range(1, 8))
    assert [price_type for price_type, _ in usage.quantities()] == [
        *PRICE_TYPE_OF_CATEGORY.values(),
        PriceType.REQUEST,
        PriceType.WEB_SEARCH,
    ]


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (prices, {"TOKEN_TYPES": PRICE_TYPES, "SERVICE_TIERS": SERVICE_TIERS}),
        (importer_protocol, {"USAGE_TYPES": USAGE_TYPES, "TOKEN_USAGE_TYPES": TOKEN_USAGE_TYPES}),
        (auth, {"ROLES": ROLES}),
    ],
)
def test_the_names_other_modules_offer_are_the_vocabularys(module: object, names: dict[str, object]) -> None:
    for name, words in names.items():
        assert getattr(module, name) is words


def test_every_providers_spelling_of_a_tier_is_one_of_ours() -> None:
    from importers import openai as openai_statements
    from ledger.events import normalizers
    from ledger.integrations import otlp
    from ledger.integrations.instrument import calls

    spellings = {
        "statements": TIER_OF_STATEMENT_SPELLING,
        "gemini": normalizers._GEMINI_TIERS,
        "otlp": otlp._SERVICE_TIERS,
        "instrumented calls": calls._SERVICE_TIERS,
    }
    for where, tier_of in spellings.items():
        for spelling, tier in tier_of.items():
            assert isinstance(tier, ServiceTier), (where, spelling)
    assert openai_statements._TIERS.issubset(TIER_OF_STATEMENT_SPELLING)
