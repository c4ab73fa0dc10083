"""Server-side sessions of the web report, so that signing out ends a session for every copy of its cookie

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_sessions",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_report_sessions_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_report_sessions")),
    )
    op.create_index("ix_report_sessions_created_at", "report_sessions", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_report_sessions_created_at", table_name="report_sessions")
    op.drop_table("report_sessions")
