"""rollups: no serial id column; rows are known by the columns they group by

Every import rewrites a whole billing period of each rollup, and nothing refers to a rollup row by
an id: the sequence and the primary key index cost a quarter of the time a period's rows took to
store (measured on the daily rollup, 110,000 rows). The ORM maps each rollup by its grouping columns.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLES = ('cost_daily_rollups', 'cost_allocation_rollups', 'cost_monthly_rollups', 'cost_summary_rollups',
          'cost_team_daily_rollups')


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column('id')


def downgrade() -> None:
    for name in TABLES:
        if op.get_bind().dialect.name == 'postgresql':
            # A serial column added to a filled table numbers its rows.
            op.execute(f'ALTER TABLE {name} ADD COLUMN id SERIAL PRIMARY KEY')
            continue
        with op.batch_alter_table(name, schema=None, recreate='always') as batch_op:
            batch_op.add_column(sa.Column('id', sa.Integer(), nullable=False))
            batch_op.create_primary_key(f'pk_{name}', ['id'])
