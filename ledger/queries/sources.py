"""What the reports read from the database, always scoped to one tenant: drift rows, findings, runs,
statement imports, the hourly rollup and daily statement totals. Every function here takes a session and
returns plain data (frozen dataclasses, or pandas frames of day series); the computations live in the
pure modules beside this one. Pages never read raw usage events."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Date, cast, func, literal_column, select, text
from sqlalchemy.orm import Session

from ledger.periods import Period, day_start
from ledger.pricing.model_names import normalize_model_name
from ledger.pricing.prices import PriceCatalog, PriceRow
from ledger.queries import finding_sources, money_over_time
from ledger.queries.logged_days import TOKENS_OF_CATEGORY, load_logged_days
from ledger.queries.usage import MAX_PAGE, EventFilter, list_events
from ledger.reconcile.drift_explanation import SERVED_BY_ANOTHER
from ledger.reconcile.matching import counted_figures
from ledger.reconcile.model import DIMENSIONS, LoggedDay
from ledger.sink import latency
from ledger.storage.tables import (
    AlertChannel,
    AlertOutbox,
    DriftRow,
    Finding,
    ReconciliationRun,
    StatementDocument,
    StatementImport,
    StatementLine,
    Tenant,
    UsageDaily,
    UsageHourly,
)
from ledger.vocabulary import (
    PRICE_TYPE_OF_CATEGORY,
    TOKEN_CATEGORIES,
    TOKEN_USAGE_TYPES,
    ServiceTier,
    UsageType,
)


@dataclass(frozen=True, slots=True)
class DriftLine:
    """One drift row: logged against billed for a provider × account × model over the period."""

    provider: str
    account: str
    model: str
    logged_tokens: int
    billed_tokens: int | None
    logged_by_category: Mapping[str, Any]
    billed_by_category: Mapping[str, Any]
    expected_cost: Decimal | None
    billed_cost: Decimal | None
    difference: Decimal | None
    percent: Decimal | None
    currency: str
    computed_at: datetime
    note: str | None = None  # e.g. "probably the same model, alias it"


@dataclass(frozen=True, slots=True)
class RunLine:
    """One reconciliation run."""

    id: int
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: Mapping[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True)
class ImportLine:
    """The latest import of one statement source."""

    source: str
    period_start: datetime
    period_end: datetime
    imported_at: datetime
    documents: int
    lines: int
    unknown_lines: int


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Rollup sums of one provider × requested model × served model over a period."""

    provider: str
    request_model: str
    response_model: str
    sums: Mapping[str, int]
    latency_histogram: tuple[int, ...]
    ttft_histogram: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    """One alert in the outbox, with its channel's name."""

    id: int
    channel: str
    kind: str
    topic: str
    title: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


USAGE_SUMS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "error_rate_limit",
    "error_timeout",
    "error_server_error",
    "error_invalid_request",
    "error_auth",
    "error_content_filter",
    "error_other",
    "finish_length",
    "finish_missing",
    "streamed",
    "streamed_missing_finish",
    "truncated_below_max",
)


def tenant_name(session: Session, tenant_id: int) -> str:
    return session.scalar(select(Tenant.name).where(Tenant.id == tenant_id)) or str(tenant_id)


def drift_lines(session: Session, tenant_id: int, period: Period) -> list[DriftLine]:
    """The drift rows the reconciler stored for the period, by provider, account and model."""
    query = (
        select(DriftRow)
        .where(
            DriftRow.tenant_id == tenant_id, DriftRow.period_start >= period.start, DriftRow.period_start < period.end
        )
        .order_by(DriftRow.provider, DriftRow.account, DriftRow.model)
    )
    return [
        DriftLine(
            provider=row.provider,
            account=row.account,
            model=row.model,
            logged_tokens=row.logged_tokens,
            billed_tokens=row.billed_tokens,
            logged_by_category=row.logged_by_category,
            billed_by_category=row.billed_by_category,
            expected_cost=row.expected_cost,
            billed_cost=row.billed_cost,
            difference=row.difference,
            percent=row.percent,
            currency=row.currency,
            computed_at=row.computed_at,
            note=row.note,
        )
        for row in session.scalars(query)
    ]


