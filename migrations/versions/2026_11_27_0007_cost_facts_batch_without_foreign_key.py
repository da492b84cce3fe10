"""cost facts keep their import batch id as lineage, without a foreign key or an index

Checking the key costs PostgreSQL a trigger call per loaded row and the index another write:
together about 40% of a bulk load. Facts are only ever written in the transaction that creates
their batch, and nothing looks facts up by batch.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cost_facts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cost_facts_import_batch_id_import_batches'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_cost_facts_import_batch_id'))


def downgrade() -> None:
    # Facts whose batch is gone would break the restored key: they go, as the cascade would have done.
    op.execute(sa.text("DELETE FROM cost_facts WHERE import_batch_id NOT IN (SELECT id FROM import_batches)"))
    with op.batch_alter_table('cost_facts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cost_facts_import_batch_id'), ['import_batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_cost_facts_import_batch_id_import_batches'), 'import_batches',
                                    ['import_batch_id'], ['id'], ondelete='CASCADE')
