"""Per-outlet grants of accounts (composite key) and the shelf a unit sits on.

Revision ID: fr0007_account_outlet_grants_and_unit_shelves
Revises: fr0006_report_exports_request_keys_and_journal
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0007_account_outlet_grants_and_unit_shelves"
down_revision = "fr0006_report_exports_request_keys_and_journal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_outlet_grants",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("outlet_id", sa.Uuid(), nullable=False),
        sa.Column("access_level", sa.String(16), nullable=False),
        sa.Column("granted_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "outlet_id", name="account_outlet_grants_pkey"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="account_outlet_grants_account_id_fkey"),
        sa.ForeignKeyConstraint(["outlet_id"], ["outlets.outlet_id"], name="account_outlet_grants_outlet_id_fkey"),
    )
    with op.batch_alter_table("inventory_units") as batch:
        batch.add_column(sa.Column("shelf", sa.String(24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inventory_units") as batch:
        batch.drop_column("shelf")
    op.drop_table("account_outlet_grants")
