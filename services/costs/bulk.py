"""Bulk writes of Arrow tables: binary COPY on PostgreSQL, one positional executemany on SQLite;
and a thread that makes the next tables while one is written."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import JSON, BigInteger, Connection, Date, Integer, Numeric, SmallInteger, String, bindparam, insert

from models.base import Base
from models.types import MONEY_SCALE, Money

#: Rows per COPY write (encoded) and per SQLite insert (as Python objects): bound the memory one
#: write takes.
COPY_ROWS = 50_000
INSERT_ROWS = 5_000


def write_table(connection: Connection, name: str, table: Any) -> None:
    """Write an Arrow table into a table: one COPY on PostgreSQL, else inserts a slice at a time."""
    if connection.dialect.name == "postgresql":
        copy_table(connection, name, table)
        return
    for part in table.to_batches(max_chunksize=INSERT_ROWS):
        insert_rows(connection, name, part)


def insert_rows(connection: Connection, name: str, table: Any) -> None:
    """Insert an Arrow table (or record batch) with one ``executemany`` (SQLite), cast to the
    columns' types as a COPY is (``arrow_schema``), then values as the column types store them
    there: money as its text (``Money``), dates as ISO text, numbers."""
    import pyarrow as pa

    columns = []
    for column in table.cast(arrow_schema(name, table.column_names)).columns:
        kind = column.type
        if pa.types.is_decimal(kind):
            # Money is text on SQLite; other decimals (quantities) are stored as REAL there anyway.
            column = column.cast(pa.string()) if kind.scale == MONEY_SCALE else column.cast(pa.float64())
        elif pa.types.is_date(kind):
            column = column.cast(pa.string())
        columns.append(column.to_pylist())
    target = Base.metadata.tables[name]
    statement = insert(target).values({c: bindparam(c) for c in table.column_names})
    # Positional values straight to the driver: SQLAlchemy's per-value type handling is skipped
    # (the casts above did its work), which makes the insert several times faster.
    connection.exec_driver_sql(str(statement.compile(dialect=connection.dialect)), list(zip(*columns, strict=True)))


def copy_table(connection: Connection, name: str, table: Any) -> None:
    """COPY an Arrow table into a PostgreSQL table."""
    with copy_writer(connection, name, table.column_names) as write:
        write(table)


def arrow_schema(name: str, columns: Sequence[str]) -> Any:
    """The Arrow types of these columns of a table, as bulk writes send them: for a binary COPY
    each must be the exact binary form of its column's type (the server reads binary values as
    they are, never converting)."""
    import pyarrow as pa

    def arrow_type(kind: Any) -> Any:
        if isinstance(kind, Money):
            kind = kind.impl
        for sql, arrow in ((BigInteger, pa.int64()), (SmallInteger, pa.int16()), (Integer, pa.int32()),
                           (Date, pa.date32()), (String, pa.string()), (JSON, pa.string())):
            if isinstance(kind, sql):
                return arrow
        if isinstance(kind, Numeric) and kind.precision is not None:
            return pa.decimal128(kind.precision, kind.scale or 0)
        raise TypeError(f"no binary COPY form for {kind!r}")

    table = Base.metadata.tables[name]
    return pa.schema([pa.field(c, arrow_type(table.c[c].type)) for c in columns])


@contextmanager
def copy_writer(connection: Connection, name: str, columns: Sequence[str]) -> Iterator[Callable[[Any], None]]:
    """Open one COPY into a PostgreSQL table and give a function that sends Arrow tables into it.

    Rows go in PostgreSQL's binary COPY format, encoded from the Arrow columns by pgpq (Rust):
    against CSV text the server spends about half the time reading them (no numbers or dates
    parsed) and the encoding takes about half of Arrow's CSV writer. Tables are cast to the columns'
    types first (``arrow_schema``), so a value that does not fit its column (a number with more
    decimals than it keeps, an integer out of range) raises here and is never stored.
    One COPY for all of them: the server stores rows as they arrive while the caller prepares the
    next (a COPY per chunk would wait for the server at the end of each, and the two cores would
    take turns). Nothing else may use the connection until the block ends; an exception in it
    aborts the COPY (and so the transaction).
    """
    import pgpq

    schema = arrow_schema(name, columns)
    encoder = pgpq.ArrowToPostgresBinaryEncoder(schema)
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]  # psycopg 3 connection
        statement = f"COPY {name} ({', '.join(columns)}) FROM STDIN (FORMAT binary)"
        with cursor.copy(statement) as copy:
            copy.write(encoder.write_header())

            def write(table: Any) -> None:
                if list(table.column_names) != list(columns):
                    raise ValueError(f"columns {table.column_names} where the COPY has {list(columns)}")
                for part in table.cast(schema).to_batches(max_chunksize=COPY_ROWS):
                    copy.write(encoder.write_batch(part))

            yield write
            copy.write(encoder.finish())


_Item = TypeVar("_Item")
#: Items a ``Prefetched`` thread makes ahead at most (each a chunk of rows: bounds the memory).
PREFETCH_DEPTH = 2


class Prefetched(Generic[_Item]):
    """``items`` made by a background thread from the moment this is made, at most ``depth``
    ahead, and iterated here; an exception there is raised here. Use it as a context manager:
    leaving stops the thread (once it has finished the item it is making) and closes ``items``.

    On two cores, making the next tables (mostly Arrow, which lets go of the GIL) overlaps with
    writing one into the database. ``items`` must not use the database connection.
    """

    def __init__(self, items: Iterator[_Item], *, depth: int = PREFETCH_DEPTH) -> None:
        self._items = items
        self._ready: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._produce, name="bulk-prefetch", daemon=True)
        self._worker.start()

    def _hand(self, entry: tuple[bool, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._hand((True, item)):
                    return
            self._hand((False, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._hand((False, exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[_Item]:
        while not self._stop.is_set():
            more, value = self._ready.get()
            if not more:
                self._stop.set()
                if value is not None:
                    raise cast(BaseException, value)
                return
            yield cast(_Item, value)

    def close(self) -> None:
        self._stop.set()
        self._worker.join()

    def __enter__(self) -> Prefetched[_Item]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
