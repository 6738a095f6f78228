"""Tills, clerks' shifts on them and the cash entries of a shift.

Revision ID: fr0004_tills_till_shifts_and_till_entries
Revises: fr0003_consignments_items_and_event_journal
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0004_tills_till_shifts_and_till_entries"
down_revision = "fr0003_consignments_items_and_event_journal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tills",
        sa.Column("till_id", sa.Uuid(), nullable=False),
        sa.Column("outlet_id", sa.Uuid(), nullable=False),
        sa.Column("till_label", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("till_id", name="tills_pkey"),
        sa.ForeignKeyConstraint(["outlet_id"], ["outlets.outlet_id"], name="tills_outlet_id_fkey"),
        sa.UniqueConstraint("outlet_id", "till_label", name="tills_outlet_id_till_label_key"),
    )
    op.create_table(
        "till_shifts",
        sa.Column("shift_id", sa.Uuid(), nullable=False),
        sa.Column("till_id", sa.Uuid(), nullable=False),
        sa.Column("clerk_account_id", sa.Uuid(), nullable=False),
        sa.Column("shift_state", sa.String(8), nullable=False),
        sa.Column("float_minor", sa.BigInteger(), nullable=False),
        sa.Column("counted_minor", sa.BigInteger(), nullable=True),
        sa.Column("started_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_on", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("shift_id", name="till_shifts_pkey"),
        sa.ForeignKeyConstraint(["till_id"], ["tills.till_id"], name="till_shifts_till_id_fkey"),
        sa.ForeignKeyConstraint(
            ["clerk_account_id"], ["accounts.account_id"], name="till_shifts_clerk_account_id_fkey"
        ),
    )
    op.create_index("till_shifts_till_id_idx", "till_shifts", ["till_id"])
    op.create_table(
        "till_entries",
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("shift_id", sa.Uuid(), nullable=False),
        sa.Column("entry_kind", sa.String(10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.String(200), nullable=True),
        sa.Column("booked_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name="till_entries_pkey"),
        sa.ForeignKeyConstraint(["shift_id"], ["till_shifts.shift_id"], name="till_entries_shift_id_fkey"),
    )
    op.create_index("till_entries_shift_id_idx", "till_entries", ["shift_id"])


def downgrade() -> None:
    op.drop_index("till_entries_shift_id_idx", table_name="till_entries")
    op.drop_table("till_entries")
    op.drop_index("till_shifts_till_id_idx", table_name="till_shifts")
    op.drop_table("till_shifts")
    op.drop_table("tills")
