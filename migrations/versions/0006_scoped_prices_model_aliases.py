"""Tenant prices scoped to an account; a tenant's model aliases

`price_overrides.account`: a negotiated price may hold for one provider account only (NULL: every account of
the provider). `drift_rows.note`: what the reconciler adds to a row ("probably the same model, alias it").
`model_aliases`: a tenant's statement label → the model it names, per provider ('' = any), read
by the next reconciliation run.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("price_overrides", sa.Column("account", sa.Text(), nullable=True))
    op.add_column("drift_rows", sa.Column("note", sa.Text(), nullable=True))
    op.create_table(
        "model_aliases",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_model_aliases_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "provider", "label", name=op.f("pk_model_aliases")),
    )


def downgrade() -> None:
    op.drop_table("model_aliases")
    op.drop_column("drift_rows", "note")
    op.drop_column("price_overrides", "account")
