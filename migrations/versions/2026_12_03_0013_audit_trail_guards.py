"""audit trail: truncation refused

PostgreSQL's row triggers do not fire on TRUNCATE: a statement trigger refuses it now.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-03 06:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None

_NO_TRUNCATE = """
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only();
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_NO_TRUNCATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_logs_no_truncate ON audit_logs')