def latest_runs(session: Session, tenant_id: int, period: Period, *, limit: int = 10) -> list[RunLine]:
    """The period's reconciliation runs, newest first."""
    query = (
        select(ReconciliationRun)
        .where(
            ReconciliationRun.tenant_id == tenant_id,
            ReconciliationRun.period_start >= period.start,
            ReconciliationRun.period_start < period.end,
        )
        .order_by(ReconciliationRun.started_at.desc(), ReconciliationRun.id.desc())
        .limit(limit)
    )
    return [
        RunLine(
            id=run.id,
            trigger=run.trigger,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=run.status,
            counts=run.counts,
            error=run.error,
        )
        for run in session.scalars(query)
    ]


def latest_imports(session: Session, tenant_id: int, period: Period | None = None) -> list[ImportLine]:
    """Per statement source, its latest import (of a period overlapping `period`, when given)."""
    query = select(StatementImport).where(StatementImport.tenant_id == tenant_id)
    if period is not None:
        query = query.where(StatementImport.period_start < period.end, StatementImport.period_end > period.start)
    query = query.order_by(StatementImport.source, StatementImport.imported_at.desc()).distinct(StatementImport.source)
    return [
        ImportLine(
            source=row.source,
            period_start=row.period_start,
            period_end=row.period_end,
            imported_at=row.imported_at,
            documents=row.documents,
            lines=row.lines,
            unknown_lines=row.unknown_lines,
        )
        for row in session.scalars(query)
    ]


def finding_counts(session: Session, tenant_id: int, period: Period) -> list[tuple[str, str, str, str, str, int]]:
    """(provider, account, model, severity, status, count) of the findings overlapping the period; a scope
    dimension a finding leaves open is ''."""
    query = (
        select(
            func.coalesce(Finding.provider, ""),
            func.coalesce(Finding.account, ""),
            func.coalesce(Finding.model, ""),
            Finding.severity,
            Finding.status,
            cast(func.count(), BigInteger),
        )
        .where(Finding.tenant_id == tenant_id, Finding.period_start < period.end, Finding.period_end > period.start)
        .group_by(Finding.provider, Finding.account, Finding.model, Finding.severity, Finding.status)
    )
    return [(row[0], row[1], row[2], row[3], row[4], int(row[5])) for row in session.execute(query)]


@dataclass(frozen=True, slots=True)
class FindingImpact:
    """What the drift split reads of a finding (`ledger.reconcile.drift_explanation.ImpactOf`)."""

    kind: str
    subject: str
    impact_usd: Decimal


def finding_impacts(session: Session, tenant_id: int, period: Period) -> list[FindingImpact]:
    """The kind and impact in USD of each finding overlapping the period. A stored finding keeps its subject only
    inside its fingerprint; the one subject the split tells apart, a substitution at no extra bill, is the one
    whose evidence says `how: served_by_another_model`."""
    how = Finding.evidence["how"].astext
    query = (
        select(Finding.kind, how, Finding.impact_usd)
        .where(Finding.tenant_id == tenant_id, Finding.period_start < period.end, Finding.period_end > period.start)
        .order_by(Finding.kind, Finding.id)
    )
    return [
        FindingImpact(kind, SERVED_BY_ANOTHER if served_by == "served_by_another_model" else "", impact)
        for kind, served_by, impact in session.execute(query)
    ]


