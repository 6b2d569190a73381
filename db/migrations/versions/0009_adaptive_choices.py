"""Adaptive pairs (``pairwise_assignment = "adaptive"``): per participant the state the adaptive choice
of their pairwise units saw (``adaptive_plans``: seed, floor, the win matrix and the highest answer id
the fit used, the unit counts), and each unit chosen (``adaptive_choices``: position in the choice
order, unit key, phase, gain), so that ``lookalike study replay`` can redo every choice.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adaptive_plans",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column("last_response_id", sa.Integer(), nullable=True),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("wins", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("participant_id"),
    )
    op.create_table(
        "adaptive_choices",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(120), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("gain", sa.Float(), nullable=True),
        sa.CheckConstraint("phase IN ('floor', 'adaptive')", name="adaptive_phase_values"),
        sa.ForeignKeyConstraint(["participant_id"], ["adaptive_plans.participant_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("participant_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("adaptive_choices")
    op.drop_table("adaptive_plans")
