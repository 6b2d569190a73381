"""Maintained trial counts per unit, so that starting a participant does not count every trial.

The assignment gives each new participant the least-judged units. Before this revision it
counted the study's trials on every start, which grew with the study (a participant joining a
study of 1,600 paid for all their trials). ``unit_counts`` holds those counts; the service
updates it in the transaction that inserts the trials. The upgrade fills it from the trials
already stored (attention checks not counted, as the service counts them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counts = op.create_table(
        "unit_counts",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=120), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("study_id", "unit"),
    )
    trials = sa.table("trials", sa.column("participant_id"), sa.column("unit"), sa.column("is_catch", sa.Boolean()))
    participants = sa.table("participants", sa.column("id"), sa.column("study_id"))
    assigned = (
        sa.select(participants.c.study_id, trials.c.unit, sa.func.count())
        .select_from(trials.join(participants, participants.c.id == trials.c.participant_id))
        .where(trials.c.is_catch.is_(sa.false()))
        .group_by(participants.c.study_id, trials.c.unit)
    )
    op.execute(counts.insert().from_select(["study_id", "unit", "trials"], assigned))


def downgrade() -> None:
    op.drop_table("unit_counts")