def finding_statement_lines(
    session: Session, tenant_id: int, finding: Finding, *, limit: int | None = 200
) -> tuple[list[finding_sources.StatementSource], int]:
    """The statement lines in a finding's scope (provider, and its account, key and model where it names them)
    that overlap its period, with their documents; at most `limit` (None: all), and how many there are."""
    line, document = StatementLine, StatementDocument
    scope = [
        line.tenant_id == tenant_id,
        line.provider == finding.provider,
        line.period_start < finding.period_end,
        line.period_end > finding.period_start,
    ]
    for column, wanted in ((line.account, finding.account), (line.api_key_id, finding.api_key_id)):
        if wanted is not None:
            scope.append(column == wanted)
    if finding.model is not None:
        scope.append(line.model == finding.model)
    total = session.scalar(select(func.count()).select_from(line).where(*scope)) or 0
    query = (
        select(line, document.name, document.sha256)
        .join(document, (document.tenant_id == line.tenant_id) & (document.id == line.document_id))
        .where(*scope)
        .order_by(line.period_start, line.id)
    )
    if limit is not None:
        query = query.limit(limit)
    lines = [
        finding_sources.StatementSource(
            id=row.id,
            source=row.source,
            document=name,
            sha256=sha256,
            location=row.location,
            period_start=row.period_start,
            period_end=row.period_end,
            usage_type=row.usage_type,
            model_raw=row.model_raw,
            quantity=row.quantity,
            unit=row.unit,
            amount=row.amount,
            currency=row.currency,
            raw=row.raw,
        )
        for row, name, sha256 in session.execute(query)
    ]
    return lines, int(total)


def finding_events(
    session: Session, tenant_id: int, finding: Finding, *, limit: int = finding_sources.EVENT_SAMPLE
) -> list[dict[str, Any]]:
    """The first `limit` usage events in a finding's scope and period: the first page of the `GET /v1/events`
    query `finding_sources.events_query` writes, read with the same function."""
    events, _cursor = list_events(session, tenant_id, event_filter(finding), limit=limit, cursor=None)
    return events


def event_filter(finding: Finding) -> EventFilter:
    return EventFilter(
        period=Period(finding.period_start, finding.period_end),
        provider=finding.provider,
        model=finding.model,
        account=finding.account,
        api_key_id=finding.api_key_id,
    )


def finding_prices(session: Session, tenant_id: int, finding: Finding) -> list[PriceRow]:
    """The catalog's standard-tier prices of the finding's model in effect at the start of its period (the
    tenant's own where it has them)."""
    from ledger.pricing.catalog import load_catalog

    if finding.provider is None or finding.model is None:
        return []
    catalog = load_catalog(session, tenant_id)
    rows = (
        catalog.unit_price(finding.provider, finding.model, token_type, at=finding.period_start)
        for token_type in PRICE_TYPE_OF_CATEGORY.values()
    )
    return [row for row in rows if row is not None]


def all_finding_events(session: Session, tenant_id: int, finding: Finding, *, cap: int) -> list[dict[str, Any]]:
    """Up to `cap` usage events in the finding's scope and period, page by page as `GET /v1/events` lists them."""
    events: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(events) < cap:
        page, cursor = list_events(
            session, tenant_id, event_filter(finding), limit=min(MAX_PAGE, cap - len(events)), cursor=cursor
        )
        events += page
        if cursor is None:
            break
    return events


def has_input(session: Session, tenant_id: int, period: Period) -> bool:
    """Whether the period has logged usage (daily rollup) or statement lines: something to reconcile."""
    usage = select(UsageDaily.day).where(*_daily_scope(tenant_id, period)).limit(1)
    lines = (
        select(StatementLine.id)
        .where(
            StatementLine.tenant_id == tenant_id,
            StatementLine.period_start >= period.start,
            StatementLine.period_start < period.end,
        )
        .limit(1)
    )
    return session.scalar(usage) is not None or session.scalar(lines) is not None


def last_reconciled_month(session: Session, tenant_id: int) -> Period | None:
    """The month of the tenant's latest successful reconciliation run, if any."""
    start = session.scalar(
        select(ReconciliationRun.period_start)
        .where(ReconciliationRun.tenant_id == tenant_id, ReconciliationRun.status == "succeeded")
        .order_by(ReconciliationRun.started_at.desc(), ReconciliationRun.id.desc())
        .limit(1)
    )
    return None if start is None else Period.containing(start)


def finding_kinds(session: Session, tenant_id: int, period: Period) -> list[str]:
    """The kinds of finding the period has, for the list's filter."""
    query = (
        select(Finding.kind)
        .distinct()
        .where(Finding.tenant_id == tenant_id, Finding.period_start < period.end, Finding.period_end > period.start)
        .order_by(Finding.kind)
    )
    return list(session.scalars(query))


