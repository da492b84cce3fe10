"""cost facts become narrow lines and the keys they repeat

A month's lines repeat a few thousand combinations of provider, accounts, service, region, usage
type, charge category, currency, unit, tags and allocation keys. Those move to
``cost_fact_keys``; a line keeps the key's id, its day, resource and amounts. PostgreSQL then
takes a bulk load about twice as fast (11 columns where there were 24), and the lines have no
primary key and no B-tree index to write: a BRIN index over (billing period, day) finds a
month. ``models.CostFact`` reads the two joined, as the old table read.

A key's id is a hash of its values, computed here exactly as ``services.costs.ingest.key_id`` does.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

import models.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

#: The key columns in the order their values are hashed (as ``services.costs.ingest.KEY_COLUMNS``).
KEY_COLUMNS = ('provider', 'payer_account_id', 'usage_account_id', 'service', 'service_category', 'region',
               'usage_type', 'charge_category', 'currency', 'usage_unit', 'tags', 'team', 'cost_center',
               'environment')
NULLABLE = ('service_category', 'usage_unit')
LINE_COLUMNS = ('id', 'usage_date', 'billing_period', 'resource_id', 'unblended_cost', 'amortized_cost',
                'net_cost', 'list_cost', 'usage_quantity', 'source', 'import_batch_id')


def _key_id(values: tuple[str | None, ...]) -> int:
    # A frozen copy of services.costs.ingest.key_id as of this revision: the values, then which are missing.
    text = '\x1f'.join([*('' if v is None else v for v in values), ''.join('n' if v is None else 'v' for v in values)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), 'big', signed=True)


def _same_key(dialect: str) -> str:
    same_null = 'IS NOT DISTINCT FROM' if dialect == 'postgresql' else 'IS'
    parts = []
    for column in KEY_COLUMNS:
        if column == 'tags':
            parts.append('CAST(f.tags AS TEXT) = CAST(k.tags AS TEXT)')
        elif column in NULLABLE:
            parts.append(f'f.{column} {same_null} k.{column}')
        else:
            parts.append(f'f.{column} = k.{column}')
    return ' AND '.join(parts)


def upgrade() -> None:
    op.create_table('cost_fact_keys',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('payer_account_id', sa.String(length=128), nullable=False),
    sa.Column('usage_account_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=128), nullable=False),
    sa.Column('service_category', sa.String(length=64), nullable=True),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('usage_type', sa.String(length=128), nullable=False),
    sa.Column('charge_category', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('usage_unit', sa.String(length=64), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('cost_center', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cost_fact_keys'))
    )
    with op.batch_alter_table('cost_fact_keys', schema=None) as batch_op:
        batch_op.create_index('ix_cost_fact_keys_payer', ['payer_account_id'], unique=False)

    op.create_table('cost_fact_lines',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('usage_date', sa.Date(), nullable=False),
    sa.Column('billing_period', sa.Date(), nullable=False),
    sa.Column('key_id', sa.BigInteger(), nullable=False),
    sa.Column('resource_id', sa.String(length=512), nullable=True),
    sa.Column('unblended_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('amortized_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('net_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('list_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('usage_quantity', sa.Numeric(precision=38, scale=15), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('import_batch_id', sa.Integer(), nullable=False)
    )
    with op.batch_alter_table('cost_fact_lines', schema=None) as batch_op:
        batch_op.create_index('ix_cost_fact_lines_period_date', ['billing_period', 'usage_date'], unique=False,
                              postgresql_using='brin')

    bind = op.get_bind()
    dialect = bind.dialect.name
    listed = ', '.join('CAST(tags AS TEXT)' if c == 'tags' else c for c in KEY_COLUMNS)
    keys = [tuple(row) for row in bind.execute(sa.text(f'SELECT DISTINCT {listed} FROM cost_facts'))]
    if keys:
        tags = 'CAST(:tags AS JSON)' if dialect == 'postgresql' else ':tags'
        insert = sa.text(f"INSERT INTO cost_fact_keys (id, {', '.join(KEY_COLUMNS)}) VALUES "
                         f"(:id, {', '.join(tags if c == 'tags' else f':{c}' for c in KEY_COLUMNS)})")
        bind.execute(insert, [{'id': _key_id(values), **dict(zip(KEY_COLUMNS, values, strict=True))}
                              for values in keys])
    line_columns = ', '.join(LINE_COLUMNS)
    bind.execute(sa.text(
        f"INSERT INTO cost_fact_lines ({line_columns}, key_id) "
        f"SELECT {', '.join(f'f.{c}' for c in LINE_COLUMNS)}, k.id "
        f"FROM cost_facts f JOIN cost_fact_keys k ON {_same_key(dialect)}"))
    op.drop_table('cost_facts')


def downgrade() -> None:
    op.create_table('cost_facts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('usage_date', sa.Date(), nullable=False),
    sa.Column('billing_period', sa.Date(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('payer_account_id', sa.String(length=128), nullable=False),
    sa.Column('usage_account_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=128), nullable=False),
    sa.Column('service_category', sa.String(length=64), nullable=True),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('usage_type', sa.String(length=128), nullable=False),
    sa.Column('charge_category', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=512), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('cost_center', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=32), nullable=False),
    sa.Column('unblended_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('amortized_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('net_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('list_cost', models.types.Money(precision=38, scale=11), nullable=False),
    sa.Column('usage_quantity', sa.Numeric(precision=38, scale=15), nullable=True),
    sa.Column('usage_unit', sa.String(length=64), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('import_batch_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cost_facts'))
    )
    with op.batch_alter_table('cost_facts', schema=None) as batch_op:
        batch_op.create_index('ix_cost_facts_date_account', ['usage_date', 'usage_account_id'], unique=False)
        batch_op.create_index('ix_cost_facts_period_source', ['billing_period', 'source'], unique=False)
    # Line ids loaded after 0009 do not fit the old integer key: lines are numbered anew.
    columns = [c for c in LINE_COLUMNS if c != 'id'] + list(KEY_COLUMNS)
    selected = ', '.join(f'l.{c}' if c in LINE_COLUMNS else f'k.{c}' for c in columns)
    op.get_bind().execute(sa.text(
        f"INSERT INTO cost_facts ({', '.join(columns)}) SELECT {selected} "
        "FROM cost_fact_lines l JOIN cost_fact_keys k ON l.key_id = k.id ORDER BY l.id"))
    op.drop_table('cost_fact_lines')
    with op.batch_alter_table('cost_fact_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_cost_fact_keys_payer')
    op.drop_table('cost_fact_keys')
