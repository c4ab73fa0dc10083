"""The database schema as SQLAlchemy 2 typed tables. Alembic migrations create them; this module is what
the code queries. Every primary key and unique constraint leads with `tenant_id`, so the schema can be
distributed by tenant (Citus) without change."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.events.schema import INTEGER_MAX, MEASURES

BIGINT_MAX = 2**63 - 1
"""The largest value a bigint column (every id) holds."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = DateTime(timezone=True)
Money = Numeric(20, 10)
Quantity = Numeric(24, 6)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TenantRecord:
    """A tenant's row with its own serial id: the key is (tenant_id, id), tenant first, as every key is."""

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=text("now()"))


class ApiKey(Base):
    """An API key of TokenLedger itself. Only a SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    secret_sha256: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=text("now()"))
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_api_keys_id", "id"),)


class ReportSession(Base):
    """A signed-in session of the web report. Its random id travels in the signed cookie; signing out deletes
    the row, so a copy of the cookie opens nothing afterwards."""

    __tablename__ = "report_sessions"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    key_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_report_sessions_created_at", "created_at"),)


class EventId(Base):
    """The mark that an event id was seen for a tenant, written in the same transaction as the event."""

    __tablename__ = "event_ids"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(Timestamp)


class EventMeasures:
    """The counts an event states, one column each, made from the event field list
    (`ledger.events.schema.MEASURES`) below; the annotations only type them for code that names them."""

    input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    cache_read_input_tokens: Mapped[int]
    cache_creation_input_tokens: Mapped[int]
    cache_creation_1h_input_tokens: Mapped[int]
    reasoning_tokens: Mapped[int]
    web_search_requests: Mapped[int]
    system_prompt_tokens: Mapped[int | None]


for _measure in MEASURES:
    setattr(
        EventMeasures,
        _measure.name,
        mapped_column(BigInteger if _measure.limit > INTEGER_MAX else Integer, nullable=_measure.optional),
    )


class UsageEvent(EventMeasures, Base):
    """One LLM request's usage. Range-partitioned by month on `occurred_at`; partitions are created by the
    ingest service for any month an event arrives for."""

    __tablename__ = "usage_events"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(Timestamp)
    provider: Mapped[str] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[str | None] = mapped_column(Text)
    request_model: Mapped[str] = mapped_column(Text)
    response_model: Mapped[str] = mapped_column(Text)
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    finish_reason: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int] = mapped_column(SmallInteger)
    error_type: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    stream: Mapped[bool] = mapped_column(Boolean)
    service_tier: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)
    app: Mapped[str | None] = mapped_column(Text)
    user_label: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    provider_request_id: Mapped[str | None] = mapped_column(Text)
    reported_cost: Mapped[Decimal | None] = mapped_column(Money)
    usage_raw: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = ({"postgresql_partition_by": "RANGE (occurred_at)"},)


class RollupMeasures:
    """What the hourly and daily rollups add up for their key: every figure is a sum (or a min/max), so rows
    of any batches merge exactly (`ledger.sink.rollup`). The sums of the events' measures are columns of the
    measures' names, made from the event field list below; their annotations only type them for code that
    names them."""

    requests: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    cache_read_input_tokens: Mapped[int]
    cache_creation_input_tokens: Mapped[int]
    cache_creation_1h_input_tokens: Mapped[int]
    reasoning_tokens: Mapped[int]
    web_search_requests: Mapped[int]
    system_prompt_tokens: Mapped[int]
    system_prompt_requests: Mapped[int] = mapped_column(BigInteger)
    status_2xx: Mapped[int] = mapped_column(BigInteger)
    status_4xx: Mapped[int] = mapped_column(BigInteger)
    status_429: Mapped[int] = mapped_column(BigInteger)
    status_5xx: Mapped[int] = mapped_column(BigInteger)
    status_other: Mapped[int] = mapped_column(BigInteger)
    error_rate_limit: Mapped[int] = mapped_column(BigInteger)
    error_timeout: Mapped[int] = mapped_column(BigInteger)
    error_server_error: Mapped[int] = mapped_column(BigInteger)
    error_invalid_request: Mapped[int] = mapped_column(BigInteger)
    error_auth: Mapped[int] = mapped_column(BigInteger)
    error_content_filter: Mapped[int] = mapped_column(BigInteger)
    error_other: Mapped[int] = mapped_column(BigInteger)
    finish_stop: Mapped[int] = mapped_column(BigInteger)
    finish_length: Mapped[int] = mapped_column(BigInteger)
    finish_tool_calls: Mapped[int] = mapped_column(BigInteger)
    finish_content_filter: Mapped[int] = mapped_column(BigInteger)
    finish_other: Mapped[int] = mapped_column(BigInteger)
    finish_missing: Mapped[int] = mapped_column(BigInteger)
    streamed: Mapped[int] = mapped_column(BigInteger)
    streamed_missing_finish: Mapped[int] = mapped_column(BigInteger)
    truncated_below_max: Mapped[int] = mapped_column(BigInteger)
    truncated_min_output: Mapped[int | None] = mapped_column(BigInteger)
    truncated_max_output: Mapped[int | None] = mapped_column(BigInteger)
    reported_cost: Mapped[Decimal] = mapped_column(Money)
    reported_cost_requests: Mapped[int] = mapped_column(BigInteger)
    failed_input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    failed_cache_read_input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    failed_cache_creation_input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    failed_output_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    latency_histogram: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    ttft_histogram: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))


for _measure in MEASURES:
    setattr(RollupMeasures, _measure.name, mapped_column(BigInteger, nullable=False))


class UsageScope:
    """The dimensions both rollups key on besides their time bucket: provider × account × key × requested and
    served model × tier × input band. Columns are '' (not NULL) when the event did not say, so they can form
    the key."""

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    account: Mapped[str] = mapped_column(Text, primary_key=True)
    api_key_id: Mapped[str] = mapped_column(Text, primary_key=True)
    request_model: Mapped[str] = mapped_column(Text, primary_key=True)
    response_model: Mapped[str] = mapped_column(Text, primary_key=True)
    service_tier: Mapped[str] = mapped_column(Text, primary_key=True)
    input_band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)


class UsageHourly(UsageScope, RollupMeasures, Base):
    """Hourly rollup of usage events per scope and app, maintained in the same transaction as the events."""

    __tablename__ = "usage_hourly"

    hour: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    app: Mapped[str] = mapped_column(Text, primary_key=True)


class UsageDaily(UsageScope, RollupMeasures, Base):
    """The hourly rollup summed per UTC day and scope (not app). Kept by statement-level triggers on
    `usage_hourly` (migrations 0003, 0004), so it is always in step with it; the reconciler and month-long
    reports read it."""

    __tablename__ = "usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)


class StatementDocument(TenantRecord, Base):
    """A raw billing document as fetched or imported, archived with its SHA-256."""

    __tablename__ = "statement_documents"

    source: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(Text)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)  # None: in statement_document_parts
    period_start: Mapped[datetime] = mapped_column(Timestamp)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    imported_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (UniqueConstraint("tenant_id", "source", "period_start", "sha256"),)


class StatementDocumentPart(Base):
    """A document imported from a file too large to hold in memory, archived in parts of a few megabytes (its
    `statement_documents.content` is null): the parts in order are the file."""

    __tablename__ = "statement_document_parts"

    tenant_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "document_id"], ["statement_documents.tenant_id", "statement_documents.id"]),
    )


class StatementLine(TenantRecord, Base):
    """One normalized line of a provider's statement, with its provenance."""

    __tablename__ = "statement_lines"

    source: Mapped[str] = mapped_column(Text)
    document_id: Mapped[int] = mapped_column(BigInteger)
    provider: Mapped[str] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[str | None] = mapped_column(Text)
    model_raw: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    service_tier: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[datetime] = mapped_column(Timestamp)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    usage_type: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    unit: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    final: Mapped[bool] = mapped_column(Boolean)
    import_period_start: Mapped[datetime] = mapped_column(Timestamp)
    location: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)

    __table_args__ = (
        Index("ix_statement_lines_scope", "tenant_id", "source", "import_period_start"),
        Index("ix_statement_lines_period", "tenant_id", "period_start"),
    )