def _daily_scope(tenant_id: int, period: Period) -> tuple[ColumnElement[bool], ...]:
    """Days of the daily rollup inside `period` (whole UTC days: every period starts at midnight)."""
    return (
        UsageDaily.tenant_id == tenant_id,
        UsageDaily.day >= period.start.date(),
        UsageDaily.day < period.end.date(),
    )


def logged_money(session: Session, tenant_id: int, period: Period) -> list[money_over_time.LoggedMoney]:
    """Logged usage per scope × app × UTC day of `period`, priced as the reconciler prices it (the same loader
    and catalog: per day, or per price segment on days a model's price changes within the day), so its expected
    cost adds up to the drift rows'. Reads the daily rollup, and the hourly one for apps (`_by_app`) and
    time-of-day prices.

    Pricing a month takes the reconciler's loader about as long as a reconciliation's loading step, so each
    day's priced rows are kept (per process, `_PRICED_DAYS`) under that day's data version: its daily rollup
    rows' number and sums of requests and tokens (every stored event adds a request), with the version of the
    tenant's prices and aliases. New usage changes its day's version only, so while usage streams in, a page
    prices today again and takes the other days as they were; a new price or alias changes every day's."""
    # Imported here: the reconciler imports the alert outbox, which reads through this module.
    from ledger.pricing.catalog import base_layer

    versions = _day_versions(session, tenant_id, period)
    # The service-wide price data is read once per process (and again after `prices update`, as a new object,
    # which the key holds, so that no other can take its identity); with the tenant's own prices and aliases it
    # makes the prices the rows depend on.
    prices = (_prices_version(session, tenant_id), base_layer()[1])
    found: dict[date, list[money_over_time.LoggedMoney]] = {}
    with _PRICED_LOCK:
        for day, version in versions.items():
            known = _PRICED_DAYS.get((tenant_id, day, version, prices))
            if known is not None:
                _PRICED_DAYS.move_to_end((tenant_id, day, version, prices))
                found[day] = known
    missing = [day for day in versions if day not in found]
    if missing:
        window = Period(day_start(min(missing)), day_start(max(missing) + timedelta(days=1)))
        priced: dict[date, list[money_over_time.LoggedMoney]] = {day: [] for day in window.days()}
        for row in _price_logged(session, tenant_id, window, _catalog(session, tenant_id, prices)):
            priced[row.day].append(row)
        with _PRICED_LOCK:
            for day in missing:
                found[day] = priced[day]
                _PRICED_DAYS[(tenant_id, day, versions[day], prices)] = priced[day]
            while len(_PRICED_DAYS) > _PRICED_DAYS_KEPT:
                _PRICED_DAYS.popitem(last=False)
    return [row for day in sorted(found) for row in found[day]]


_PRICED_DAYS: OrderedDict[tuple[Any, ...], list[money_over_time.LoggedMoney]] = OrderedDict()
_PRICED_LOCK = threading.Lock()
_PRICED_DAYS_KEPT = 1_000
"""Priced days kept per process (a day of 200 busy scopes is some 200 to 1,000 small rows)."""


def _day_versions(session: Session, tenant_id: int, period: Period) -> dict[date, tuple[int, ...]]:
    """Per day of `period` with logged usage, the number of its daily rollup rows and their sums of requests
    and tokens: any event stored on that day changes them."""
    query = (
        select(
            UsageDaily.day,
            func.count(),
            func.sum(UsageDaily.requests),
            func.sum(UsageDaily.input_tokens),
            func.sum(UsageDaily.output_tokens),
            func.sum(UsageDaily.cache_read_input_tokens),
            func.sum(UsageDaily.cache_creation_input_tokens),
        )
        .where(*_daily_scope(tenant_id, period))
        .group_by(UsageDaily.day)
    )
    return {row[0]: tuple(int(value) for value in row[1:]) for row in session.execute(query)}


