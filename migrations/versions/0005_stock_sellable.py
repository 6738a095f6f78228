"""Stock sellable flag, derived for existing rows from their status.

Before this revision "sellable" was implied by status; it is now stored so that a hold
(damage, recount) can take an item off sale without changing its RFID status. Existing
rows are sellable exactly when they are RFID or PENDING.

Revision ID: 0005_stock_sellable
Revises: 0004_exports_idempotency
Create Date: 2026-02-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_stock_sellable"
down_revision = "0004_exports_idempotency"
branch_labels = None
depends_on = None

_stock = sa.table("stock_items", sa.column("status", sa.String()), sa.column("sellable", sa.Boolean()))


def upgrade() -> None:
    op.add_column("stock_items", sa.Column("sellable", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        _stock.update().values(
            sellable=sa.case((_stock.c.status.in_(["RFID", "PENDING"]), sa.true()), else_=sa.false())
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("stock_items") as batch:
        batch.drop_column("sellable")
