"""Provider usage normalizers: one request's raw `usage` object in, canonical token counts out.

Canonical counts follow the OpenTelemetry GenAI conventions: `input_tokens` is every input token
(uncached, cache reads and cache writes), `output_tokens` every billed output token (reasoning
included). Pure: plain mappings in, a frozen dataclass out, no I/O.

Exceptions::

    ValueError
    ├── UsageShapeError           usage that is not the provider's documented shape; `.path` names the field
    └── UnsupportedProviderError  no normalizer for the provider slug
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final, NamedTuple

from ledger.vocabulary import ServiceTier

_ROOT = "usage"


@dataclass(frozen=True, slots=True)
class NormalizedUsage:
    """Canonical token counts of one LLM request.

    `cache_read_input_tokens` and `cache_creation_input_tokens` are parts of `input_tokens`;
    `cache_creation_1h_input_tokens` is the part of the cache writes made with a 1 h TTL (0 when
    the provider does not say); `reasoning_tokens` is part of `output_tokens`. `reported_cost`
    is the provider's own price for the request (USD) and `service_tier` the tier the usage
    object itself reports: Anthropic's verbatim, Gemini's trafficType as standard/priority/flex.
    """

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    reasoning_tokens: int = 0
    web_search_requests: int = 0
    reported_cost: Decimal | None = None
    service_tier: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "cache_creation_1h_input_tokens",
            "reasoning_tokens",
            "web_search_requests",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if self.cache_read_input_tokens + self.cache_creation_input_tokens > self.input_tokens:
            raise ValueError(
                f"cache reads ({self.cache_read_input_tokens}) plus cache writes "
                f"({self.cache_creation_input_tokens}) exceed input_tokens ({self.input_tokens})"
            )
        if self.cache_creation_1h_input_tokens > self.cache_creation_input_tokens:
            raise ValueError(
                f"cache_creation_1h_input_tokens ({self.cache_creation_1h_input_tokens}) exceeds "
                f"cache_creation_input_tokens ({self.cache_creation_input_tokens})"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(f"reasoning_tokens ({self.reasoning_tokens}) exceeds output_tokens ({self.output_tokens})")
        cost = self.reported_cost
        if cost is not None and (not isinstance(cost, Decimal) or not cost.is_finite() or cost < 0):
            raise ValueError(f"reported_cost must be a finite non-negative Decimal, got {cost!r}")

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens billed at the plain input rate: neither read from nor written to a cache."""
        return self.input_tokens - self.cache_read_input_tokens - self.cache_creation_input_tokens