def _prices_version(session: Session, tenant_id: int) -> str:
    """A digest of the tenant's own prices and model aliases, whole (an alias is replaced in place, a price
    may be closed by a later one)."""
    digest = text(
        "SELECT md5(coalesce((SELECT string_agg(p::text, '|' ORDER BY p.id) FROM price_overrides AS p"
        " WHERE p.tenant_id = :tenant), '') || '#' || coalesce((SELECT string_agg(a::text, '|' ORDER BY"
        " a.provider, a.label) FROM model_aliases AS a WHERE a.tenant_id = :tenant), ''))"
    )
    return str(session.scalar(digest, {"tenant": tenant_id}))


def _catalog(session: Session, tenant_id: int, prices: tuple[Any, ...]) -> PriceCatalog:
    """The tenant's catalog, kept under the version of its prices (building it takes longer than pricing a
    day)."""
    from ledger.pricing.catalog import load_catalog

    with _PRICED_LOCK:
        known = _CATALOGS.get((tenant_id, prices))
    if known is None:
        known = load_catalog(session, tenant_id)
        with _PRICED_LOCK:
            _CATALOGS[(tenant_id, prices)] = known
            while len(_CATALOGS) > _CATALOGS_KEPT:
                _CATALOGS.popitem(last=False)
    return known


_CATALOGS: OrderedDict[tuple[Any, ...], PriceCatalog] = OrderedDict()
_CATALOGS_KEPT = 16


def _price_logged(
    session: Session, tenant_id: int, period: Period, catalog: PriceCatalog
) -> list[money_over_time.LoggedMoney]:
    logged = load_logged_days(session, tenant_id, period, catalog)
    return _by_app(logged, _app_tokens(session, tenant_id, period))


_AppTokens = dict[tuple[Any, ...], list[tuple[str, dict[str, int]]]]


def _app_tokens(session: Session, tenant_id: int, period: Period) -> _AppTokens:
    """Tokens per category of each app, per scope × day as the reconciler keys its days (model names
    normalized, tier 'standard' when unsaid), from the hourly rollup: the daily one does not keep apps. The
    tokens are the reconciler's own split of the rollup's columns (failed requests' tokens left out, as they are
    of the expected cost), so an app's share of a scope-day's cost is a share of what that cost prices."""

    day = cast(func.timezone("UTC", UsageHourly.hour), Date)
    scope = (
        UsageHourly.provider,
        UsageHourly.account,
        UsageHourly.api_key_id,
        UsageHourly.response_model,
        UsageHourly.request_model,
        UsageHourly.service_tier,
        UsageHourly.app,
    )
    query = (
        select(
            day,
            *scope,
            *(cast(func.sum(literal_column(sql)), BigInteger) for sql in TOKENS_OF_CATEGORY.values()),
        )
        .where(UsageHourly.tenant_id == tenant_id, UsageHourly.hour >= period.start, UsageHourly.hour < period.end)
        .group_by(day, *scope)
    )
    apps: dict[tuple[Any, ...], dict[str, dict[str, int]]] = defaultdict(dict)
    for row in session.execute(query):
        when, provider, account, key_id, served, requested, tier, app = row[:8]
        key = (
            when,
            provider,
            account,
            key_id,
            normalize_model_name(provider, served),
            normalize_model_name(provider, requested),
            tier or ServiceTier.STANDARD,
        )
        tokens = apps[key].setdefault(app, dict.fromkeys(TOKEN_CATEGORIES, 0))
        for category, count in zip(TOKENS_OF_CATEGORY, row[8:], strict=True):
            tokens[category] += int(count or 0)
    return {key: sorted(found.items()) for key, found in apps.items()}


