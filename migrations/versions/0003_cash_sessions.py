"""Cash sessions and cash movements; sales booked to the session that took their cash.

A cashier opens a till with a float, cash sales are booked to it, and closing it
records the counted amount against the expected one.

Revision ID: 0003_cash_sessions
Revises: 0002_transfer_movements
Create Date: 2025-08-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_cash_sessions"
down_revision = "0002_transfer_movements"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(12, 2)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cash_sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("cashier_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opening_amount", MONEY, nullable=False),
        sa.Column("expected_amount", MONEY, nullable=True),
        sa.Column("counted_amount", MONEY, nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
    )
    op.create_index(
        "ix_cash_sessions_tenant_id_store_id_status", "cash_sessions", ["tenant_id", "store_id", "status"]
    )
    op.create_table(
        "cash_movements",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("cash_session_id", sa.Uuid(), sa.ForeignKey("cash_sessions.id"), nullable=False, index=True),
        sa.Column("sale_id", sa.Uuid(), sa.ForeignKey("sales.id"), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    with op.batch_alter_table("sales") as batch:
        batch.add_column(sa.Column("cash_session_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key("fk_sales_cash_session_id_cash_sessions", "cash_sessions", ["cash_session_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("sales") as batch:
        batch.drop_constraint("fk_sales_cash_session_id_cash_sessions", type_="foreignkey")
        batch.drop_column("cash_session_id")
    op.drop_index("ix_cash_movements_cash_session_id", table_name="cash_movements")
    op.drop_table("cash_movements")
    op.drop_index("ix_cash_sessions_tenant_id_store_id_status", table_name="cash_sessions")
    op.drop_table("cash_sessions")
