"""The one database session helper: engine set-up, sessions, and SQLite's exact money sum."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import NullPool

_session_factory: sessionmaker[Session] = sessionmaker(expire_on_commit=False)
_engine: Engine | None = None
#: The process whose pool _engine holds.
_pool_pid = os.getpid()


class _DecimalSum:
    """SQLite aggregate: exact sum of decimal strings (SQLite's own SUM goes through floats)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: object) -> None:
        if value is not None:
            self.total += Decimal(str(value))

    def finalize(self) -> str:
        return format(self.total, "f")


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.create_aggregate("decsum", 1, _DecimalSum)  # type: ignore[arg-type]  # the class is a valid aggregate factory
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings this product needs on each database."""
    if url.startswith("sqlite"):
        # No pool: a connection is opened per session and closed after it, so a process forked
        # for a background job (Dash's diskcache manager) never inherits an open SQLite handle.
        kwargs.setdefault("poolclass", NullPool)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    # A generic plan on a date-range query was measured 10x slower: keep plans custom.
    connect_args = {"prepare_threshold": None} if url.startswith("postgresql+psycopg") else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def configure(url: str, **kwargs: Any) -> Engine:
    """Bind the process-wide session factory to a database URL."""
    global _engine, _pool_pid
    if _engine is not None:
        if str(_engine.url) == str(make_url(url)) and not kwargs:
            return _engine
        _engine.dispose()
    _engine, _pool_pid = make_engine(url, **kwargs), os.getpid()
    _session_factory.configure(bind=_engine)
    return _engine


def get_engine() -> Engine:
    """Return the configured engine."""
    if _engine is None:
        raise RuntimeError("the database is not configured: call services.database.configure()")
    return _engine


def after_fork() -> None:
    """Drop connections inherited from a parent process (never share sockets across a fork).

    Does nothing in the process that made the pool (a thread-pool worker calls this from every
    background callback: its pool is its own and shared by its threads)."""
    global _pool_pid
    if _engine is not None and _pool_pid != os.getpid():
        _engine.dispose(close=False)
        _pool_pid = os.getpid()


#: What the application's role may do on the audit trail: add rows, read them, and give a row
#: written without its place in the chain that place (the append-only trigger allows it once).
_AUDIT_GRANTS = (
    "GRANT SELECT, INSERT ON audit_logs TO {role}",
    "GRANT UPDATE (seq, prev_hash, row_hash) ON audit_logs TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON audit_chain_head TO {role}",
)


def grant_app_role(connection: Connection, *, role: str) -> None:
    """Grant a PostgreSQL role the application's rights: rows of every table, but on the audit
    trail only adding and reading (never TRUNCATE, nor ownership, which ALTER TABLE needs)."""
    name = connection.dialect.identifier_preparer.quote(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {name}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}",
    ]
    if int(connection.exec_driver_sql("SHOW server_version_num").scalar_one()) >= 170000:
        # PostgreSQL 17 lets a non-owner ANALYZE (the import does after big loads).
        statements.append(f"GRANT MAINTAIN ON ALL TABLES IN SCHEMA public TO {name}")
    statements += [f"REVOKE ALL ON audit_logs, audit_chain_head, alembic_version FROM {name}",
                   f"GRANT SELECT ON alembic_version TO {name}",
                   *(grant.format(role=name) for grant in _AUDIT_GRANTS)]
    for statement in statements:
        connection.exec_driver_sql(statement)


@contextmanager
def session_scope(*, commit_on: tuple[type[BaseException], ...] = ()) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on any error.

    ``commit_on`` names errors whose writes must stand all the same, such as a failed sign-in
    whose attempt record and lockout are the very point of the failure.
    """
    session = _session_factory()
    try:
        yield session
        session.commit()
    except commit_on:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def savepoint(session: Session) -> SessionTransaction:
    """Begin a savepoint that truly nests, on every database (use as a context manager).

    Python's sqlite3 (before 3.12) opens a transaction only before a data change, not before a
    SAVEPOINT: a savepoint taken first would be a transaction of its own, and releasing it would
    commit. So on SQLite a transaction is begun first when none is open.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.driver_connection
        if raw is not None and not raw.in_transaction:
            connection.exec_driver_sql("BEGIN")
    return session.begin_nested()