class UsageShapeError(ValueError):
    """A usage object that does not have the provider's documented shape."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class UnsupportedProviderError(ValueError):
    """A provider slug with no usage normalizer."""

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"no usage normalizer for provider {provider!r}; "
            f"supported providers: {', '.join(sorted(SUPPORTED_PROVIDERS))}"
        )
        self.provider = provider


def normalize_usage(provider: str, usage: Mapping[str, Any]) -> NormalizedUsage:
    """Canonical counts of `usage`, the raw usage object `provider` returned for one request.

    The shape within a provider (e.g. Chat Completions vs Responses API) is detected from its keys.
    Raises UnsupportedProviderError for an unknown slug and UsageShapeError, naming the JSON path,
    for anything that is not a documented shape.
    """
    read = _NORMALIZERS.get(provider)
    if read is None:
        raise UnsupportedProviderError(provider)
    if not isinstance(usage, Mapping):
        raise UsageShapeError(_ROOT, f"must be a JSON object, got {type(usage).__name__}")
    return read(_Object(usage, _ROOT)).normalized()


# --- reading raw JSON ----------------------------------------------------------------------------


class _Count(NamedTuple):
    """A token count and the JSON path it was read from."""

    value: int
    path: str


_NONE = _Count(0, "")


def _token_count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageShapeError(path, f"must be a non-negative integer, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise UsageShapeError(path, f"must be a non-negative integer, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class _Object:
    """One JSON object of a usage payload, read with errors that name the JSON path."""

    data: Mapping[str, Any]
    path: str

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def count(self, key: str) -> _Count:
        """An optional count: absent or null reads as 0."""
        value = self.data.get(key)
        return _Count(0 if value is None else _token_count(value, self.at(key)), self.at(key))

    def required(self, key: str) -> _Count:
        if key not in self.data:
            raise UsageShapeError(self.at(key), "is required but missing")
        if self.data[key] is None:
            raise UsageShapeError(self.at(key), "is required but null")
        return self.count(key)

    def child(self, key: str) -> _Object:
        """A nested object: absent or null reads as an empty object."""
        value = self.data.get(key)
        if value is None:
            return _Object({}, self.at(key))
        if not isinstance(value, Mapping):
            raise UsageShapeError(self.at(key), f"must be a JSON object, got {type(value).__name__}")
        return _Object(value, self.at(key))

    def children(self, key: str) -> list[_Object]:
        """A nested array of objects: absent or null reads as empty."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise UsageShapeError(self.at(key), f"must be a JSON array, got {type(value).__name__}")
        items = []
        for index, item in enumerate(value):
            path = f"{self.at(key)}[{index}]"
            if not isinstance(item, Mapping):
                raise UsageShapeError(path, f"must be a JSON object, got {type(item).__name__}")
            items.append(_Object(item, path))
        return items

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        raise UsageShapeError(self.at(key), f"must be a string, got {value!r}")

    def money(self, key: str) -> Decimal | None:
        """A JSON number of money; floats go through `str` so 0.1 stays Decimal('0.1')."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise UsageShapeError(self.at(key), f"must be a number, got {value!r}")
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not amount.is_finite() or amount < 0:
            raise UsageShapeError(self.at(key), f"must be a finite non-negative number, got {value!r}")
        return amount


def _first_present(*candidates: tuple[_Object, str]) -> _Count:
    """The first of several alternative fields that is present (0 at the first path if none is)."""
    for obj, key in candidates:
        if obj.has(key):
            return obj.count(key)
    obj, key = candidates[0]
    return _Count(0, obj.at(key))


def _ensure_at_most(part: _Count, limit: int, limit_desc: str) -> None:
    if part.value > limit:
        raise UsageShapeError(part.path, f"{part.value} exceeds {limit_desc}")


# --- canonical assembly ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parts:
    """Counts read from a raw usage object, with their paths, before the invariants are checked.

    `input_total` includes cache reads and writes (shapes that exclude them add them first).
    """

    input_total: _Count
    output: _Count
    cache_read: _Count = _NONE
    cache_write: _Count = _NONE
    cache_write_1h: _Count = _NONE
    reasoning: _Count = _NONE
    web_search: _Count = _NONE
    reported_cost: Decimal | None = None
    service_tier: str | None = None

    def normalized(self) -> NormalizedUsage:
        total = self.input_total
        _ensure_at_most(self.cache_read, total.value, f"the input total {total.value} ({total.path})")
        _ensure_at_most(
            self.cache_write,
            total.value - self.cache_read.value,
            f"the input total {total.value} ({total.path}) less {self.cache_read.value} cache reads",
        )
        _ensure_at_most(self.cache_write_1h, self.cache_write.value, f"the cache writes {self.cache_write.value}")
        _ensure_at_most(self.reasoning, self.output.value, f"the output total {self.output.value} ({self.output.path})")
        return NormalizedUsage(
            input_tokens=total.value,
            output_tokens=self.output.value,
            cache_read_input_tokens=self.cache_read.value,
            cache_creation_input_tokens=self.cache_write.value,
            cache_creation_1h_input_tokens=self.cache_write_1h.value,
            reasoning_tokens=self.reasoning.value,
            web_search_requests=self.web_search.value,
            reported_cost=self.reported_cost,
            service_tier=self.service_tier,
        )


def _plus_cache(uncached: _Count, cache_read: _Count, cache_write: _Count) -> _Count:
    """The input total of shapes whose input count excludes cache reads and writes."""
    return _Count(uncached.value + cache_read.value + cache_write.value, uncached.path)


# --- OpenAI and OpenAI-compatible shapes -----------------------------------------------------------


def _openai_chat(usage: _Object, *, completion_required: bool = True) -> _Parts:
    """Chat Completions `usage`: cached and cache-write tokens are inside prompt_tokens, reasoning
    inside completion_tokens (openai/openai-python src/openai/types/completion_usage.py)."""
    prompt = usage.child("prompt_tokens_details")
    completion = usage.required("completion_tokens") if completion_required else usage.count("completion_tokens")
    return _Parts(
        input_total=usage.required("prompt_tokens"),
        output=completion,
        cache_read=prompt.count("cached_tokens"),
        cache_write=prompt.count("cache_write_tokens"),
        reasoning=usage.child("completion_tokens_details").count("reasoning_tokens"),
    )


def _openai_responses(usage: _Object) -> _Parts:
    """Responses API `usage`, same inclusion rules as Chat Completions
    (openai/openai-python src/openai/types/responses/response_usage.py). Its cache-write TTLs
    (30 min, 12 h) are not 1 h, so no write counts as a 1 h write."""
    details = usage.child("input_tokens_details")
    return _Parts(
        input_total=usage.required("input_tokens"),
        output=usage.required("output_tokens"),
        cache_read=details.count("cached_tokens"),
        cache_write=details.count("cache_write_tokens"),
        reasoning=usage.child("output_tokens_details").count("reasoning_tokens"),
    )


def _lenient_chat(usage: _Object) -> _Parts:
    """Mistral and vLLM: completion_tokens is optional (mistralai/client-python models/usageinfo.py;
    vllm-project/vllm vllm/entrypoints/openai/engine/protocol.py `UsageInfo`, null for embeddings).
    Neither reports cache writes; vLLM fills cached_tokens only with --enable-prompt-tokens-details."""
    return _openai_chat(usage, completion_required=False)


def _deepseek_chat(usage: _Object) -> _Parts:
    """DeepSeek: prompt_tokens = prompt_cache_hit_tokens + prompt_cache_miss_tokens, and the flat
    fields are authoritative; recent responses repeat the hits as prompt_tokens_details.cached_tokens,
    which must not be added again (api-docs.deepseek.com/guides/kv_cache; live sample in
    toiotech.apifox.cn/deepseek-reasoner-398141713e0)."""
    parts = _openai_chat(usage)
    hit_key, miss_key = "prompt_cache_hit_tokens", "prompt_cache_miss_tokens"
    if not usage.has(hit_key) and not usage.has(miss_key):
        return parts
    for key in (hit_key, miss_key):
        if not usage.has(key):
            other = miss_key if key == hit_key else hit_key
            raise UsageShapeError(usage.at(key), f"is missing while {other} is present")
    hit, miss = usage.count(hit_key), usage.count(miss_key)
    prompt = parts.input_total
    if hit.value + miss.value != prompt.value:
        raise UsageShapeError(
            miss.path,
            f"{hit_key} ({hit.value}) + {miss_key} ({miss.value}) != prompt_tokens ({prompt.value})",
        )
    return replace(parts, cache_read=hit)


def _qwen_chat(usage: _Object) -> _Parts:
    """Qwen / Alibaba Model Studio compatible mode: cached_tokens and cache_creation_input_tokens
    both sit in prompt_tokens_details and inside prompt_tokens; explicit-cache writes have a 5 min
    TTL (alibabacloud.com/help/en/model-studio/user-guide/context-cache)."""
    creation = usage.child("prompt_tokens_details").count("cache_creation_input_tokens")
    return replace(_openai_chat(usage), cache_write=creation)


def _openrouter_chat(usage: _Object) -> _Parts:
    """OpenRouter `ChatUsage`: OpenAI chat shape plus `cost` (USD credits) and
    server_tool_use_details.web_search_requests (OpenRouterTeam/typescript-sdk src/models/chatusage.ts;
    openrouter.ai/docs/use-cases/usage-accounting: prompt_tokens includes cache_write_tokens)."""
    return replace(
        _openai_chat(usage),
        web_search=usage.child("server_tool_use_details").count("web_search_requests"),
        reported_cost=usage.money("cost"),
    )


def _openrouter_responses(usage: _Object) -> _Parts:
    """OpenRouter `OpenResponsesUsage`: Responses shape plus `cost`
    (openrouter.ai/docs/agent-sdk/typescript/models/openresponsesusage)."""
    return replace(_openai_responses(usage), reported_cost=usage.money("cost"))


def _litellm_chat(usage: _Object) -> _Parts:
    """LiteLLM's unified `Usage`: prompt_tokens includes cache reads and writes for every backend;
    writes appear as prompt_tokens_details.cache_write_tokens / cache_creation_tokens or top-level
    cache_creation_input_tokens, with the TTL split in cache_creation_token_details
    (BerriAI/litellm litellm/types/utils.py `Usage`, `PromptTokensDetailsWrapper`;
    litellm/llms/anthropic/chat/transformation.py `calculate_usage`)."""
    details = usage.child("prompt_tokens_details")
    return replace(
        _openai_chat(usage),
        cache_read=_first_present((details, "cached_tokens"), (usage, "cache_read_input_tokens")),
        cache_write=_first_present(
            (details, "cache_write_tokens"),
            (details, "cache_creation_tokens"),
            (usage, "cache_creation_input_tokens"),
        ),
        cache_write_1h=details.child("cache_creation_token_details").count("ephemeral_1h_input_tokens"),
        web_search=_first_present(
            (usage.child("server_tool_use"), "web_search_requests"), (details, "web_search_requests")
        ),
    )


def _perplexity_chat(usage: _Object) -> _Parts:
    """Perplexity Sonar chat: OpenAI chat shape. Deep-research responses add top-level
    citation_tokens and reasoning_tokens that are priced on their own [3P: api-evangelist/perplexity
    json-schema UsageInfo]; whether they are inside prompt/completion_tokens is undocumented, so
    they are refused rather than guessed."""
    for key in ("citation_tokens", "reasoning_tokens"):
        if usage.count(key).value:
            raise UsageShapeError(
                usage.at(key),
                "Perplexity deep-research counts are not part of the canonical usage; cannot normalize",
            )
    return _openai_chat(usage)


# --- Anthropic -------------------------------------------------------------------------------------


def _anthropic_messages(usage: _Object) -> _Parts:
    """Anthropic Messages `usage` (anthropics/anthropic-sdk-python src/anthropic/types/usage.py,
    message_delta_usage.py): input_tokens EXCLUDES cache reads and writes; output_tokens is the
    billed total including thinking; message_delta usage is cumulative, not an increment."""
    if not usage.has("input_tokens"):
        raise UsageShapeError(
            usage.at("input_tokens"),
            "is required; a streaming message_delta usage without input_tokens must first be "
            "merged with the message_start usage",
        )
    cache_read = usage.count("cache_read_input_tokens")
    cache_write, cache_write_1h = _anthropic_cache_writes(usage)
    output = usage.required("output_tokens")
    thinking = usage.child("output_tokens_details").count("thinking_tokens")
    # thinking_tokens "may differ ... by a small number of tokens"; output_tokens is authoritative.
    return _Parts(
        input_total=_plus_cache(usage.required("input_tokens"), cache_read, cache_write),
        output=output,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_1h=cache_write_1h,
        reasoning=_Count(min(thinking.value, output.value), thinking.path),
        web_search=usage.child("server_tool_use").count("web_search_requests"),
        service_tier=usage.text("service_tier"),
    )


def _anthropic_cache_writes(usage: _Object) -> tuple[_Count, _Count]:
    """All cache writes and the 1 h part; cache_creation's TTL split sums to cache_creation_input_tokens."""
    total = usage.count("cache_creation_input_tokens")
    split = usage.child("cache_creation")
    hour = split.count("ephemeral_1h_input_tokens")
    if not split.data:
        return total, hour
    five = split.count("ephemeral_5m_input_tokens")
    if usage.has("cache_creation_input_tokens") and five.value + hour.value != total.value:
        raise UsageShapeError(
            split.path,
            f"ephemeral_5m_input_tokens ({five.value}) + ephemeral_1h_input_tokens ({hour.value}) "
            f"!= cache_creation_input_tokens ({total.value})",
        )
    path = total.path if usage.has("cache_creation_input_tokens") else split.path
    return _Count(five.value + hour.value, path), hour


