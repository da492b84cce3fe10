"""The values of a cost file: one row's cells (``Cells``) and a batch's text columns (``TextColumns``),
parsed the same way.

Values
    Money and quantities are parsed as ``Decimal`` from their text, never through a float. A
    Parquet ``double`` (CUR 2.0 stores costs so) is taken by its shortest round-trip text
    (``repr``), which is the decimal the exporter wrote. Money is rounded half-even to 11 decimal
    places, the FOCUS precision and the scale of the money columns (PostgreSQL would round there
    anyway; rounding here keeps SQLite identical). Dates accept ISO 8601 with ``T`` or a space,
    with or without ``Z`` or an offset, or a bare date; aware times are taken in UTC. The usage
    date is the UTC date of the charge's start; the billing period is the month of its start.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

from models.types import MONEY_PRECISION, MONEY_SCALE
from services.costs.ingest import billing_period_of
from services.imports.formats import stored_account_id

MISSING = frozenset({"", "NULL"})
_MONEY_QUANTUM = Decimal("1E-11")
#: numeric(38, 11): 38 digits in all; quantize() raises beyond that.
_MONEY_CONTEXT = Context(prec=38, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
ZERO = Decimal(0)
#: Distinct JSON texts (tags, product maps) parsed once per import, up to this many.
_JSON_CACHE_SIZE = 8_192
_WIDE_MONEY = (38, 20)


class CellError(Exception):
    """A cell that does not parse, with its column's header name."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@functools.lru_cache(maxsize=4_096)
