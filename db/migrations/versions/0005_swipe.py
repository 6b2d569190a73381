"""The swipe protocol: every product a participant swipes, the swipe pool, and rounds whose
reference the participant chooses.

A swipe round is one trial whose reference is not known when it is planned: the participant
chooses it by liking a product of the category's pool. So ``trials.reference_id`` may now be
NULL (until the choice; for ever when a round ends without a like), and ``trials.with_check``
says that the round's judged set carries an attention check (one product of another category).
Each product shown in a round is one row of ``swipes``, created when it is shown (a reload shows
the same product) and answered once. ``catalog_items.is_reference`` marks the references the
researcher's protocols (rating, pairwise, ranking) judge, ``catalog_items.in_swipe_pool`` the
products a swipe round can show; the upgrade marks every item that has a condition grid as a
reference (which is what a reference was before this revision) and none as in the pool.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalog_items", sa.Column("is_reference", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("catalog_items", sa.Column("in_swipe_pool", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE catalog_items SET is_reference = true "
        "WHERE id IN (SELECT reference_id FROM grids WHERE kind = 'condition')"
    )
    with op.batch_alter_table("trials") as batch:
        batch.alter_column("reference_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("with_check", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "swipes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("participant_id", sa.Integer(), sa.ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("trial_id", sa.Integer(), sa.ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("catalog_items.id"), nullable=False),
        sa.Column("grid_id", sa.String(32), sa.ForeignKey("grids.id"), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("is_check", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("liked", sa.Boolean(), nullable=True),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_ms", sa.Integer(), nullable=True),
        sa.UniqueConstraint("trial_id", "phase", "seq"),
        sa.CheckConstraint("phase IN ('choose', 'pick', 'judge')", name="swipe_phase_values"),
    )
    op.create_index("ix_swipes_participant_id", "swipes", ["participant_id"])
    op.create_index("ix_swipes_trial_id", "swipes", ["trial_id"])


def downgrade() -> None:
    op.drop_index("ix_swipes_trial_id", table_name="swipes")
    op.drop_index("ix_swipes_participant_id", table_name="swipes")
    op.drop_table("swipes")
    op.execute("DELETE FROM trials WHERE reference_id IS NULL")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("with_check")
        batch.alter_column("reference_id", existing_type=sa.Integer(), nullable=False)
    op.drop_column("catalog_items", "in_swipe_pool")
    op.drop_column("catalog_items", "is_reference")
