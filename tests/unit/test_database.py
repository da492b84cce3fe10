"""Database helpers that must behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from models import ImportBatch
from services import database


def _batches() -> int:
    with database.session_scope() as s:
        return s.scalar(select(func.count()).select_from(ImportBatch))


class _Undo(Exception):
    pass


def test_a_savepoint_first_in_a_transaction_nests_and_releasing_it_commits_nothing(db_url):
    # Python's sqlite3 opens no transaction before a SAVEPOINT: released, it would commit.
    with pytest.raises(_Undo), database.session_scope() as s:
        with database.savepoint(s):
            s.add(ImportBatch(source="focus", billing_period=dt.date(2026, 1, 1)))
        raise _Undo  # the outer transaction rolls back: what the savepoint held must go with it
    assert _batches() == 0


def test_rolling_back_to_a_savepoint_keeps_what_came_before(db_url):
    with database.session_scope() as s:
        s.add(ImportBatch(source="focus", billing_period=dt.date(2026, 1, 1)))
        with pytest.raises(_Undo), database.savepoint(s):
            s.add(ImportBatch(source="cur2", billing_period=dt.date(2026, 1, 1)))
            s.flush()
            raise _Undo
    with database.session_scope() as s:
        assert s.scalars(select(ImportBatch.source)).all() == ["focus"]
