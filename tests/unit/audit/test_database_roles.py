"""On PostgreSQL the app runs under a role that may only add and read audit rows; migrations run
under the tables' owner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from dashapp.cli import main
from services import audit, database
from services.identity.permissions import Actor
from tests.conftest import PG_ADMIN_URL, TEST_AUDIT_KEY, TEST_KEYS, TEST_SECRET

ALICE = Actor(user_id=None, username="alice")


@pytest.fixture()
def two_roles(backend: str) -> Iterator[tuple[str, str]]:
    """A fresh database owned by an owner role, and an app role: both URLs, migrated by `db upgrade`."""
    if backend != "postgresql":
        pytest.skip("database roles are PostgreSQL's")
    tag = uuid.uuid4().hex[:8]
    owner, app, name = f"finops_owner_{tag}", f"finops_app_{tag}", f"finops_test_roles_{tag}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" LOGIN'))
        conn.execute(text(f'CREATE ROLE "{app}" LOGIN'))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgres@", "{}@", 1) + f"/{name}"
    owner_url, app_url = base.format(owner), base.format(app)
    result = CliRunner().invoke(main, ["db", "upgrade"], env={
        "DATABASE_URL": app_url, "MIGRATION_DATABASE_URL": owner_url, "SECRET_KEY": TEST_SECRET,
        "ENCRYPTION_KEYS": TEST_KEYS, "AUDIT_HMAC_KEY": TEST_AUDIT_KEY})
    try:
        assert result.exit_code == 0, result.output + repr(result.exception)
        yield owner_url, app_url
    finally:
        database.get_engine().dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{app}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{owner}"'))
        admin.dispose()


def test_the_app_role_appends_seals_and_verifies_the_trail(two_roles):
    _, app_url = two_roles
    database.configure(app_url)
    audit.configure(TEST_AUDIT_KEY)
    with database.session_scope() as s:
        audit.record(s, actor=ALICE, action="auth.login")
        audit.record(s, actor=ALICE, action="costs.view", defer_chain=True)
    with database.session_scope() as s:
        audit.seal_pending(s)
    with database.session_scope() as s:
        report = audit.verify_chain(s)
    assert report.is_intact and report.rows == 2


@pytest.mark.parametrize("sql, refusal", [
    ("TRUNCATE audit_logs", "permission denied"),
    ("UPDATE audit_logs SET action = 'edited'", "permission denied"),
    ("DELETE FROM audit_logs", "permission denied"),
    ("UPDATE audit_logs SET row_hash = prev_hash WHERE seq = 1", "append-only"),
    ("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only", "must be owner"),
    ("ALTER TABLE audit_logs DISABLE TRIGGER USER", "must be owner"),
    ("DROP TRIGGER audit_logs_no_truncate ON audit_logs", "must be owner"),
    ("TRUNCATE audit_chain_head", "permission denied"),
    ("DELETE FROM audit_chain_head", "permission denied"),
], ids=["truncate", "update", "delete", "rewrite-a-chained-row", "disable-trigger", "disable-all-triggers",
        "drop-trigger", "truncate-head", "delete-head"])
def test_the_app_role_cannot_cut_or_rewrite_the_trail(two_roles, sql, refusal):
    _, app_url = two_roles
    database.configure(app_url)
    audit.configure(TEST_AUDIT_KEY)
    with database.session_scope() as s:
        audit.record(s, actor=ALICE, action="auth.login")
    with pytest.raises(Exception, match=refusal), database.get_engine().begin() as conn:
        conn.execute(text(sql))
    with database.session_scope() as s:
        assert audit.verify_chain(s).rows == 1
