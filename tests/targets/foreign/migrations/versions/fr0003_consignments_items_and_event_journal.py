"""Consignments between outlets, their items (composite key) and their events.

Revision ID: fr0003_consignments_items_and_event_journal
Revises: fr0002_inventory_units_rfid_tagged_stock
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0003_consignments_items_and_event_journal"
down_revision = "fr0002_inventory_units_rfid_tagged_stock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consignments",
        sa.Column("consignment_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("from_outlet_id", sa.Uuid(), nullable=False),
        sa.Column("to_outlet_id", sa.Uuid(), nullable=False),
        sa.Column("phase", sa.String(12), nullable=False),
        sa.Column("opened_by", sa.Uuid(), nullable=True),
        sa.Column("opened_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_on", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_on", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("consignment_id", name="consignments_pkey"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"], name="consignments_merchant_id_fkey"),
        sa.ForeignKeyConstraint(["from_outlet_id"], ["outlets.outlet_id"], name="consignments_from_outlet_id_fkey"),
        sa.ForeignKeyConstraint(["to_outlet_id"], ["outlets.outlet_id"], name="consignments_to_outlet_id_fkey"),
        sa.ForeignKeyConstraint(["opened_by"], ["accounts.account_id"], name="consignments_opened_by_fkey"),
    )
    op.create_index("consignments_merchant_id_idx", "consignments", ["merchant_id"])
    op.create_table(
        "consignment_items",
        sa.Column("consignment_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("item_phase", sa.String(12), nullable=False),
        sa.PrimaryKeyConstraint("consignment_id", "unit_id", name="consignment_items_pkey"),
        sa.ForeignKeyConstraint(
            ["consignment_id"], ["consignments.consignment_id"], name="consignment_items_consignment_id_fkey"
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["inventory_units.unit_id"], name="consignment_items_unit_id_fkey"),
    )
    op.create_table(
        "consignment_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("consignment_id", sa.Uuid(), nullable=False),
        sa.Column("event_kind", sa.String(12), nullable=False),
        sa.Column("at_outlet_id", sa.Uuid(), nullable=False),
        sa.Column("actor_account_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("happened_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="consignment_events_pkey"),
        sa.ForeignKeyConstraint(
            ["consignment_id"], ["consignments.consignment_id"], name="consignment_events_consignment_id_fkey"
        ),
        sa.ForeignKeyConstraint(["at_outlet_id"], ["outlets.outlet_id"], name="consignment_events_at_outlet_id_fkey"),
        sa.ForeignKeyConstraint(
            ["actor_account_id"], ["accounts.account_id"], name="consignment_events_actor_account_id_fkey"
        ),
    )
    op.create_index("consignment_events_consignment_id_idx", "consignment_events", ["consignment_id"])


def downgrade() -> None:
    op.drop_index("consignment_events_consignment_id_idx", table_name="consignment_events")
    op.drop_table("consignment_events")
    op.drop_table("consignment_items")
    op.drop_index("consignments_merchant_id_idx", table_name="consignments")
    op.drop_table("consignments")
