"""Server-side sessions of the web report; statement documents archived in parts

Sessions of the web report live in `report_sessions`, so that signing out ends a session for every copy of
its cookie. A statement file too large to hold in memory is archived in `statement_document_parts` (its
`statement_documents.content` is then null).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
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
    op.alter_column("statement_documents", "content", existing_type=sa.LargeBinary(), nullable=True)
    op.create_table(
        "statement_document_parts",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "document_id"],
            ["statement_documents.tenant_id", "statement_documents.id"],
            name=op.f("fk_statement_document_parts_tenant_id_statement_documents"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "document_id", "part", name=op.f("pk_statement_document_parts")),
    )


def downgrade() -> None:
    op.drop_table("statement_document_parts")
    op.execute("DELETE FROM statement_documents WHERE content IS NULL")
    op.alter_column("statement_documents", "content", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_index("ix_report_sessions_created_at", table_name="report_sessions")
    op.drop_table("report_sessions")
