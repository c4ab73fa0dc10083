"""The words every part of TokenLedger shares: token categories, statement usage types, price types, service
tiers and roles. Each is defined here once; modules import them rather than spell their own lists. Being
`StrEnum`s, the members compare equal to (and serialise as) the plain strings stored in the database and sent
over the API, so using them changes no stored or exchanged value."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class TokenCategory(StrEnum):
    """How a token is counted on both sides of a reconciliation; `output` includes reasoning."""

    UNCACHED_INPUT = "uncached_input"
    CACHED_INPUT = "cached_input"
    CACHE_WRITE_5M = "cache_write_5m"
    CACHE_WRITE_1H = "cache_write_1h"
    OUTPUT = "output"


TOKEN_CATEGORIES: Final = tuple(TokenCategory)
PROMPT_CATEGORIES: Final = (TokenCategory.UNCACHED_INPUT, TokenCategory.CACHED_INPUT)
"""Input the model read (cache writes excluded): what padding and system-prompt double counting inflate."""
CACHE_WRITE_CATEGORIES: Final = (TokenCategory.CACHE_WRITE_5M, TokenCategory.CACHE_WRITE_1H)


class UsageType(StrEnum):
    """What a billing statement line counts: tokens of a category, requests, web searches, or money alone."""

    UNCACHED_INPUT = "uncached_input"
    CACHED_INPUT = "cached_input"
    CACHE_WRITE_5M = "cache_write_5m"
    CACHE_WRITE_1H = "cache_write_1h"
    OUTPUT = "output"
    REQUESTS = "requests"
    WEB_SEARCH = "web_search"
    CREDIT = "credit"
    OTHER = "other"


USAGE_TYPES: Final = tuple(UsageType)
TOKEN_USAGE_TYPES: Final = frozenset(UsageType(category) for category in TokenCategory)
"""The usage types that count tokens: one per token category, spelt the same."""


class PriceType(StrEnum):
    """What a catalog price is per: a kind of token, a request, a web search, or a GPU hour (self-hosted)."""

    INPUT = "input"
    CACHED_INPUT = "cached_input"
    CACHE_WRITE_5M = "cache_write_5m"
    CACHE_WRITE_1H = "cache_write_1h"
    OUTPUT = "output"
    REQUEST = "request"
    WEB_SEARCH = "web_search"
    GPU_HOUR = "gpu_hour"


PRICE_TYPES: Final = tuple(PriceType)

PRICE_TYPE_OF_CATEGORY: Final = MappingProxyType(
    {
        TokenCategory.UNCACHED_INPUT: PriceType.INPUT,
        TokenCategory.CACHED_INPUT: PriceType.CACHED_INPUT,
        TokenCategory.CACHE_WRITE_5M: PriceType.CACHE_WRITE_5M,
        TokenCategory.CACHE_WRITE_1H: PriceType.CACHE_WRITE_1H,
        TokenCategory.OUTPUT: PriceType.OUTPUT,
    }
)
"""The catalog's price of each token category: uncached input is priced as `input`, the rest by their own name."""


class ServiceTier(StrEnum):
    """The processing tier a request was served (and priced) at."""

    STANDARD = "standard"
    BATCH = "batch"
    FLEX = "flex"
    PRIORITY = "priority"


SERVICE_TIERS: Final = tuple(ServiceTier)

TIER_OF_STATEMENT_SPELLING: Final = MappingProxyType(
    {
        "default": ServiceTier.STANDARD,
        "auto": ServiceTier.STANDARD,
        "scale": ServiceTier.STANDARD,
        "standard": ServiceTier.STANDARD,
        "batch": ServiceTier.BATCH,
        "flex": ServiceTier.FLEX,
        "flex_discount": ServiceTier.FLEX,
        "priority": ServiceTier.PRIORITY,
        "priority_on_demand": ServiceTier.PRIORITY,
        "fast": ServiceTier.PRIORITY,
    }
)
"""Providers' names for a tier on their statements (OpenAI's `default`/`scale`/`auto`, Anthropic's
`priority_on_demand`, …), each to ours."""


class Role(StrEnum):
    """What an API key may do: send usage (`ingest`), read findings and reports (`read`), or everything."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


ROLES: Final = tuple(Role)
REPORT_ROLES: Final = (Role.READ, Role.ADMIN)
"""The roles whose keys may sign in to the web report."""
