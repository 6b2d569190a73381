"""Admin sign-in attempts: one row per attempt at the admin page's password or its preview link
(time, client address, browser session, target, outcome), counted by the sign-in limiter of every
app process (survey/study/sign_ins.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_sign_ins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("browser_session", sa.String(64), nullable=False),
        sa.Column("target", sa.String(8), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.CheckConstraint("outcome IN ('success', 'failure', 'refused')", name="admin_sign_in_outcome_values"),
        sa.CheckConstraint("target IN ('admin', 'preview')", name="admin_sign_in_target_values"),
    )
    op.create_index("ix_admin_sign_ins_address_at", "admin_sign_ins", ["address", "attempted_at"])
    op.create_index("ix_admin_sign_ins_browser_session_at", "admin_sign_ins", ["browser_session", "attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_admin_sign_ins_browser_session_at", table_name="admin_sign_ins")
    op.drop_index("ix_admin_sign_ins_address_at", table_name="admin_sign_ins")
    op.drop_table("admin_sign_ins")