# --- Google Gemini -----------------------------------------------------------------------------------

_GEMINI_FIELDS = {
    "promptTokenCount": "prompt_token_count",
    "cachedContentTokenCount": "cached_content_token_count",
    "candidatesTokenCount": "candidates_token_count",
    "thoughtsTokenCount": "thoughts_token_count",
    "toolUsePromptTokenCount": "tool_use_prompt_token_count",
    "totalTokenCount": "total_token_count",
    "trafficType": "traffic_type",
}
# Vertex trafficType values billed per token, as service tiers (TrafficType enum of the @google/genai SDK;
# reference A5). PROVISIONED_THROUGHPUT is not billed per token and has no tier here.
_GEMINI_TIERS: Final = {
    "ON_DEMAND": ServiceTier.STANDARD,
    "ON_DEMAND_PRIORITY": ServiceTier.PRIORITY,
    "ON_DEMAND_FLEX": ServiceTier.FLEX,
}


def _gemini_key(meta: _Object, camel: str) -> str:
    """The key `meta` uses for a field: wire JSON is camelCase, the Python SDK snake_case."""
    snake = _GEMINI_FIELDS[camel]
    if meta.has(camel) and meta.has(snake):
        raise UsageShapeError(meta.at(snake), f"duplicates {camel}; send one spelling")
    return snake if meta.has(snake) else camel


