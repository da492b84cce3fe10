"""Column types shared by the models: exact money on every database, UTC timestamps."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String, types
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