def parse_day(text: str) -> dt.date:
    """Return the UTC date of an ISO 8601 time or date (hourly files repeat a few hundred)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date()


class Cells:
    """One row's values by logical column, with parsers that name the column on failure."""

    __slots__ = ("values", "names", "json_cache")

    def __init__(self, values: dict[str, object], names: dict[str, str],
                 json_cache: dict[str, object]) -> None:
        self.values = values
        self.names = names
        self.json_cache = json_cache

    def has(self, key: str) -> bool:
        return key in self.names

    def fail(self, key: str, message: str) -> CellError:
        return CellError(self.names.get(key, key), message)

    def text(self, key: str, *, required: bool = False, limit: int | None = None) -> str | None:
        value = self.values.get(key)
        if value is not None:
            value = (value if value.__class__ is str else str(value)).strip()
            if value in MISSING:
                value = None
        if value is None:
            if required:
                raise self.fail(key, "missing value")
            return None
        if limit is not None and len(value) > limit:
            raise self.fail(key, f"{value[:40]!r}... is longer than {limit} characters")
        return value

    def number(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self.values.get(key)
        if isinstance(value, str):
            text = value.strip()
            if text in MISSING:
                value = None
            else:
                try:
                    value = Decimal(text)
                except InvalidOperation:
                    raise self.fail(key, f"{text[:40]!r} is not a number") from None
        elif isinstance(value, float):
            value = Decimal(repr(value))  # the shortest text that round-trips: what was written
        elif isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        if value is None:
            if required:
                raise self.fail(key, "missing value")
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise self.fail(key, f"{str(value)[:40]!r} is not a number")
        return value

    def money(self, key: str, *, required: bool = False) -> Decimal | None:
        number = self.number(key, required=required)
        if number is None:
            return None
        try:
            return number.quantize(_MONEY_QUANTUM, context=_MONEY_CONTEXT)
        except InvalidOperation:
            raise self.fail(key, f"{number} is out of range") from None

    def day(self, key: str, *, required: bool = False) -> dt.date | None:
        value = self.values.get(key)
        if isinstance(value, str):
            text = value.strip()
            if text in MISSING:
                value = None
            else:
                try:
                    return parse_day(text)
                except ValueError:
                    raise self.fail(key, f"{text[:40]!r} is not a date") from None
        if value is None:
            if required:
                raise self.fail(key, "missing value")
            return None
        if isinstance(value, dt.datetime):
            return (value.astimezone(dt.UTC) if value.tzinfo is not None else value).date()
        if isinstance(value, dt.date):
            return value
        raise self.fail(key, f"{str(value)[:40]!r} is not a date")

    def mapping(self, key: str) -> dict[str, object]:
        """Return a map column: a JSON object in CSV, a map (key-value pairs) in Parquet."""
        value = self.values.get(key)
        if isinstance(value, str):
            text = value.strip()
            if text in MISSING:
                return {}
            cached = self.json_cache.get(text)
            if cached is not None:
                return cached  # type: ignore[return-value]  # only mappings are cached
            try:
                value = json.loads(text)
            except ValueError:
                raise self.fail(key, f"{text[:40]!r} is not JSON") from None
            if not isinstance(value, dict):
                raise self.fail(key, "not a JSON object")
            if len(self.json_cache) >= _JSON_CACHE_SIZE:
                self.json_cache.clear()
            self.json_cache[text] = value
            return value
        if value is None:
            return {}
        if isinstance(value, list):
            try:
                value = dict(value)
            except (TypeError, ValueError):
                raise self.fail(key, "not a map of keys to values") from None
        if not isinstance(value, dict):
            raise self.fail(key, "not a map of keys to values")
        return value

    def tags(self, key: str) -> dict[str, str]:
        try:
            return tag_values(self.mapping(key))
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None


def tag_values(mapping: dict[str, object]) -> dict[str, str]:
    """Return tags as text: non-string scalars as their JSON text, a null as ""; refuse nesting."""
    tags: dict[str, str] = {}
    for name, value in mapping.items():
        if isinstance(value, str):
            tags[str(name)] = value
        elif value is None:
            tags[str(name)] = ""
        elif isinstance(value, int | float | bool):
            tags[str(name)] = json.dumps(value)
        else:
            raise ValueError(f"tag {name!r} has a nested value")
    return tags


def parse_account(cells: Cells, key: str, *, required: bool = True) -> str | None:
    """Return an account id column as stored (see ``stored_account_id``)."""
    value = cells.text(key, required=required)
    return None if value is None else stored_account_id(value)


def parse_currency(cells: Cells, key: str) -> str:
    """Return a currency column as an upper-case three-letter code."""
    value = cells.text(key, required=True)
    assert value is not None  # required=True raised otherwise
    try:
        return currency_code(value)
    except ValueError as exc:
        raise cells.fail(key, str(exc)) from None


def parse_period(cells: Cells, key: str) -> dt.date:
    """Return the billing period (the month) of a date column."""
    day = cells.day(key, required=True)
    assert day is not None  # required=True raised otherwise
    return billing_period_of(day)


def currency_code(value: str) -> str:
    """Return a three-letter currency code in upper case; raise ``ValueError`` otherwise."""
    if len(value) != 3 or not value.isalpha():
        raise ValueError(f"{value[:40]!r} is not a three-letter currency code")
    return value.upper()


class NeedsRowPath(Exception):
    """The column-wise pass met something only the row-wise pass handles or reports exactly."""


class TextColumns:
    """A batch of text columns by logical name, read the way ``Cells`` reads one row's values;
    anything ``Cells`` would refuse or treat specially raises ``NeedsRowPath`` instead."""

    def __init__(self, cells: dict[str, Any]) -> None:
        import pyarrow as pa

        self.cells = cells
        self.rows = len(next(iter(cells.values())))
        self._missing = pa.array(sorted(MISSING), type=pa.string())

    def filter(self, mask: Any) -> None:
        self.cells = {key: column.filter(mask) for key, column in self.cells.items()}
        self.rows = len(next(iter(self.cells.values())))

    def text(self, key: str, *, required: bool = False, limit: int | None = None) -> Any:
        """Trimmed text, "" and NULL as null."""
        import pyarrow as pa

        column = self.cells.get(key)
        if column is None:
            if required:
                raise NeedsRowPath
            return pa.nulls(self.rows, type=pa.string())
        return self._clean(column, required=required, limit=limit)

    def _clean(self, column: Any, *, required: bool = False, limit: int | None = None) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        column = pc.utf8_trim_whitespace(column)
        missing = pc.is_in(column, value_set=self._missing)
        if pc.any(missing).as_py():
            column = pc.if_else(missing, pa.scalar(None, pa.string()), column)
        if required and column.null_count:
            raise NeedsRowPath
        if limit is not None and (pc.max(pc.utf8_length(column)).as_py() or 0) > limit:
            raise NeedsRowPath
        return column

    def parsed(self, key: str, parse: Callable[[str], Any], kind: Any, *, required: bool = False) -> Any:
        """``text`` parsed with the row-wise parser, each distinct value once (trimmed once, too:
        the values are told apart before they are cleaned)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.cells.get(key)
        if column is None:
            if required:
                raise NeedsRowPath
            return pa.nulls(self.rows, type=kind)
        encoded = pc.dictionary_encode(column)
        if required and encoded.null_count:
            raise NeedsRowPath
        values = self._clean(encoded.dictionary, required=required).to_pylist()
        try:
            parsed = [None if value is None else parse(value) for value in values]
        except (ValueError, CellError):
            raise NeedsRowPath from None
        return pa.array(parsed, type=kind).take(encoded.indices)

    def money(self, key: str) -> Any:
        """Exact, rounded half-even to the money scale, as ``Cells.money``."""
        import pyarrow as pa

        exact = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
        raw = self.cells.get(key)
        if raw is not None and not raw.null_count:
            try:  # the usual case: every value a number with no more decimals than the money scale,
                # and none missing or padded (what would not cast as it stands is cleaned first)
                return raw.cast(exact)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        return _exact_money(self.text(key, required=True))

    def optional_money(self, key: str) -> Any | None:
        """As ``money`` for a column a file may leave out or leave empty: None when it holds no value,
        missing values (empty, NULL) staying null."""
        if key not in self.cells:
            return None
        column = self.text(key)
        if column.null_count == len(column):
            return None
        return _exact_money(column)

    def number(self, key: str, scale: int) -> Any:
        """Exact as ``Cells.number``; more decimals than ``scale`` go row by row."""
        import pyarrow as pa

        try:
            return self.text(key).cast(pa.decimal128(MONEY_PRECISION, scale))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise NeedsRowPath from None

    def period(self, key: str) -> Any:
        import pyarrow as pa

        return self.parsed(key, lambda v: billing_period_of(parse_day(v)), pa.date32(), required=True)


def _exact_money(column: Any) -> Any:
    """A text column as exact money, rounded half-even to the money scale; NeedsRowPath when a value
    is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    exact = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
    try:  # exact already when no value has more decimals than the money scale
        return column.cast(exact)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        wide = column.cast(pa.decimal128(*_WIDE_MONEY))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise NeedsRowPath from None
    rounded = pc.round(wide, ndigits=MONEY_SCALE, round_mode="half_to_even")
    return rounded.cast(exact)
