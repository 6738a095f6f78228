"""Initial ARIS3 schema: tenants, stores, users, stock, transfers, POS sales, audit.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2025-03-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial_schema"
down_revision = None
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(12, 2)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "stores",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "code"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=True),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "stock_items",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("epc", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("location_code", sa.String(32), nullable=False),
        sa.Column("cost_price", MONEY, nullable=False),
        sa.Column("sale_price", MONEY, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "epc"),
    )
    op.create_index("ix_stock_items_tenant_id_store_id_status", "stock_items", ["tenant_id", "store_id", "status"])
    op.create_index("ix_stock_items_tenant_id_sku", "stock_items", ["tenant_id", "sku"])
    op.create_table(
        "transfers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id"), nullable=False, index=True),
        sa.Column("origin_store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("destination_store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("dispatched_at", TS, nullable=True),
        sa.Column("received_at", TS, nullable=True),
        sa.Column("canceled_at", TS, nullable=True),
    )
    op.create_table(
        "transfer_lines",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("transfer_id", sa.Uuid(), sa.ForeignKey("transfers.id"), nullable=False),
        sa.Column("stock_item_id", BIGINT_PK, sa.ForeignKey("stock_items.id"), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin_status", sa.String(16), nullable=False),
        sa.Column("received_at", TS, nullable=True),
        sa.UniqueConstraint("transfer_id", "stock_item_id"),
    )
    op.create_table(
        "sales",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("discount_total", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("paid_at", TS, nullable=True),
        sa.Column("canceled_at", TS, nullable=True),
    )
    op.create_index("ix_sales_tenant_id_store_id_status", "sales", ["tenant_id", "store_id", "status"])
    op.create_table(
        "sale_lines",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("sale_id", sa.Uuid(), sa.ForeignKey("sales.id"), nullable=False, index=True),
        sa.Column("stock_item_id", BIGINT_PK, sa.ForeignKey("stock_items.id"), nullable=False, index=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("unit_price", MONEY, nullable=False),
        sa.Column("discount", MONEY, nullable=False),
        sa.Column("line_total", MONEY, nullable=False),
    )
    op.create_table(
        "payments",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("sale_id", sa.Uuid(), sa.ForeignKey("sales.id"), nullable=False, index=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("actor_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_audit_events_tenant_id_created_at", "audit_events", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_tenant_id_created_at", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("payments")
    op.drop_table("sale_lines")
    op.drop_index("ix_sales_tenant_id_store_id_status", table_name="sales")
    op.drop_table("sales")
    op.drop_table("transfer_lines")
    op.drop_table("transfers")
    op.drop_index("ix_stock_items_tenant_id_sku", table_name="stock_items")
    op.drop_index("ix_stock_items_tenant_id_store_id_status", table_name="stock_items")
    op.drop_table("stock_items")
    op.drop_table("users")
    op.drop_table("stores")
    op.drop_table("tenants")
