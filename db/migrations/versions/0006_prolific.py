"""Prolific in the loop: a record of every sync with Prolific and of every action taken there.

``prolific_syncs``: one row per reconciliation of a study with its Prolific submissions (when, by
whom, the submissions per status, the participants it released, the mismatches, or why the API
could not be read). ``prolific_actions``: one row per approval or rejection sent to Prolific (who,
when, what was sent, what the API answered). Neither table ever holds the API token.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prolific_syncs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("prolific_study_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("released", sa.JSON(), nullable=False),
        sa.Column("mismatches", sa.JSON(), nullable=False),
    )
    op.create_index("ix_prolific_syncs_study_id", "prolific_syncs", ["study_id"])
    op.create_table(
        "prolific_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("participant_pid", sa.String(200), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_prolific_actions_study_id", "prolific_actions", ["study_id"])


def downgrade() -> None:
    op.drop_index("ix_prolific_actions_study_id", table_name="prolific_actions")
    op.drop_table("prolific_actions")
    op.drop_index("ix_prolific_syncs_study_id", table_name="prolific_syncs")
    op.drop_table("prolific_syncs")
