"""Participant lifecycle: a status per participant with a time per transition, the activity the
time limit runs from, comprehension attempts, repeat trials, and answered counts per unit.

Before this revision a participant who abandoned kept their place and their units forever. Now a
participant is ``active``, ``completed``, ``returned``, ``timed_out`` or ``screened_out``; those
who leave free their place and their unanswered units (:mod:`survey.participants.lifecycle`). The upgrade marks
participants with a completion time ``completed`` and everyone else ``active`` (so nobody loses a
place: the time limit then applies to them from their last answer), sets ``last_active_at`` to the
last answer (else consent), and fills ``unit_counts.answered`` from the answers stored (attention
checks not counted, as the service counts them). ``unit_counts.trials`` is unchanged: every
participant is active or completed, so it already counts what the service counts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PARTICIPANT_TIMES = ("last_active_at", "returned_at", "timed_out_at", "screened_out_at", "comprehension_passed_at")


def upgrade() -> None:
    op.add_column("participants", sa.Column("status", sa.String(16), nullable=False, server_default="active"))
    for name in _PARTICIPANT_TIMES:
        op.add_column("participants", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("participants", sa.Column("comprehension_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_participants_status", "participants", ["status"])
    op.add_column("trials", sa.Column("is_repeat", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("unit_counts", sa.Column("answered", sa.Integer(), nullable=False, server_default="0"))

    op.execute("UPDATE participants SET status = 'completed' WHERE completed_at IS NOT NULL")
    op.execute(
        "UPDATE participants SET last_active_at = COALESCE("
        "(SELECT MAX(r.created_at) FROM responses r WHERE r.participant_id = participants.id), "
        "consented_at, created_at)"
    )
    op.execute(
        "UPDATE unit_counts SET answered = ("
        "SELECT COUNT(*) FROM responses r JOIN trials t ON t.id = r.trial_id "
        "JOIN participants p ON p.id = t.participant_id "
        "WHERE p.study_id = unit_counts.study_id AND t.unit = unit_counts.unit AND NOT t.is_catch)"
    )


def downgrade() -> None:
    op.drop_column("unit_counts", "answered")
    op.drop_column("trials", "is_repeat")
    op.drop_index("ix_participants_status", table_name="participants")
    op.drop_column("participants", "comprehension_attempts")
    for name in reversed(_PARTICIPANT_TIMES):
        op.drop_column("participants", name)
    op.drop_column("participants", "status")