def _by_app(logged: Iterable[LoggedDay], apps: _AppTokens) -> list[money_over_time.LoggedMoney]:
    """Each priced scope-day as one row per app that used it. An app's cost is its share of each category's
    tokens times that category's cost on the scope-day (the last app takes the remainder, so the apps' costs add
    up to the day's exactly); an app's tokens priced at a rate of their own (another input band, another price
    segment of the day) are thereby priced at the day's average rate of their category."""
    result = []
    for row in logged:
        key = (row.day, row.provider, row.account, row.api_key_id, row.model, row.request_model, row.service_tier)
        parts = apps.get(key) or [("", {category: row.tokens.get(category) for category in TOKEN_CATEGORIES})]
        left = row.expected_cost
        for index, (app, tokens) in enumerate(parts):
            if row.expected_cost is None:
                cost = None
            elif index == len(parts) - 1:
                cost = left
            else:
                cost = sum(
                    (
                        (row.expected_cost_by_category.get(category) or _ZERO) * tokens[category] / total
                        for category in TOKEN_CATEGORIES
                        if (total := row.tokens.get(category))
                    ),
                    _ZERO,
                )
                left = (left or _ZERO) - cost
            result.append(
                money_over_time.LoggedMoney(
                    day=row.day,
                    provider=row.provider,
                    account=row.account,
                    api_key_id=row.api_key_id,
                    model=row.model,
                    expected=cost,
                    tokens=tokens,
                    app=app,
                )
            )
    return result


_ZERO = Decimal(0)


BILLED_USAGE_TYPES = (*sorted(TOKEN_USAGE_TYPES), UsageType.REQUESTS, UsageType.WEB_SEARCH)
"""The usage types the reconciler compares (statement lines of other types, credits say, are no usage)."""


def billed_money(session: Session, tenant_id: int, period: Period) -> list[money_over_time.BilledMoney]:
    """Statement quantities and amounts per scope × UTC day and usage type, each figure counted once where
    statements state it at several grains (`counted_figures`, as the reconciler counts them); lines spanning
    more than a day are `undated`. Kept per process (`_BILLED`) under the number and the highest id of the
    period's lines: an import replaces a period's lines with new ones, which changes both or the latter."""
    line = StatementLine
    marker = session.execute(
        select(func.count(), func.max(line.id)).where(
            line.tenant_id == tenant_id, line.period_start >= period.start, line.period_start < period.end
        )
    ).one()
    key = (tenant_id, period.start, period.end, *marker)
    with _PRICED_LOCK:
        known = _BILLED.get(key)
        if known is not None:
            _BILLED.move_to_end(key)
            return known
    counted = _billed_money(session, tenant_id, period)
    with _PRICED_LOCK:
        _BILLED[key] = counted
        while len(_BILLED) > _BILLED_KEPT:
            _BILLED.popitem(last=False)
    return counted


_BILLED_KEPT = 32
_BILLED: OrderedDict[tuple[Any, ...], list[money_over_time.BilledMoney]] = OrderedDict()


def _billed_money(session: Session, tenant_id: int, period: Period) -> list[money_over_time.BilledMoney]:
    line = StatementLine
    undated = (line.period_end - line.period_start > timedelta(days=1)).label("undated")
    day = cast(func.date_trunc("day", line.period_start), Date).label("day")
    dimensions = [getattr(line, name) for name in DIMENSIONS]
    currency = func.upper(func.coalesce(line.currency, literal_column("'USD'"))).label("currency")
    query = (
        select(
            undated,
            day,
            line.provider,
            *dimensions,
            line.usage_type,
            func.sum(line.quantity),
            func.sum(line.amount),
            currency,
        )
        .where(
            line.tenant_id == tenant_id,
            line.period_start >= period.start,
            line.period_start < period.end,
            line.usage_type.in_(BILLED_USAGE_TYPES),
        )
        .group_by(undated, day, line.provider, *dimensions, line.usage_type, currency)
    )
    count = len(DIMENSIONS)
    stated = [
        _StatedScope(
            undated=row[0],
            day=row[1],
            provider=row[2],
            dimensions=tuple(row[3 : 3 + count]),
            grain=_grain_of(tuple(value is not None for value in row[3 : 3 + count])),
            usage_type=row[3 + count],
            quantity=_whole(row[4 + count]) if row[3 + count] in TOKEN_USAGE_TYPES else None,
            amount=row[5 + count],
            currency=row[6 + count],
        )
        for row in session.execute(query)
    ]
    figures = counted_figures(stated, attrgetter("grain"))
    return [
        money_over_time.BilledMoney(
            undated=scope.undated,
            day=scope.day,
            provider=scope.provider,
            account=scope.dimensions[0],
            api_key_id=scope.dimensions[1],
            model=None if scope.dimensions[2] is None else scope.dimensions[2],
            usage_type=scope.usage_type,
            quantity=quantity,
            amount=amount,
            currency=scope.currency,
        )
        for scope, quantity, amount in figures
        if quantity is not None or amount is not None
    ]


