"""The importer protocol: provider documents in, statement lines out.

Exception tree::

    ValueError
     └── StatementError       a document that cannot be read; names file, location and field
    RuntimeError
     ├── AdminKeyRequired     the provider answered 401/403: the key is missing or not an admin key
     └── FetchError           the provider kept failing, or answered something unusable
"""

from __future__ import annotations

import hashlib
import io
import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Final

# The statement line's usage types are the shared vocabulary's; re-exported as part of the importer protocol.
from ledger.vocabulary import TOKEN_USAGE_TYPES as TOKEN_USAGE_TYPES
from ledger.vocabulary import USAGE_TYPES as USAGE_TYPES

if TYPE_CHECKING:
    from importers.fetching import FetchClient
    from ledger.periods import Period

# Keys under which importers keep the source's own name for a line item, most specific first.
_LABEL_KEYS: Final = ("line_item", "x_UsageType", "SkuMeter", "ChargeDescription", "description", "cost_type", "object")


EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
"""Statement dates are refused outside [EARLIEST, LATEST): usage of LLM APIs began after 2000, and a date such
as 9999-12-31 or 0001-01-01 is a placeholder or a typo, not a billing period (nor one day's arithmetic away
from what a datetime can hold)."""


def implausible(moment: datetime) -> str | None:
    """Why `moment` (aware) cannot be a statement date, or None."""
    if EARLIEST <= moment < LATEST:
        return None
    return f"{moment.isoformat()} is outside the dates a statement covers ({EARLIEST.year} to {LATEST.year - 1})"


READ_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class RawDocument:
    """One statement document exactly as received: a file, or one fetched page. A file too large to hold in
    memory (a CSV export) is read from `path` as it is needed, and its `content` is empty."""

    name: str  # file name, or endpoint + query for a fetched page (never a credential)
    content: bytes
    media_type: str
    source: str
    path: Path | None = None

    @classmethod
    def from_file(cls, path: Path, *, name: str, media_type: str, source: str) -> RawDocument:
        """A document read from its file when needed, never held whole."""
        return cls(name=name, content=b"", media_type=media_type, source=source, path=path)

    def open(self) -> BinaryIO:
        """The document's bytes as a binary stream (the caller closes it)."""
        return self.path.open("rb") if self.path is not None else io.BytesIO(self.content)

    def chunks(self) -> Iterator[bytes]:
        """The document's bytes, a megabyte at a time."""
        with self.open() as stream:
            while chunk := stream.read(READ_CHUNK):
                yield chunk

    @property
    def sha256(self) -> str:
        if self.path is None:
            return hashlib.sha256(self.content).hexdigest()
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One billed or reported quantity/amount, with where it came from."""

    source: str
    provider: str
    account: str | None
    api_key_id: str | None
    model: str | None  # as the provider wrote it; aliases are resolved elsewhere
    service_tier: str | None
    period_start: datetime
    period_end: datetime
    usage_type: str
    quantity: Decimal | None
    unit: str | None
    amount: Decimal | None
    currency: str | None
    document: str  # RawDocument.name
    location: str  # "line 14" or "data[2].results[0]"
    raw: Mapping[str, Any]  # the source values the line came from, JSON-serialisable
    request_id: str | None = None
    final: bool = True

    def __post_init__(self) -> None:
        """Every rule, refused as a StatementError naming the line's document, location and field."""

        def refuse(field: str, problem: str) -> StatementError:
            return StatementError(self.document, self.location, field, problem)

        if self.usage_type not in USAGE_TYPES:
            raise refuse("usage_type", f"{self.usage_type!r} is not one of {', '.join(USAGE_TYPES)}")
        for name in ("period_start", "period_end"):
            moment: datetime = getattr(self, name)
            if moment.utcoffset() != timedelta(0):
                raise refuse(name, f"must be an aware UTC datetime, got {moment!r}")
            if name == "period_start" and (problem := implausible(moment)):
                raise refuse(name, problem)
            if name == "period_end" and (problem := implausible(moment - timedelta(microseconds=1))):
                raise refuse(name, problem)
        if self.period_end < self.period_start:
            raise refuse(
                "period_end",
                f"{self.period_end.isoformat()} is before period_start {self.period_start.isoformat()}",
            )
        for name in ("quantity", "amount"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Decimal):
                raise refuse(name, f"must be a Decimal, got {type(value).__name__}")
        if self.amount is not None and (self.currency is None or self.currency != self.currency.upper()):
            raise refuse("currency", f"an amount needs an upper-case currency, got {self.currency!r}")


