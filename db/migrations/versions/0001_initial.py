"""Initial schema: the tables of Lookalike 0.1 (its own "schema version 2", before Alembic).

Databases made before migrations existed carry a ``lookalike_schema`` table with version 2
instead of ``alembic_version``; ``db.migrate.upgrade`` stamps them at this revision first.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 09:42:08.948429
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('catalog_root', sa.Text(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('completion_code', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('catalog_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.String(length=300), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=200), nullable=False),
    sa.Column('group_name', sa.String(length=300), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('study_id', 'item_id')
    )
    with op.batch_alter_table('catalog_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_items_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_items_study_id'), ['study_id'], unique=False)

    op.create_table('conditions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=100), nullable=False),
    sa.Column('segmenter', sa.String(length=100), nullable=False),
    sa.Column('method_params', sa.JSON(), nullable=False),
    sa.Column('segmenter_params', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('study_id', 'method', 'segmenter')
    )
    with op.batch_alter_table('conditions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conditions_study_id'), ['study_id'], unique=False)

    op.create_table('participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('url_params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consented_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('instructions_done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('trials_done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('demographics', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token')
    )
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participants_external_id'), ['external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_participants_study_id'), ['study_id'], unique=False)

    op.create_table('grids',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('reference_id', sa.Integer(), nullable=False),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['reference_id'], ['catalog_items.id'], ),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grids_reference_id'), ['reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grids_study_id'), ['study_id'], unique=False)

    op.create_table('objective_metrics',
    sa.Column('condition_id', sa.Integer(), nullable=False),
    sa.Column('recall_at_1', sa.Double(), nullable=False),
    sa.Column('recall_at_5', sa.Double(), nullable=False),
    sa.Column('mean_average_precision', sa.Double(), nullable=False),
    sa.Column('queries', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['condition_id'], ['conditions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('condition_id')
    )
    op.create_table('segmentations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('catalog_item_id', sa.Integer(), nullable=False),
    sa.Column('segmenter', sa.String(length=100), nullable=False),
    sa.Column('coverage', sa.Double(), nullable=False),
    sa.Column('found', sa.Boolean(), nullable=False),
    sa.Column('mask_path', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['catalog_item_id'], ['catalog_items.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('catalog_item_id', 'segmenter')
    )
    with op.batch_alter_table('segmentations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segmentations_study_id'), ['study_id'], unique=False)

    op.create_table('trials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('protocol', sa.String(length=20), nullable=False),
    sa.Column('reference_id', sa.Integer(), nullable=False),
    sa.Column('grid_ids', sa.JSON(), nullable=False),
    sa.Column('unit', sa.String(length=120), nullable=False),
    sa.Column('is_catch', sa.Boolean(), nullable=False),
    sa.Column('shown_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reference_id'], ['catalog_items.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('participant_id', 'position'),
    sa.UniqueConstraint('participant_id', 'unit')
    )
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trials_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trials_reference_id'), ['reference_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trials_unit'), ['unit'], unique=False)

    op.create_table('grid_conditions',
    sa.Column('grid_id', sa.String(length=32), nullable=False),
    sa.Column('condition_id', sa.Integer(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['condition_id'], ['conditions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grid_id', 'condition_id')
    )
    op.create_table('responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('ticks', sa.JSON(), nullable=True),
    sa.Column('choice', sa.String(length=8), nullable=True),
    sa.Column('best', sa.String(length=32), nullable=True),
    sa.Column('worst', sa.String(length=32), nullable=True),
    sa.Column('response_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("choice IS NULL OR choice IN ('left', 'right', 'tie')", name='choice_values'),
    sa.CheckConstraint('rating IS NULL OR rating BETWEEN 1 AND 7', name='rating_1_to_7'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trial_id'], ['trials.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('trial_id')
    )
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_responses_participant_id'), ['participant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_responses_participant_id'))

    op.drop_table('responses')
    op.drop_table('grid_conditions')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trials_unit'))
        batch_op.drop_index(batch_op.f('ix_trials_reference_id'))
        batch_op.drop_index(batch_op.f('ix_trials_participant_id'))

    op.drop_table('trials')
    with op.batch_alter_table('segmentations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segmentations_study_id'))

    op.drop_table('segmentations')
    op.drop_table('objective_metrics')
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grids_study_id'))
        batch_op.drop_index(batch_op.f('ix_grids_reference_id'))

    op.drop_table('grids')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participants_study_id'))
        batch_op.drop_index(batch_op.f('ix_participants_external_id'))

    op.drop_table('participants')
    with op.batch_alter_table('conditions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conditions_study_id'))

    op.drop_table('conditions')
    with op.batch_alter_table('catalog_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_items_study_id'))
        batch_op.drop_index(batch_op.f('ix_catalog_items_category'))

    op.drop_table('catalog_items')
    op.drop_table('studies')