@lru_cache(maxsize=64)
def _grain_of(stated: tuple[bool, ...]) -> tuple[str, ...]:
    """The dimensions a line states, from which of its dimension values are not None."""
    return tuple(name for name, present in zip(DIMENSIONS, stated, strict=True) if present)


@dataclass(frozen=True, slots=True)
class _StatedScope:
    undated: bool
    day: date
    provider: str
    dimensions: tuple[str | None, ...]
    grain: tuple[str, ...]
    """The dimensions the line states (not None), in DIMENSIONS order."""
    usage_type: str
    quantity: int | None
    amount: Decimal | None
    currency: str


def model_usage(session: Session, tenant_id: int, period: Period) -> list[ModelUsage]:
    """Rollup sums and merged latency / time-to-first-token histograms per provider × requested × served
    model. The histograms are summed element-wise in SQL so only one row per model pair leaves the database."""
    sums = [cast(func.sum(getattr(UsageDaily, name)), BigInteger).label(name) for name in USAGE_SUMS]
    buckets = range(1, latency.BUCKET_COUNT + 1)
    latency_sums = [cast(func.sum(UsageDaily.latency_histogram[i]), BigInteger) for i in buckets]
    ttft_sums = [cast(func.sum(UsageDaily.ttft_histogram[i]), BigInteger) for i in buckets]
    query = (
        select(
            UsageDaily.provider,
            UsageDaily.request_model,
            UsageDaily.response_model,
            *sums,
            *latency_sums,
            *ttft_sums,
        )
        .where(*_daily_scope(tenant_id, period))
        .group_by(UsageDaily.provider, UsageDaily.request_model, UsageDaily.response_model)
    )
    result = []
    count, width = len(USAGE_SUMS), latency.BUCKET_COUNT
    for row in session.execute(query):
        values = tuple(row)[3:]
        result.append(
            ModelUsage(
                provider=row.provider,
                request_model=row.request_model,
                response_model=row.response_model,
                sums={name: int(value or 0) for name, value in zip(USAGE_SUMS, values[:count], strict=True)},
                latency_histogram=tuple(int(v or 0) for v in values[count : count + width]),
                ttft_histogram=tuple(int(v or 0) for v in values[count + width :]),
            )
        )
    return result


def channels(session: Session, tenant_id: int) -> list[AlertChannel]:
    return list(
        session.scalars(select(AlertChannel).where(AlertChannel.tenant_id == tenant_id).order_by(AlertChannel.name))
    )


def delivery_log(session: Session, tenant_id: int, *, limit: int = 200) -> list[DeliveryLine]:
    """The tenant's latest alerts, newest first, with how their delivery went."""
    query = (
        select(AlertOutbox, AlertChannel.name, AlertChannel.kind)
        .join(
            AlertChannel,
            (AlertChannel.tenant_id == AlertOutbox.tenant_id) & (AlertChannel.id == AlertOutbox.channel_id),
            isouter=True,
        )
        .where(AlertOutbox.tenant_id == tenant_id)
        .order_by(AlertOutbox.created_at.desc(), AlertOutbox.id.desc())
        .limit(limit)
    )
    return [
        DeliveryLine(
            id=row.id,
            channel=name or f"(deleted channel {row.channel_id})",
            kind=kind or "",
            topic=row.topic,
            title=str(row.payload.get("title", row.topic)),
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            created_at=row.created_at,
            sent_at=row.sent_at,
        )
        for row, name, kind in session.execute(query)
    ]


def _whole(quantity: Decimal | None) -> int | None:
    return None if quantity is None else int(quantity.to_integral_value())
