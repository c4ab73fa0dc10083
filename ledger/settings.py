"""Configuration: one pydantic-settings object, read from `TOKENLEDGER_*` environment variables."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_POSTGRESQL_SCHEMES = ("postgresql+psycopg", "postgresql", "postgres")


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tokenledger"))


class Settings(BaseSettings):
    """Every setting of the service. Environment variables are the field names prefixed `TOKENLEDGER_`."""

    model_config = SettingsConfigDict(env_prefix="TOKENLEDGER_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql+psycopg://… ; unset: an embedded PostgreSQL is started in data_dir.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir)

    @field_validator("database_url")
    @classmethod
    def _postgresql_with_psycopg(cls, url: str | None) -> str | None:
        """A PostgreSQL URL for the psycopg 3 driver. `postgresql://` and `postgres://` (the form many hosting
        platforms hand out) name the same database and get the driver; any other database is refused."""
        if not url:
            return None
        scheme, separator, rest = url.partition("://")
        if not separator or scheme not in _POSTGRESQL_SCHEMES:
            raise ValueError(
                f"must be a PostgreSQL URL such as postgresql+psycopg://user@host:5432/tokenledger, "
                f"got one starting {scheme[:40]!r}"
            )
        return f"postgresql+psycopg://{rest}"

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        """An http(s) URL, without a trailing slash (pages are appended to it)."""
        if not url:
            return None
        scheme, separator, rest = url.partition("://")
        if scheme not in ("http", "https") or not separator or not rest.strip("/"):
            raise ValueError(f"must be an http(s) URL such as https://tokenledger.example.com, got {url[:60]!r}")
        return url.rstrip("/")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)
    log_level: str = "info"

    # Ingest
    max_body_bytes: int = 10 * 1024 * 1024
    max_events_per_request: int = 10_000
    max_future_skew_seconds: int = 300
    group_commit_wait_ms: float = 0.5
    group_commit_max_events: int = 1_000
    writer_connections: int = 2
    pool_size: int = 8
    request_timeout_seconds: float = Field(
        default=15.0,
        description="A request not answered by then gets 503 with Retry-After (the database frozen or overloaded).",
    )
    database_statement_timeout_ms: int = 30_000
    database_lock_timeout_ms: int = 10_000
    auth_cache_seconds: float = 5.0
    auth_failures_per_minute: float = Field(
        default=60.0, description="Failed authentications a client address may make per minute (0: unlimited)."
    )
    auth_failure_burst: int = 20
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, GET /metrics needs 'Authorization: Bearer <this token>'."
    )

    # Statement sources (base URLs; the admin keys come from OPENAI_ADMIN_KEY etc., never from here)
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_base_url: str = "https://api.anthropic.com"
    openrouter_base_url: str = "https://openrouter.ai/api/v1"

    # Reconciler
    tolerance_relative: Decimal = Field(default=Decimal("0.005"), ge=0)
    tolerance_tokens: int = Field(default=1_000, ge=0)
    tolerance_usd: Decimal = Field(default=Decimal("0.50"), ge=0)

    # Scheduler
    scheduler_enabled: bool = True
    statement_tenant: str | None = Field(
        default=None, description="Tenant the environment's provider admin keys belong to (scheduled pulls)."
    )
    statement_pull_hour_utc: int = Field(
        default=6, ge=0, le=23, description="Hour (UTC) of the daily job: pull statements, then reconcile."
    )
    close_month_day: int = Field(
        default=5,
        ge=1,
        le=31,
        description="Day the previous month closes (its last reconcile and report); in a shorter month, its last day.",
    )

    # Web report
    public_url: str | None = Field(
        default=None,
        description="Where users reach this service, e.g. https://tokenledger.example.com: alerts link to its pages.",
    )
    session_secret: str | None = None
    cookie_secure: bool = False


def get_settings() -> Settings:
    """Build the settings from the environment (never at import time)."""
    return Settings()
