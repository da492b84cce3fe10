"""audit trail: truncation refused; rows of views chained after they are written

PostgreSQL's row triggers do not fire on TRUNCATE: a statement trigger refuses it now. A row may
be written without its place in the chain (seq, prev_hash and row_hash empty, its own HMAC in
event_mac) and given that place once, later, under the chain head's lock; the append-only trigger
lets exactly that one change through and refuses every other update and every delete.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-03 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None

#: Columns a sealed row keeps as they were written; sealing may only fill seq, prev_hash, row_hash.
_WRITTEN = ('id', 'occurred_at', 'actor_id', 'actor_name', 'action', 'object_type', 'object_id', 'outcome',
            'ip_address', 'user_agent', 'details::text', 'event_mac')

_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND NEW.prev_hash IS NOT NULL AND NEW.row_hash IS NOT NULL
       AND ({new}) IS NOT DISTINCT FROM ({old}) THEN
        RETURN NEW;  -- a written row takes its place in the chain, once
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only';
END;
$$;
""".format(new=', '.join(f'NEW.{c}' for c in _WRITTEN), old=', '.join(f'OLD.{c}' for c in _WRITTEN))

_ORIGINAL = """
CREATE OR REPLACE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only';
END;
$$;
"""

_NO_TRUNCATE = """
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only();
"""


def upgrade() -> None:
    with op.batch_alter_table('audit_logs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_mac', sa.String(length=64), nullable=True))
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column('row_hash', existing_type=sa.String(length=64), nullable=True)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_APPEND_ONLY)
        op.execute(_NO_TRUNCATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_logs_no_truncate ON audit_logs')
        op.execute(_ORIGINAL)
    pending = op.get_bind().execute(sa.text('SELECT count(*) FROM audit_logs WHERE seq IS NULL')).scalar()
    if pending:
        # The older schema has no row without a place in the chain: seal them, lose nothing.
        raise RuntimeError(f'{pending} audit rows await their place in the chain: run '
                           '`finops-dashboard audit checkpoint` (it seals them) and downgrade again')
    with op.batch_alter_table('audit_logs', schema=None) as batch_op:
        batch_op.alter_column('row_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('event_mac')
