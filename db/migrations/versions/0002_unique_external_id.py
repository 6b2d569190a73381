"""One participant per platform id and study, enforced by the database.

Two app processes (or two tabs) starting the same Prolific participant at once could both
create a participant; a unique index makes the second insert fail, and the service then
resumes the first. Also drops the pre-Alembic ``lookalike_schema`` table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dupes = op.get_bind().execute(sa.text(
        "SELECT study_id, external_id, COUNT(*) FROM participants WHERE external_id IS NOT NULL "
        "GROUP BY study_id, external_id HAVING COUNT(*) > 1")).all()
    if dupes:
        listed = ", ".join(f"study {s}: '{e}' x{n}" for s, e, n in dupes[:10])
        raise RuntimeError(f"participants share a platform id ({listed}); nothing was changed. Give the later "
                           "duplicates a distinct external_id (e.g. append '#2') and run the upgrade again")
    op.create_index("uq_participants_study_external", "participants", ["study_id", "external_id"], unique=True)
    op.execute("DROP TABLE IF EXISTS lookalike_schema")


def downgrade() -> None:
    op.drop_index("uq_participants_study_external", table_name="participants")
