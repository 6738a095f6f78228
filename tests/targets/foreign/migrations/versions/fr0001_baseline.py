"""Merchants, their outlets and their accounts.

Revision ID: fr0001_baseline
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("handle", sa.String(48), nullable=False),
        sa.Column("legal_name", sa.String(160), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("onboarded_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", name="merchants_pkey"),
        sa.UniqueConstraint("handle", name="merchants_handle_key"),
    )
    op.create_table(
        "outlets",
        sa.Column("outlet_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("outlet_code", sa.String(24), nullable=False),
        sa.Column("display_name", sa.String(160), nullable=False),
        sa.Column("opened_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("outlet_id", name="outlets_pkey"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"], name="outlets_merchant_id_fkey"),
        sa.UniqueConstraint("merchant_id", "outlet_code", name="outlets_merchant_id_outlet_code_key"),
    )
    op.create_index("outlets_merchant_id_idx", "outlets", ["merchant_id"])
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("home_outlet_id", sa.Uuid(), nullable=True),
        sa.Column("login_name", sa.String(80), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("pw_digest", sa.String(200), nullable=False),
        sa.Column("access_level", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("registered_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="accounts_pkey"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"], name="accounts_merchant_id_fkey"),
        sa.ForeignKeyConstraint(["home_outlet_id"], ["outlets.outlet_id"], name="accounts_home_outlet_id_fkey"),
        sa.UniqueConstraint("login_name", name="accounts_login_name_key"),
        sa.UniqueConstraint("email", name="accounts_email_key"),
    )
    op.create_index("accounts_merchant_id_idx", "accounts", ["merchant_id"])


def downgrade() -> None:
    op.drop_index("accounts_merchant_id_idx", table_name="accounts")
    op.drop_table("accounts")
    op.drop_index("outlets_merchant_id_idx", table_name="outlets")
    op.drop_table("outlets")
    op.drop_table("merchants")
