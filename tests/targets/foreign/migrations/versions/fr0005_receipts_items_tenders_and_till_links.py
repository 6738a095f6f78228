"""Receipts, their items and tenders; a till entry may now point at its receipt.

Revision ID: fr0005_receipts_items_tenders_and_till_links
Revises: fr0004_tills_till_shifts_and_till_entries
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0005_receipts_items_tenders_and_till_links"
down_revision = "fr0004_tills_till_shifts_and_till_entries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("outlet_id", sa.Uuid(), nullable=False),
        sa.Column("shift_id", sa.Uuid(), nullable=True),
        sa.Column("receipt_no", sa.String(32), nullable=False),
        sa.Column("receipt_state", sa.String(10), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("issued_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_on", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("receipt_id", name="receipts_pkey"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"], name="receipts_merchant_id_fkey"),
        sa.ForeignKeyConstraint(["outlet_id"], ["outlets.outlet_id"], name="receipts_outlet_id_fkey"),
        sa.ForeignKeyConstraint(["shift_id"], ["till_shifts.shift_id"], name="receipts_shift_id_fkey"),
        sa.UniqueConstraint("outlet_id", "receipt_no", name="receipts_outlet_id_receipt_no_key"),
    )
    op.create_index("receipts_shift_id_idx", "receipts", ["shift_id"])
    op.create_index("receipts_issued_on_idx", "receipts", ["issued_on"])
    op.create_table(
        "receipt_items",
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="receipt_items_pkey"),
        sa.ForeignKeyConstraint(["receipt_id"], ["receipts.receipt_id"], name="receipt_items_receipt_id_fkey"),
        sa.ForeignKeyConstraint(["unit_id"], ["inventory_units.unit_id"], name="receipt_items_unit_id_fkey"),
        sa.UniqueConstraint("receipt_id", "line_no", name="receipt_items_receipt_id_line_no_key"),
    )
    op.create_index("receipt_items_unit_id_idx", "receipt_items", ["unit_id"])
    op.create_table(
        "receipt_tenders",
        sa.Column("tender_id", sa.Uuid(), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("tender_kind", sa.String(10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("change_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tender_id", name="receipt_tenders_pkey"),
        sa.ForeignKeyConstraint(["receipt_id"], ["receipts.receipt_id"], name="receipt_tenders_receipt_id_fkey"),
    )
    op.create_index("receipt_tenders_receipt_id_idx", "receipt_tenders", ["receipt_id"])
    with op.batch_alter_table("till_entries") as batch:
        batch.add_column(sa.Column("receipt_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key("till_entries_receipt_id_fkey", "receipts", ["receipt_id"], ["receipt_id"])


def downgrade() -> None:
    with op.batch_alter_table("till_entries") as batch:
        batch.drop_constraint("till_entries_receipt_id_fkey", type_="foreignkey")
        batch.drop_column("receipt_id")
    op.drop_index("receipt_tenders_receipt_id_idx", table_name="receipt_tenders")
    op.drop_table("receipt_tenders")
    op.drop_index("receipt_items_unit_id_idx", table_name="receipt_items")
    op.drop_table("receipt_items")
    op.drop_index("receipts_issued_on_idx", table_name="receipts")
    op.drop_index("receipts_shift_id_idx", table_name="receipts")
    op.drop_table("receipts")