def _gemini(usage: _Object) -> _Parts:
    """Gemini `usageMetadata` (googleapis/python-genai google/genai/types.py
    `GenerateContentResponseUsageMetadata`): promptTokenCount includes cached content;
    toolUsePromptTokenCount is extra input; thoughtsTokenCount is outside candidatesTokenCount and
    totalTokenCount = prompt + candidates + toolUsePrompt + thoughts. Omitted fields are 0.
    Accepts the usageMetadata object or a whole response carrying it."""
    meta = usage
    for wrapper in ("usageMetadata", "usage_metadata"):
        if wrapper in usage.data:
            meta = usage.child(wrapper)
    prompt_key = _gemini_key(meta, "promptTokenCount")
    if not meta.has(prompt_key):
        raise UsageShapeError(meta.at("promptTokenCount"), "is required but missing (or prompt_token_count)")
    prompt = meta.count(prompt_key)
    cached = meta.count(_gemini_key(meta, "cachedContentTokenCount"))
    _ensure_at_most(cached, prompt.value, f"promptTokenCount {prompt.value} ({prompt.path})")
    tool_use = meta.count(_gemini_key(meta, "toolUsePromptTokenCount"))
    candidates = meta.count(_gemini_key(meta, "candidatesTokenCount"))
    thoughts = meta.count(_gemini_key(meta, "thoughtsTokenCount"))
    total_key = _gemini_key(meta, "totalTokenCount")
    output = _Count(candidates.value + thoughts.value, candidates.path)
    if (
        thoughts.value
        and meta.has(total_key)
        and meta.count(total_key).value == prompt.value + candidates.value + tool_use.value
    ):
        # The total shows candidates already counting the thoughts, as the Gemini API reported in
        # 2025 (BerriAI/litellm PR #10141 review; simonw/llm-gemini#75): count them once.
        _ensure_at_most(thoughts, candidates.value, f"candidatesTokenCount {candidates.value}, which includes them")
        output = candidates
    return _Parts(
        input_total=_Count(prompt.value + tool_use.value, prompt.path),
        output=output,
        cache_read=cached,
        reasoning=thoughts,
        service_tier=_GEMINI_TIERS.get(meta.text(_gemini_key(meta, "trafficType")) or ""),
    )