@dataclass(frozen=True, slots=True)
class LineTemplate:
    """What every line produced from one source row shares; `line()` adds the measured part."""

    source: str
    provider: str
    account: str | None
    api_key_id: str | None
    model: str | None
    service_tier: str | None
    period_start: datetime
    period_end: datetime
    document: str
    location: str
    raw: Mapping[str, Any]
    request_id: str | None = None

    def line(
        self,
        usage_type: str,
        *,
        quantity: Decimal | None = None,
        unit: str | None = None,
        amount: Decimal | None = None,
        currency: str | None = None,
    ) -> StatementLine:
        return StatementLine(
            source=self.source,
            provider=self.provider,
            account=self.account,
            api_key_id=self.api_key_id,
            model=self.model,
            service_tier=self.service_tier,
            period_start=self.period_start,
            period_end=self.period_end,
            usage_type=usage_type,
            quantity=quantity,
            unit=unit,
            amount=amount,
            currency=currency,
            document=self.document,
            location=self.location,
            raw=self.raw,
            request_id=self.request_id,
        )


class StatementError(ValueError):
    """A document that cannot be read; the message names the document, location and field."""

    def __init__(self, document: str, location: str, field: str | None, problem: str) -> None:
        self.document = document
        self.location = location
        self.field = field
        self.problem = problem
        if location.startswith("line ") or not field:
            where = ": ".join(part for part in (location, field) if part)
        else:
            where = f"{location}.{field}" if location else field
        super().__init__(f"{document}: {where}: {problem}" if where else f"{document}: {problem}")


class AdminKeyRequired(RuntimeError):
    """The provider refused the key (401/403); the message names the variable to set, never the key."""

    def __init__(self, credential_env: str | None, status: int, endpoint: str) -> None:
        self.credential_env = credential_env
        self.status = status
        self.endpoint = endpoint
        variable = credential_env or "the provider's admin key"
        super().__init__(
            f"an admin key is needed: set {variable} to a key allowed to read {endpoint} "
            f"(the provider answered HTTP {status})"
        )


class FetchError(RuntimeError):
    """The provider could not be reached, kept failing, or answered something unusable."""

    def __init__(self, endpoint: str, status: int | None, problem: str) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(f"{endpoint}: {problem}")


@dataclass(frozen=True, slots=True)
class FetchContext:
    """What a fetch needs besides the period: the caller's clock and request ids to look up."""

    request_ids: tuple[str, ...] = ()  # per-request sources (OpenRouter generation ids)
    now: datetime | None = None  # when given, days that have not ended yet are not fetched


class Importer(ABC):
    """Turns one source's documents into statement lines; only `fetch` does I/O."""

    source: ClassVar[str]
    credential_env: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None

    @abstractmethod
    def identify(self, document: RawDocument) -> bool:
        """Whether this importer reads `document`; cheap and without side effects."""

    @abstractmethod
    def parse(self, document: RawDocument) -> list[StatementLine]:
        """All lines in `document`, in document order; raises StatementError on bad input."""

    def iter_lines(self, document: RawDocument) -> Iterator[StatementLine]:
        """The lines of `document` one at a time: importers of large exports read them as they go, so a file of
        any size takes bounded memory. A StatementError may come after some lines."""
        return iter(self.parse(document))

    def fetch(
        self, period: Period, *, credential: str, client: FetchClient, context: FetchContext
    ) -> Iterator[RawDocument]:
        """The raw pages covering `period`, fetched over HTTP."""
        raise NotImplementedError(f"{self.source} statements are files to import; they cannot be fetched")


def item_label(line: StatementLine) -> str:
    """The source's own name for the line item, for listing lines nobody recognised."""
    for key in _LABEL_KEYS:
        value = line.raw.get(key)
        if isinstance(value, str) and value:
            return value
    tail = line.location.rsplit(".", 1)[-1]
    if tail.isidentifier():  # a location that points at a field ("data[0].prompt_tokens")
        return tail
    return json.dumps(line.raw, sort_keys=True, default=str)


def unrecognised(lines: Iterable[StatementLine]) -> Counter[str]:
    """How many `other` lines carry each source label."""
    return Counter(item_label(line) for line in lines if line.usage_type == "other")
