"""Bulk writes of Arrow tables: COPY on PostgreSQL, one positional executemany on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, insert

from models.base import Base
from models.types import MONEY_SCALE

#: Rows per COPY write (as CSV text) and per SQLite insert (as Python objects): bound the memory
#: one write takes.
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
    """Insert an Arrow table (or record batch) with one ``executemany`` (SQLite), values as the
    column types store them there: money as its text (``Money``), dates as ISO text, numbers."""
    import pyarrow as pa

    columns = []
    for column in table.columns:
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


@contextmanager
def copy_writer(connection: Connection, name: str, columns: Sequence[str]) -> Iterator[Callable[[Any], None]]:
    """Open one COPY into a PostgreSQL table and give a function that sends Arrow tables into it.

    Arrow's CSV writer (C++) formats the rows, several times faster than Python, and COPY beats
    INSERTs. One COPY for all of them: the server stores rows as they arrive while the caller
    prepares the next (a COPY per chunk would wait for the server at the end of each, and the two
    cores would take turns). Nothing else may use the connection until the block ends; an
    exception in it aborts the COPY (and so the transaction).
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]  # psycopg 3 connection
        statement = f"COPY {name} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
        with cursor.copy(statement) as copy:

            def write(table: Any) -> None:
                if list(table.column_names) != list(columns):
                    raise ValueError(f"columns {table.column_names} where the COPY has {list(columns)}")
                for part in table.to_batches(max_chunksize=COPY_ROWS):
                    buffer = pa.BufferOutputStream()
                    pa_csv.write_csv(part, buffer, pa_csv.WriteOptions(include_header=False))
                    copy.write(buffer.getvalue().to_pybytes())

            yield write
