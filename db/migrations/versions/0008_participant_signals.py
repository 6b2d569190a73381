"""Signals of automated participants, stored with the participant (survey/participants/bot_signals.py):
``bot_signals`` (the names of the signals seen, e.g. ``webdriver``, ``constant_times``),
``answer_digest`` (a hash of the participant's answer sequence, to find identical sequences across
participants) and ``browser_test`` (the project's own browser tests, marked with the secret the
test server was started with; never flagged).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("bot_signals", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("answer_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("browser_test", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_participants_answer_digest", ["answer_digest"])


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_index("ix_participants_answer_digest")
        batch.drop_column("browser_test")
        batch.drop_column("answer_digest")
        batch.drop_column("bot_signals")