# --- Amazon Bedrock ---------------------------------------------------------------------------------

_BEDROCK_TTLS = ("5m", "1h")


def _bedrock_converse(usage: _Object) -> _Parts:
    """Bedrock Converse `TokenUsage` (botocore data/bedrock-runtime service-2.json): inputTokens
    EXCLUDES cache reads and writes (docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html,
    quoted in crmne/ruby_llm PR #832); cacheDetails splits the writes by TTL."""
    cache_read = usage.count("cacheReadInputTokens")
    cache_write, cache_write_1h = _bedrock_cache_writes(usage)
    return _Parts(
        input_total=_plus_cache(usage.required("inputTokens"), cache_read, cache_write),
        output=usage.required("outputTokens"),
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_1h=cache_write_1h,
    )


def _bedrock_cache_writes(usage: _Object) -> tuple[_Count, _Count]:
    total = usage.count("cacheWriteInputTokens")
    details = usage.children("cacheDetails")
    by_ttl = dict.fromkeys(_BEDROCK_TTLS, 0)
    for detail in details:
        ttl = detail.text("ttl")
        if ttl not in by_ttl:
            raise UsageShapeError(detail.at("ttl"), f"must be one of {', '.join(_BEDROCK_TTLS)}, got {ttl!r}")
        by_ttl[ttl] += detail.required("inputTokens").value
    hour = _Count(by_ttl["1h"], usage.at("cacheDetails"))
    if not details:
        return total, hour
    split_sum = sum(by_ttl.values())
    if usage.has("cacheWriteInputTokens") and split_sum != total.value:
        raise UsageShapeError(
            usage.at("cacheDetails"),
            f"inputTokens sum to {split_sum}, not cacheWriteInputTokens ({total.value})",
        )
    return _Count(split_sum, total.path), hour


