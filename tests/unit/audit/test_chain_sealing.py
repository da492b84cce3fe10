"""Audit rows of views are appended without waiting on the chain head and chained later, in order."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, text

from models import AuditLog
from services import audit, database
from services.costs import queries
from services.identity.permissions import Actor

FINANCE = Actor(user_id=None, username="fin", roles=frozenset({"finance"}))
ALICE = Actor(user_id=None, username="alice", ip_address="10.0.0.1", user_agent="pytest")


def _postgresql_only() -> None:
    if database.get_engine().dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer at a time in: there is no lock of the head to wait on")


def test_an_overview_view_does_not_wait_for_the_chain_head_lock(db_url):
    _postgresql_only()
    with database.session_scope() as s:
        audit.record(s, actor=ALICE, action="auth.login")
    f = queries.parse_filter(start="2026-03-01", end="2026-03-18")
    with database.get_engine().connect() as holder, holder.begin():
        holder.execute(text("SELECT * FROM audit_chain_head WHERE id = 1 FOR UPDATE"))  # a long append
        with database.session_scope() as s:
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
            queries.get_overview(s, actor=FINANCE, cost_filter=f, today=dt.date(2026, 3, 18))
    with database.session_scope() as s:
        audit.seal_pending(s)
    with database.session_scope() as s:
        report = audit.verify_chain(s)
        last = s.scalar(select(AuditLog).order_by(AuditLog.seq.desc()).limit(1))
    assert report.is_intact and report.rows == 2
    assert last is not None and (last.seq, last.action) == (2, "costs.view")


def test_concurrent_views_and_other_events_all_end_in_one_intact_chain(db_url):
    _postgresql_only()
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for i in range(20):
                with database.session_scope() as s:
                    audit.record(s, actor=ALICE, action="costs.view", object_type="overview",
                                 object_id=f"{number}-{i}", defer_chain=True)
                if i % 5 == 0:
                    with database.session_scope() as s:
                        audit.record(s, actor=ALICE, action="auth.login", object_id=f"{number}-{i}")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with database.session_scope() as s:
        audit.seal_pending(s)
    with database.session_scope() as s:
        report = audit.verify_chain(s)
    assert report.is_intact and report.rows == 8 * (20 + 4) and report.pending == 0


def test_a_deferred_row_is_chained_at_once_when_no_one_else_holds_the_head(db_url):
    with database.session_scope() as s:
        row = audit.record(s, actor=ALICE, action="costs.view", defer_chain=True)
    with database.session_scope() as s:
        report = audit.verify_chain(s)
    assert row.seq == 1 and report.is_intact and report.rows == 1 and report.pending == 0


def test_concurrent_writers_each_take_the_next_place_in_the_chain(db_url, backend):
    import threading

    from services import database
    from services.audit import record, verify_chain
    from services.identity.permissions import Actor

    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(15):
                with database.session_scope() as s:
                    record(s, actor=Actor.system(f"w{worker}"), action="test.write", object_id=i)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    with database.session_scope() as s:
        report = verify_chain(s)
    assert report.is_intact and report.rows >= 90, report.problems
