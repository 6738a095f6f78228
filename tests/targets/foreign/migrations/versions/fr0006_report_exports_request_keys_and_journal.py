"""Report exports (files on disk with their SHA-256), request keys and the activity journal.

``activity_journal`` has no primary key, on purpose.

Revision ID: fr0006_report_exports_request_keys_and_journal
Revises: fr0005_receipts_items_tenders_and_till_links
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0006_report_exports_request_keys_and_journal"
down_revision = "fr0005_receipts_items_tenders_and_till_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_exports",
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("report_kind", sa.String(24), nullable=False),
        sa.Column("export_state", sa.String(10), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.Column("row_total", sa.Integer(), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("generated_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("export_id", name="report_exports_pkey"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"], name="report_exports_merchant_id_fkey"),
        sa.ForeignKeyConstraint(["requested_by"], ["accounts.account_id"], name="report_exports_requested_by_fkey"),
    )
    op.create_index("report_exports_merchant_id_idx", "report_exports", ["merchant_id"])
    op.create_table(
        "request_keys",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("request_key", sa.String(80), nullable=False),
        sa.Column("route", sa.String(120), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("answered_status", sa.Integer(), nullable=False),
        sa.Column("stored_on", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "request_key", name="request_keys_pkey"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="request_keys_account_id_fkey"),
    )
    op.create_table(
        "activity_journal",
        sa.Column("occurred_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=True),
        sa.Column("actor_account_id", sa.Uuid(), nullable=True),
        sa.Column("verb", sa.String(40), nullable=False),
        sa.Column("subject_kind", sa.String(40), nullable=False),
        sa.Column("subject_ref", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"], name="activity_journal_merchant_id_fkey"),
        sa.ForeignKeyConstraint(
            ["actor_account_id"], ["accounts.account_id"], name="activity_journal_actor_account_id_fkey"
        ),
    )
    op.create_index("activity_journal_occurred_on_idx", "activity_journal", ["occurred_on"])


def downgrade() -> None:
    op.drop_index("activity_journal_occurred_on_idx", table_name="activity_journal")
    op.drop_table("activity_journal")
    op.drop_table("request_keys")
    op.drop_index("report_exports_merchant_id_idx", table_name="report_exports")
    op.drop_table("report_exports")
