"""Scheduling by one leader, and alert routing

- `scheduled_jobs` replaces APScheduler's `scheduler_jobs`;
- `alert_channels.route`: the kinds, providers and accounts of findings a channel takes;
- `alert_silences`: findings, or scopes, muted until a date.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("next_run_at", _TIMESTAMP, nullable=False),
        sa.Column("last_started_at", _TIMESTAMP),
        sa.Column("last_finished_at", _TIMESTAMP),
        sa.Column("last_outcome", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("runs", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduled_jobs")),
    )
    # APScheduler's job store, created at run time by earlier versions: its next run times are not carried
    # over (the daily job is due at its next hour).
    op.execute("DROP TABLE IF EXISTS scheduler_jobs")
    op.add_column(
        "alert_channels",
        sa.Column("route", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )

    op.create_table(
        "alert_silences",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fingerprint", sa.Text()),
        sa.Column("kind", sa.Text()),
        sa.Column("provider", sa.Text()),
        sa.Column("account", sa.Text()),
        sa.Column("until", _TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_alert_silences_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_alert_silences")),
    )
    op.create_index("ix_alert_silences_until", "alert_silences", ["tenant_id", "until"])


def downgrade() -> None:
    op.drop_table("alert_silences")
    op.drop_column("alert_channels", "route")
    op.drop_table("scheduled_jobs")
