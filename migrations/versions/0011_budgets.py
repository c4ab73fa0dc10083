"""Monthly budgets

`budgets`: a tenant's monthly spend limit in USD for itself, a provider or an account.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("amount_usd", sa.Numeric(20, 10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('tenant', 'provider', 'account', 'app')", name=op.f("ck_budgets_known")),
        sa.CheckConstraint("amount_usd > 0", name=op.f("ck_budgets_amount_positive")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_budgets_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_budgets")),
        sa.UniqueConstraint("tenant_id", "scope", "value", name=op.f("uq_budgets_tenant_id_scope_value")),
    )


def downgrade() -> None:
    op.drop_table("budgets")
