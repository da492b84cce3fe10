"""Column types shared by the models (exact money on every database, UTC timestamps), and the few SQL
functions that must read the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, Integer, Numeric, String, literal, types
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

#: FOCUS carries 11 decimal places; 38 digits leave room for enterprise-sized sums.
MONEY_PRECISION = 38
MONEY_SCALE = 11


class Money(types.TypeDecorator[Decimal]):
    """Exact decimal money.

    PostgreSQL stores ``numeric(38, 11)``. SQLite has no decimal type (it would round through a
    float), so there the value is kept as canonical text and summed with the ``decsum``
    aggregate that ``services.database`` registers on every SQLite connection.
    """

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value if isinstance(value, Decimal) else Decimal(str(value))
        if dialect.name == "sqlite":
            return format(value, "f")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(types.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite drops the zone)."""

    impl = types.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class money_sum(GenericFunction[Decimal]):  # noqa: N801 - SQL function names are lower case
    """``SUM`` of a Money column, exact on every database."""

    type = Money()
    name = "money_sum"
    inherit_cache = True


@compiles(money_sum)
def _money_sum_default(element: money_sum, compiler: Any, **kw: Any) -> str:
    return f"COALESCE(SUM({compiler.process(element.clauses, **kw)}), 0)"


@compiles(money_sum, "sqlite")
def _money_sum_sqlite(element: money_sum, compiler: Any, **kw: Any) -> str:
    return f"COALESCE(decsum({compiler.process(element.clauses, **kw)}), '0')"


class db_now(GenericFunction[dt.datetime]):  # noqa: N801 - SQL function names are lower case
    """The database server's current UTC time, plus some seconds, in the form UTCDateTime stores.

    Leases are stored and compared with this rather than a process's clock: the clocks of several
    workers drift apart, the database's is one. On SQLite the value is text of the form SQLAlchemy
    writes a UTCDateTime in (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), so that text comparisons with
    stored values order correctly; ``CURRENT_TIMESTAMP`` there has no fraction of a second.
    """

    type = UTCDateTime()
    name = "db_now"
    inherit_cache = True

    def __init__(self, plus_seconds: float = 0.0) -> None:
        super().__init__(literal(float(plus_seconds), Float()))


@compiles(db_now)
def _db_now_default(element: db_now, compiler: Any, **kw: Any) -> str:
    # statement_timestamp(), not now(): the time of this statement, not of the transaction's start.
    return f"(statement_timestamp() + {compiler.process(element.clauses, **kw)} * INTERVAL '1 second')"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # %f is seconds with three decimals; the literal 000 pads it to the six digits of microseconds.
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', {compiler.process(element.clauses, **kw)} || ' seconds')"


class text_tail(GenericFunction[str]):  # noqa: N801 - SQL function names are lower case
    """The last ``length`` characters of a text (all of it when shorter), on every database."""

    type = String()
    name = "text_tail"
    inherit_cache = True

    def __init__(self, value: Any, length: int) -> None:
        super().__init__(value, literal(int(length), Integer()))


@compiles(text_tail)
def _text_tail_default(element: text_tail, compiler: Any, **kw: Any) -> str:
    value, length = (compiler.process(c, **kw) for c in element.clauses)
    return f"right({value}, {length})"


@compiles(text_tail, "sqlite")
def _text_tail_sqlite(element: text_tail, compiler: Any, **kw: Any) -> str:
    value, length = (compiler.process(c, **kw) for c in element.clauses)
    return f"substr({value}, -({length}))"