class StatementImport(TenantRecord, Base):
    """One import of a source for a period: when, how many lines, and how it ended."""

    __tablename__ = "statement_imports"

    source: Mapped[str] = mapped_column(Text)
    period_start: Mapped[datetime] = mapped_column(Timestamp)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    imported_at: Mapped[datetime] = mapped_column(Timestamp)
    documents: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    unknown_lines: Mapped[int] = mapped_column(Integer)


class PriceOverride(TenantRecord, Base):
    """A tenant's own price (negotiated discount, self-hosted rate); wins over the bundled catalog."""

    __tablename__ = "price_overrides"

    provider: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    token_type: Mapped[str] = mapped_column(Text)
    service_tier: Mapped[str] = mapped_column(Text)
    context_threshold: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    unit: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(Timestamp)
    valid_to: Mapped[datetime | None] = mapped_column(Timestamp)
    time_window: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=text("now()"))
    account: Mapped[str | None] = mapped_column(Text)  # NULL: every account of the provider


class ModelAlias(Base):
    """A tenant's statement label for a model (`tokenledger models alias`): per provider, '' for any."""

    __tablename__ = "model_aliases"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    label: Mapped[str] = mapped_column(Text, primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=text("now()"))


class ReconciliationRun(TenantRecord, Base):
    """One run of the reconciler for a tenant and period: visible whether it succeeded or failed."""

    __tablename__ = "reconciliation_runs"

    period_start: Mapped[datetime] = mapped_column(Timestamp)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    trigger: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_reconciliation_runs_period", "tenant_id", "period_start", "started_at"),)


