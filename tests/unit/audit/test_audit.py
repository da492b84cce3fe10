from __future__ import annotations

import pytest
from sqlalchemy import text, update

from models import AuditChainHead, AuditLog
from services import audit, database
from services.identity.permissions import Actor
from tests.conftest import TEST_AUDIT_KEY

FORGED_HASH = "f" * 64
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


def _owner(*statements: str) -> None:
    """Run statements as the tables' owner with every audit trigger off (the probe's attacker)."""
    engine = database.get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_logs DISABLE TRIGGER USER"))
        for sql in statements:
            conn.execute(text(sql))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_logs ENABLE TRIGGER USER"))


def _set_head_to_last_row() -> None:
    _owner("DELETE FROM audit_chain_head",
           "INSERT INTO audit_chain_head (id, last_seq, last_hash) SELECT 1, seq, row_hash FROM audit_logs "
           "WHERE seq = (SELECT max(seq) FROM audit_logs)")


def _edit() -> None:
    _owner("UPDATE audit_logs SET object_id = '99' WHERE seq = 3")


def _delete() -> None:
    _owner("DELETE FROM audit_logs WHERE seq = 2")


def _reorder() -> None:
    _owner("UPDATE audit_logs SET seq = -2 WHERE seq = 2", "UPDATE audit_logs SET seq = 2 WHERE seq = 3",
           "UPDATE audit_logs SET seq = 3 WHERE seq = -2")


def _insert() -> None:
    # A made-up row slipped in after row 2, the rows after it renumbered and the head moved on.
    _owner("UPDATE audit_logs SET seq = -seq WHERE seq > 2", "UPDATE audit_logs SET seq = 1 - seq WHERE seq < 0",
           "INSERT INTO audit_logs (seq, occurred_at, actor_name, action, object_type, object_id, outcome, details, "  # noqa: S608 - a constant of this module
           "prev_hash, row_hash) SELECT 3, occurred_at, actor_name, 'report.view', 'report', 'x', outcome, details, "
           f"row_hash, '{FORGED_HASH}' FROM audit_logs WHERE seq = 2")
    _set_head_to_last_row()


def _insert_pending() -> None:
    # The app's role may insert: a row awaiting its place in the chain, but not one the app wrote.
    _owner("INSERT INTO audit_logs (occurred_at, actor_name, action, object_type, object_id, outcome, details, "  # noqa: S608 - a constant of this module
           "event_mac) SELECT occurred_at, 'mallory', action, object_type, object_id, outcome, details, "
           f"'{FORGED_HASH}' FROM audit_logs WHERE seq = 1")


def _cut_tail() -> None:
    # The probe: keep the first rows, truncate, put them back, and set the head to the last one kept.
    _owner("CREATE TEMPORARY TABLE kept AS SELECT * FROM audit_logs WHERE seq <= 5", "DELETE FROM audit_logs",
           "INSERT INTO audit_logs SELECT * FROM kept", "DROP TABLE kept")
    _set_head_to_last_row()


def _truncate() -> None:
    _owner("DELETE FROM audit_logs", "DELETE FROM audit_chain_head")


def _rewrite_head() -> None:
    _owner("UPDATE audit_chain_head SET last_seq = 4, last_hash = (SELECT row_hash FROM audit_logs WHERE seq = 4)")


@pytest.mark.parametrize("tamper, finding", [
    (_edit, "row 3 was altered"),
    (_delete, "row 2 is missing"),
    (_reorder, "row 2 is out of order"),
    (_insert, "row 3 was inserted"),
    (_insert_pending, "is not the application's"),
    (_cut_tail, "the chain was cut: it ends at row 5 but the checkpoint"),
    (_truncate, "the trail was truncated: it has no rows but the checkpoint"),
    (_rewrite_head, "the chain ends at row 10 but its head says row 4"),
], ids=["edit", "delete", "reorder", "insert", "insert-pending", "tail-cut", "truncate", "head-rewrite"])
def test_every_kind_of_tampering_is_found_and_named(db_url, tmp_path, tamper, finding):
    audit.configure(TEST_AUDIT_KEY, checkpoint_path=tmp_path / "checkpoints.jsonl")
    _write_events(10)
    with database.session_scope() as s:
        audit.write_checkpoint(s)
    tamper()
    with database.session_scope() as s:
        report = audit.verify_chain(s, checkpoints=audit.read_checkpoints())
    assert not report.is_intact
    assert any(finding in p for p in report.problems), report.problems


def test_a_checkpoint_not_signed_with_the_checkpoint_key_is_a_finding(db_url, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    audit.configure(TEST_AUDIT_KEY, checkpoint_path=path, checkpoint_key="another-checkpoint-key-0123")
    _write_events(3)
    with database.session_scope() as s:
        audit.write_checkpoint(s)
    audit.configure(TEST_AUDIT_KEY, checkpoint_path=path, checkpoint_key="the-right-checkpoint-key-99")
    with database.session_scope() as s:
        report = audit.verify_chain(s, checkpoints=audit.read_checkpoints())
    assert report.problems == ("checkpoint line 1 is not signed with the checkpoint key",)


def test_an_untouched_chain_verifies_against_its_checkpoints(db_url, tmp_path):
    audit.configure(TEST_AUDIT_KEY, checkpoint_path=tmp_path / "checkpoints.jsonl")
    _write_events(3)
    with database.session_scope() as s:
        audit.write_checkpoint(s)
    _write_events(2)
    with database.session_scope() as s:
        audit.write_checkpoint(s)
        report = audit.verify_chain(s, checkpoints=audit.read_checkpoints())
    assert report.is_intact and report.rows == 5 and report.checkpoints == 2
