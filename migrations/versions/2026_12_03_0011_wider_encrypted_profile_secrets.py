"""aws_profiles: room for the longest session token and external id once encrypted

A session token may be 4,096 characters and an external id 1,224: sealed with AES-GCM and encoded,
they take about 5,500 and 1,700, more than their columns held (PostgreSQL refused such a profile).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('aws_profiles', schema=None) as batch_op:
        batch_op.alter_column('session_token_encrypted', existing_type=sa.String(4096), type_=sa.String(8192))
        batch_op.alter_column('external_id_encrypted', existing_type=sa.String(512), type_=sa.String(2048))


def downgrade() -> None:
    with op.batch_alter_table('aws_profiles', schema=None) as batch_op:
        batch_op.alter_column('external_id_encrypted', existing_type=sa.String(2048), type_=sa.String(512))
        batch_op.alter_column('session_token_encrypted', existing_type=sa.String(8192), type_=sa.String(4096))