class Finding(TenantRecord, Base):
    """A discrepancy between logged and billed usage, updated in place by later runs (same fingerprint)."""

    __tablename__ = "findings"

    fingerprint: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    provider: Mapped[str | None] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(Text)
    api_key_id: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[datetime] = mapped_column(Timestamp)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    impact_usd: Mapped[Decimal] = mapped_column(Money)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB)
    summary: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(Timestamp)
    last_seen: Mapped[datetime] = mapped_column(Timestamp)
    last_run_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("tenant_id", "fingerprint"),
        Index("ix_findings_period", "tenant_id", "period_start", "kind"),
    )


class FindingChange(TenantRecord, Base):
    """A status change of a finding by a person, with their note."""

    __tablename__ = "finding_changes"

    finding_id: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(Timestamp)
    from_status: Mapped[str] = mapped_column(Text)
    to_status: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_finding_changes_finding", "tenant_id", "finding_id"),)


class DriftRow(Base):
    """Per period and provider × account × model: logged against billed, tokens and money."""

    __tablename__ = "drift_rows"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(Timestamp, primary_key=True)
    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    account: Mapped[str] = mapped_column(Text, primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    logged_tokens: Mapped[int] = mapped_column(BigInteger)
    billed_tokens: Mapped[int | None] = mapped_column(BigInteger)
    logged_by_category: Mapped[dict[str, Any]] = mapped_column(JSONB)
    billed_by_category: Mapped[dict[str, Any]] = mapped_column(JSONB)
    expected_cost: Mapped[Decimal | None] = mapped_column(Money)
    billed_cost: Mapped[Decimal | None] = mapped_column(Money)
    difference: Mapped[Decimal | None] = mapped_column(Money)
    percent: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    note: Mapped[str | None] = mapped_column(Text)  # e.g. "probably the same model, alias it"
    currency: Mapped[str] = mapped_column(Text, server_default="USD")
    computed_at: Mapped[datetime] = mapped_column(Timestamp)


class AlertChannel(TenantRecord, Base):
    """Where a tenant's alerts go: a signed webhook, a Slack incoming webhook, or email over SMTP."""

    __tablename__ = "alert_channels"

    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    min_severity: Mapped[str] = mapped_column(Text, server_default="warning")
    min_impact_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=text("now()"))
    route: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    """Which findings the channel takes besides its thresholds: `kinds`, `providers`, `accounts` (lists; a
    missing list takes any)."""

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class AlertOutbox(TenantRecord, Base):
    """An alert to deliver, written in the same transaction as its cause; the delivery log is this table."""

    __tablename__ = "alert_outbox"

    channel_id: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("tenant_id", "channel_id", "dedupe_key"),
        Index("ix_alert_outbox_due", "status", "next_attempt_at"),
    )


class ScheduledJob(Base):
    """A job of the scheduler: when it runs next, and how its latest run went. The next run is advanced only
    once a run has finished, so a run missed while no replica was up, or cut short by the leader's death, is
    due when a leader next looks."""

    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    schedule: Mapped[str] = mapped_column(Text)
    next_run_at: Mapped[datetime] = mapped_column(Timestamp)
    last_started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_outcome: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(BigInteger, server_default="0")


class AlertSilence(TenantRecord, Base):
    """A finding, or every finding of a scope, that alerts nobody until a date: the fields set must all match
    (a finding's fingerprint, or its kind, provider and account)."""

    __tablename__ = "alert_silences"

    fingerprint: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(Text)
    account: Mapped[str | None] = mapped_column(Text)
    until: Mapped[datetime] = mapped_column(Timestamp)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_alert_silences_until", "tenant_id", "until"),)


class Budget(TenantRecord, Base):
    """A monthly spend limit in USD: for the whole tenant (`scope` "tenant", `value` ""), one provider, one
    account or one app (`value` names it)."""

    __tablename__ = "budgets"

    scope: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    amount_usd: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("tenant_id", "scope", "value"),
        CheckConstraint("scope IN ('tenant', 'provider', 'account', 'app')", name="known"),
        CheckConstraint("amount_usd > 0", name="amount_positive"),
    )
