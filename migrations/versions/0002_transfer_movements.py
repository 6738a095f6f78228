"""Transfer movements ledger, backfilled from existing transfer lines.

Until this revision a transfer's history was only its lines' current status. Each
dispatch, receipt and return now leaves a movement row; existing transfers get the
movements their lines imply, dated from the transfer's own timestamps.

Revision ID: 0002_transfer_movements
Revises: 0001_initial_schema
Create Date: 2025-05-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_transfer_movements"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (movement kind, line statuses it applies to, store it leaves, store it reaches, timestamp)
_BACKFILL = (
    ("DISPATCH", ("IN_TRANSIT", "RECEIVED", "RETURNED"), "origin_store_id", None,
     "COALESCE(t.dispatched_at, t.updated_at)"),
    ("RECEIVE", ("RECEIVED",), None, "destination_store_id",
     "COALESCE(l.received_at, t.received_at, t.updated_at)"),
    ("RETURN", ("RETURNED",), None, "origin_store_id",
     "COALESCE(t.canceled_at, t.updated_at)"),
)


def upgrade() -> None:
    op.create_table(
        "transfer_movements",
        sa.Column("id", BIGINT_PK, primary_key=True),
        sa.Column("transfer_id", sa.Uuid(), sa.ForeignKey("transfers.id"), nullable=False, index=True),
        sa.Column("transfer_line_id", BIGINT_PK, sa.ForeignKey("transfer_lines.id"), nullable=False),
        sa.Column("stock_item_id", BIGINT_PK, sa.ForeignKey("stock_items.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=True),
        sa.Column("to_store_id", sa.Uuid(), sa.ForeignKey("stores.id"), nullable=True),
        sa.Column("actor_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for kind, statuses, from_col, to_col, stamp in _BACKFILL:
        from_expr = f"t.{from_col}" if from_col else "NULL"
        to_expr = f"t.{to_col}" if to_col else "NULL"
        op.get_bind().execute(
            sa.text(
                "INSERT INTO transfer_movements "
                "(transfer_id, transfer_line_id, stock_item_id, kind, from_store_id, to_store_id, actor_id, created_at) "
                f"SELECT t.id, l.id, l.stock_item_id, :kind, {from_expr}, {to_expr}, t.created_by, {stamp} "
                "FROM transfer_lines l JOIN transfers t ON t.id = l.transfer_id "
                "WHERE l.status IN :statuses ORDER BY l.id"
            ).bindparams(sa.bindparam("statuses", expanding=True)),
            {"kind": kind, "statuses": list(statuses)},
        )


def downgrade() -> None:
    op.drop_index("ix_transfer_movements_transfer_id", table_name="transfer_movements")
    op.drop_table("transfer_movements")
