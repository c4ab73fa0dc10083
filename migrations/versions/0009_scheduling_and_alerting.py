"""Scheduling by one leader, and alert routing

- `scheduled_jobs` replaces APScheduler's `scheduler_jobs`;
- `alert_channels.route`: the kinds, providers and accounts of findings a channel takes.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("next_run_at", _TIMESTAMP, nullable=False),
        sa.Column("last_started_at", _TIMESTAMP),
        sa.Column("last_finished_at", _TIMESTAMP),
        sa.Column("last_outcome", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("runs", sa.BigInteger(), server_default="0", nullable=False),
    )
    # APScheduler's job store, created at run time by earlier versions: its next run times are not carried
    # over (the daily job is due at its next hour).
    op.execute("DROP TABLE IF EXISTS scheduler_jobs")
    op.add_column(
        "alert_channels",
        sa.Column("route", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("alert_channels", "route")
    op.drop_table("scheduled_jobs")