# --- dispatch ---------------------------------------------------------------------------------------

_Reader = Callable[[_Object], _Parts]


def _by_keys(provider: str, *shapes: tuple[tuple[str, ...], _Reader, str]) -> _Reader:
    """A reader that picks the shape whose marker keys the usage object has."""

    def read(usage: _Object) -> _Parts:
        for keys, reader, _ in shapes:
            if any(key in usage.data for key in keys):
                return reader(usage)
        expected = " or ".join(f"{'/'.join(keys)} ({name})" for keys, _, name in shapes)
        raise UsageShapeError(usage.path, f"matches no {provider} usage shape: expected {expected}")

    return read


_CHAT = (("prompt_tokens",), _openai_chat, "Chat Completions")
_RESPONSES = (("input_tokens",), _openai_responses, "Responses API")
_ANTHROPIC = (("input_tokens", "output_tokens"), _anthropic_messages, "Anthropic Messages")
_GEMINI = (
    ("usageMetadata", "usage_metadata", "promptTokenCount", "prompt_token_count"),
    _gemini,
    "Gemini usageMetadata",
)

_NORMALIZERS: dict[str, _Reader] = {
    **{slug: _by_keys(slug, _CHAT, _RESPONSES) for slug in ("openai", "azure", "together", "groq", "fireworks", "xai")},
    "anthropic": _by_keys("anthropic", _ANTHROPIC),
    **{slug: _by_keys(slug, _GEMINI) for slug in ("google", "gemini")},
    # Claude on Vertex AI and Bedrock InvokeModel answer in the Anthropic Messages shape: the
    # Anthropic SDK's Vertex and Bedrock clients reuse its Messages resource and Usage type
    # (anthropics/anthropic-sdk-python src/anthropic/lib/vertex, lib/bedrock).
    "vertex": _by_keys("vertex", _GEMINI, _ANTHROPIC),
    "bedrock": _by_keys("bedrock", (("inputTokens",), _bedrock_converse, "Converse TokenUsage"), _ANTHROPIC),
    "deepseek": _by_keys("deepseek", (("prompt_tokens",), _deepseek_chat, "Chat Completions")),
    **{
        slug: _by_keys(slug, (("prompt_tokens",), _qwen_chat, "compatible-mode Chat Completions"))
        for slug in ("qwen", "dashscope", "alibaba")
    },
    "mistral": _by_keys("mistral", (("prompt_tokens",), _lenient_chat, "Chat Completions")),
    "vllm": _by_keys("vllm", (("prompt_tokens",), _lenient_chat, "Chat Completions"), _RESPONSES),
    "openrouter": _by_keys(
        "openrouter",
        (("prompt_tokens",), _openrouter_chat, "Chat Completions"),
        (("input_tokens",), _openrouter_responses, "Responses API"),
    ),
    "litellm": _by_keys("litellm", (("prompt_tokens",), _litellm_chat, "Chat Completions"), _RESPONSES),
    "perplexity": _by_keys("perplexity", (("prompt_tokens",), _perplexity_chat, "Chat Completions"), _RESPONSES),
}

SUPPORTED_PROVIDERS: frozenset[str] = frozenset(_NORMALIZERS)
