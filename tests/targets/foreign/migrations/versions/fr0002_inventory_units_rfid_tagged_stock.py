"""Inventory units: one row per RFID-tagged physical unit, in one outlet.

Revision ID: fr0002_inventory_units_rfid_tagged_stock
Revises: fr0001_baseline
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0002_inventory_units_rfid_tagged_stock"
down_revision = "fr0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_units",
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("outlet_id", sa.Uuid(), nullable=False),
        sa.Column("article_code", sa.String(40), nullable=False),
        sa.Column("label", sa.String(160), nullable=False),
        sa.Column("rfid_tag", sa.String(40), nullable=False),
        sa.Column("unit_state", sa.String(12), nullable=False),
        sa.Column("unit_cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("list_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("received_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", name="inventory_units_pkey"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"], name="inventory_units_merchant_id_fkey"),
        sa.ForeignKeyConstraint(["outlet_id"], ["outlets.outlet_id"], name="inventory_units_outlet_id_fkey"),
        sa.UniqueConstraint("merchant_id", "rfid_tag", name="inventory_units_merchant_id_rfid_tag_key"),
    )
    op.create_index("inventory_units_article_code_idx", "inventory_units", ["article_code"])
    op.create_index("inventory_units_outlet_id_unit_state_idx", "inventory_units", ["outlet_id", "unit_state"])


def downgrade() -> None:
    op.drop_index("inventory_units_outlet_id_unit_state_idx", table_name="inventory_units")
    op.drop_index("inventory_units_article_code_idx", table_name="inventory_units")
    op.drop_table("inventory_units")
