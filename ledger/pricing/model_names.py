"""Canonical model names: one spelling per model, whatever gateway, snapshot or cloud reported it.

`normalize_model_name` is pure and total (any string in, a lower-case string out). It removes, in order:

1. Everything up to the last `/`: gateway routes (`openrouter/openai/…`, `anthropic/…`, `bedrock/converse/…`,
   `vertex_ai/…`, `azure/…`), Vertex publisher paths (`projects/p/locations/l/publishers/google/models/…`)
   and Bedrock ARNs (`arn:aws:bedrock:…:inference-profile/<id>`, `…::foundation-model/<id>`).
2. Bedrock model ids: the geography prefix of cross-region inference profiles (`us.`, `eu.`, `apac.`,
   `global.`, …), the vendor prefix (`anthropic.`, `meta.`, …), the revision (`:0`) and a `-v1` that follows
   a date (`…-20250929-v1:0`); a `-v2` that is part of the name (`titan-embed-text-v2:0`) stays.
3. Dated snapshots: `-YYYY-MM-DD` (OpenAI, Qwen: `gpt-5.4-mini-2026-03-17`), `-YYYYMMDD` (Anthropic:
   `claude-haiku-4-5-20251001`, platform.claude.com/docs/en/models/haiku-4-5/overview), `@YYYYMMDD` and
   `@default` (Claude on Vertex: `claude-sonnet-4-5@20250929`, `claude-sonnet-4-6@default`), and the `[1m]`
   tag Claude Code puts on 1M-context aliases (the request's input band, not the name, prices long context).
   Preview tags such as `-preview-09-2025` are kept: previews are priced apart from the GA model.
4. Version spelling, per model family, following the spelling of the vendor's own API ids:
   `claude-*` uses dashes (`claude-sonnet-4.6` → `claude-sonnet-4-6`); `gpt-*`, `gemini-*` and `qwen*` use dots
   (`gpt-5-4-mini` → `gpt-5.4-mini`, `gemini-2-5-pro` → `gemini-2.5-pro`, `qwen3-8-max` → `qwen3.8-max`).
   Only a single digit on each side of the separator is rewritten, so `gpt-4-0613` and `qwen3-32b` survive.

5. Billing meter labels (a name with spaces, as cloud exports write SKUs: `Gemini 2.5 Flash Text Input`,
   `gpt-4.1 Input global Tokens`, `Claude Sonnet 4.5 input tokens in US East`): the words that describe the
   charge rather than the model (input, output, cached, text, tokens, deployment scope, region) are dropped
   and the rest joined with dashes (`gemini-2.5-flash`), so every meter of one model names the same model.

6. Cloud billing labels (`billing_label_models`): AWS usage types (`USE1-Claude4.5Sonnet-input-tokens`,
   `USW2-NovaPro-output-tokens`, cache read/write variants), Bedrock ARNs in a FOCUS `ResourceId`
   (`…:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0`), product names such as
   `Claude Sonnet 4.5 (Amazon Bedrock Edition)`, and SKU meter / charge description text. Where several
   columns of one statement line name the model, `first_known` takes the first that resolves to a known
   (priced) model, so a label nobody can price never hides the column that names the model.

`-latest` aliases are not resolved here: they re-point over time. The price catalog resolves the ones
genai-prices' matching rules know (`mistral-large-latest` → `mistral-large`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

# Gateway or route prefix (first path segment) → the provider that bills the call.
_PREFIX_PROVIDERS: dict[str, str] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "azure": "azure",
    "azure_ai": "azure",
    "bedrock": "bedrock",
    "vertex_ai": "google",
    "gemini": "google",
    "google": "google",
    "deepseek": "deepseek",
    "mistral": "mistral",
    "mistralai": "mistral",
    "dashscope": "qwen",
    "qwen": "qwen",
    "alibaba": "qwen",
    "vllm": "vllm",
    "models": "google",  # Gemini API resource names: `models/gemini-2.5-pro`
}
_GATEWAYS = frozenset({"openrouter"})

_BEDROCK_GEO = re.compile(r"^(?:us|eu|apac|global|regional|jp|au|ca|us-gov)\.")
_BEDROCK_VENDOR = re.compile(r"^(?:anthropic|meta|amazon|mistral|deepseek|openai|qwen|cohere|ai21)\.")
_BEDROCK_REVISION = re.compile(r":\d+$")
_BEDROCK_VERSION = re.compile(r"(?<=-20\d{6})-v\d+$|-v1$")
_SNAPSHOT = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-20\d{6}|@20\d{6}|@default)$")
_CONTEXT_TAG = re.compile(r"\[1m\]$")
_DOTTED_FAMILY = re.compile(r"^(?:gpt-|gemini-|qwen)")
_DASH_BETWEEN_DIGITS = re.compile(r"(?<=\d)-(?=\d(?:-|$))")
_DOT_BETWEEN_DIGITS = re.compile(r"(?<=\d)\.(?=\d)")
_METER_WORDS = frozenset(
    {
        "input",
        "output",
        "cached",
        "cache",
        "text",
        "tokens",
        "token",
        "predictions",
        "prediction",
        "global",
        "regional",
        "datazone",
        "data",
        "batch",
        "usage",
        "in",
        "for",
        "read",
        "write",
        "audio",
        "image",
        "long",
        "context",
        "thinking",
        "reasoning",
    }
)


@lru_cache(maxsize=65536)
def normalize_model_name(provider: str, raw: str) -> str:
    """The canonical spelling of `raw`. For provider `bedrock` the `-v1:0` suffix is dropped even when the id
    carries no vendor prefix; otherwise the name alone decides."""
    name = raw.strip().lower().rsplit("/", 1)[-1]
    if " " in name:
        name = _meter_model(name)
    unprefixed = _BEDROCK_VENDOR.sub("", _BEDROCK_GEO.sub("", name))
    if unprefixed != name or provider.strip().lower() == "bedrock":
        name = _BEDROCK_VERSION.sub("", _BEDROCK_REVISION.sub("", unprefixed))
    name = _SNAPSHOT.sub("", _CONTEXT_TAG.sub("", name))
    if name.startswith("claude"):
        return _DOT_BETWEEN_DIGITS.sub("-", name)
    if _DOTTED_FAMILY.match(name):
        return _DASH_BETWEEN_DIGITS.sub(".", name)
    return name


def _meter_model(label: str) -> str:
    """The model part of a billing meter label: the words before the first word that describes the charge."""
    words = label.replace(" - ", " ").split()
    kept = []
    for word in words:
        if word in _METER_WORDS:
            break
        kept.append(word)
    return "-".join(kept) if kept else "-".join(words)


def provider_of_model(raw: str) -> str | None:
    """The billing provider named by a gateway prefix, Bedrock ARN/profile or Vertex path; None if unprefixed."""
    name = raw.strip().lower()
    if name.startswith("arn:aws:bedrock:"):
        return "bedrock"
    segments = name.split("/")
    if len(segments) > 1:
        if "publishers" in segments:
            publisher = segments[segments.index("publishers") + 1 : segments.index("publishers") + 2]
            return _PREFIX_PROVIDERS.get(publisher[0], publisher[0]) if publisher and publisher[0] else None
        first = segments[0]
        if first in _GATEWAYS:
            return _PREFIX_PROVIDERS.get(segments[1], segments[1]) if len(segments) > 2 else first
        return _PREFIX_PROVIDERS.get(first)
    if _BEDROCK_VENDOR.match(_BEDROCK_GEO.sub("", name)):
        return "bedrock"
    return None


# AWS usage types: `<REGION>-<model label>-<token type>`; the token-type suffixes from "Understanding your Amazon
# Bedrock Cost and Usage Report data" (https://docs.aws.amazon.com/bedrock/latest/userguide/cost-mgmt-understanding-cur-data.html).
AWS_TOKEN_SUFFIX = re.compile(
    r"-(?:cache-read-input-token-count|cache-write-input-token-count|mantle-input-tokens(?:-.*)?"
    r"|mantle-output-tokens(?:-.*)?|input-tokens|output-tokens)$",
    re.IGNORECASE,
)
AWS_REGION_PREFIX = re.compile(r"^[A-Z]{2,4}\d{0,2}-")
_LABEL_WORD = re.compile(r"\d+(?:\.\d+)*(?:[bBkKmM](?![a-z]))?|[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_CLAUDE_FAMILIES = frozenset({"sonnet", "haiku", "opus"})
_BEDROCK_ARN = re.compile(r"^arn:aws[\w-]*:bedrock:[^:]*:[^:]*:(?:foundation-model|inference-profile)/(?P<model>.+)$")
_EDITION = re.compile(r"\s*\((?:amazon bedrock|bedrock|vertex ai|azure)[^)]*\)\s*$", re.IGNORECASE)


def model_of_aws_usage_type(usage_type: str) -> str | None:
    """The model an AWS usage type names, spelled as the vendor's API does: `USE1-Claude4.5Sonnet-input-tokens`
    → `claude-sonnet-4-5`, `USW2-Claude3.5Haiku-output-tokens` → `claude-3-5-haiku`, `USE1-NovaPro-input-tokens`
    → `nova-pro`, `EUC1-Llama3.3-70B-Instruct-output-tokens` → `llama-3.3-70b-instruct`. None when the usage
    type is not a token usage type."""
    if not AWS_TOKEN_SUFFIX.search(usage_type):
        return None
    label = AWS_REGION_PREFIX.sub("", AWS_TOKEN_SUFFIX.sub("", usage_type.strip()))
    words = [word.lower() for word in _LABEL_WORD.findall(label)]
    if not words:
        return None
    if words[0] == "claude":
        family = next((word for word in words if word in _CLAUDE_FAMILIES), None)
        version = next((word for word in words if word[0].isdigit()), None)
        if family and version:
            dashed = version.replace(".", "-")
            # Claude 4 and later put the family first (claude-sonnet-4-5); Claude 3.x after (claude-3-5-haiku).
            return f"claude-{family}-{dashed}" if int(version.split(".")[0]) >= 4 else f"claude-{dashed}-{family}"
    if words[0] == "llama" and len(words) > 1 and words[1][0].isdigit():
        # Bedrock spells Meta's models `llama3-3-70b-instruct` (meta.llama3-3-70b-instruct-v1:0).
        words = [f"llama{words[1].replace('.', '-')}", *words[2:]]
    return "-".join(words)


def billing_label_models(
    *,
    usage_type: str | None = None,
    resource_id: str | None = None,
    product: str | None = None,
    texts: Iterable[str | None] = (),
) -> list[str]:
    """The model names one statement line's columns give, in the order they are trusted: the AWS usage type's
    label, the Bedrock ARN of the resource, a product named after a model (`ServiceName` "Claude Sonnet 4.5
    (Amazon Bedrock Edition)", without the suffix; a plain "Amazon Bedrock" names no model), then meter texts
    (`SkuMeter`, `ChargeDescription`, …)."""
    names: list[str] = []
    if usage_type and (label := model_of_aws_usage_type(usage_type)):
        names.append(label)  # first: every token line of one model carries it, the ARN only some
    arn = _BEDROCK_ARN.match(resource_id or "")
    if arn:
        names.append(arn["model"])
    if product and _EDITION.search(product):
        names.append(_EDITION.sub("", product).strip())
    names.extend(text.strip() for text in texts if text and text.strip())
    return [name for name in dict.fromkeys(names) if name]


def first_known(provider: str, names: Iterable[str], resolve: Callable[[str, str], str | None]) -> str | None:
    """The first of `names` that `resolve` (the price catalog's) knows for `provider`, else the first name."""
    listed = list(names)
    return next((name for name in listed if resolve(provider, name) is not None), listed[0] if listed else None)
