from __future__ import annotations

import pytest
from sqlalchemy import text, update

from models import AuditChainHead, AuditLog
from services import audit, database
from services.identity.permissions import Actor

ALICE = Actor(user_id=None, username="alice", ip_address="10.0.0.1", user_agent="pytest")


def _write_events(count: int) -> None:
    with database.session_scope() as s:
        for i in range(count):
            audit.record(s, actor=ALICE, action="report.view", object_type="report", object_id=i)


def _tamper(sql: str) -> None:
    engine = database.get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only"))
        conn.execute(text(sql))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only"))


def test_untouched_chain_verifies(db_url):
    _write_events(5)
    with database.session_scope() as s:
        report = audit.verify_chain(s)
    assert report.is_intact and report.rows == 5


@pytest.mark.parametrize("sql, problem", [
    ("UPDATE audit_logs SET object_id = '99' WHERE seq = 3", "row 3 was altered"),
    ("DELETE FROM audit_logs WHERE seq = 2", "row 2 is missing"),
    ("DELETE FROM audit_logs WHERE seq = 5", "the chain ends at row 4"),
    ("UPDATE audit_logs SET seq = seq + 100 WHERE seq IN (2, 3)", "missing"),
])
def test_edit_deletion_reordering_or_truncation_is_found(db_url, sql, problem):
    _write_events(5)
    _tamper(sql)
    with database.session_scope() as s:
        report = audit.verify_chain(s)
    assert not report.is_intact
    assert any(problem in p for p in report.problems), report.problems


def test_truncating_rows_and_head_together_is_found_when_chain_was_longer(db_url):
    _write_events(4)
    with database.session_scope() as s:
        s.execute(update(AuditChainHead).values(last_seq=2))
    _tamper("DELETE FROM audit_logs WHERE seq > 2")
    with database.session_scope() as s:
        report = audit.verify_chain(s)
    # The head's hash no longer matches the last remaining row's hash.
    assert not report.is_intact


def test_postgresql_refuses_updates_to_the_audit_trail(db_url):
    if database.get_engine().dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    _write_events(1)
    with pytest.raises(Exception, match="append-only"), database.session_scope() as s:
        s.execute(update(AuditLog).values(action="edited"))


def test_postgresql_refuses_to_truncate_the_audit_trail(db_url):
    if database.get_engine().dialect.name != "postgresql":
        pytest.skip("the append-only triggers are PostgreSQL's")
    _write_events(1)
    with pytest.raises(Exception, match="append-only"), database.get_engine().begin() as conn:
        conn.execute(text("TRUNCATE audit_logs"))
    with database.session_scope() as s:
        assert audit.verify_chain(s).rows == 1

