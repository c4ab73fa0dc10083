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

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    # Ingest
    max_body_bytes: int = 10 * 1024 * 1024
    max_events_per_request: int = 10_000
    max_future_skew_seconds: int = 300
    group_commit_wait_ms: float = 0.5
    group_commit_max_events: int = 1_000
    writer_connections: int = 2
    pool_size: int = 8
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
    tolerance_relative: Decimal = Decimal("0.005")
    tolerance_tokens: int = 1_000
    tolerance_usd: Decimal = Decimal("0.50")

    # Scheduler
    scheduler_enabled: bool = True
    statement_tenant: str | None = Field(
        default=None, description="Tenant the environment's provider admin keys belong to (scheduled pulls)."
    )
    statement_pull_hour_utc: int = 6
    reconcile_hour_utc: int = 7
    close_month_day: int = 5

    # Web report
    session_secret: str | None = None
    cookie_secure: bool = False


def get_settings() -> Settings:
    """Build the settings from the environment (never at import time)."""
    return Settings()
