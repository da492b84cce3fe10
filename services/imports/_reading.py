"""Reading a cost file: row by row (``Source.open``) or a block of text columns at a time through
Arrow (``text_batches``).

The format is sniffed from the content: gzip magic (``.csv.gz``), Parquet magic
(``.parquet``: read one record batch of the needed columns at a time), else UTF-8 CSV (a
byte-order mark is ignored). The literal ``NULL`` and empty values mean "missing". Columns
the mapping does not use are ignored (FOCUS 1.1/1.2 ``ServiceSubcategory``,
``PricingCurrency``, ``x_`` columns...; the hundred-odd CUR 2.0 columns). Row ``N`` in a
message is the ``N``-th record after the header (line ``N + 1`` when no value spans lines).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from services.errors import InvalidInput
from services.imports._cells import NeedsRowPath
from services.imports.formats import Format, Layout, detect_format

#: Rows per Parquet record batch: bounds memory whatever the file's size.
PARQUET_BATCH_ROWS = 8_192

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
#: Bytes of CSV the column-wise pass parses at a time (some 25,000 rows of a FOCUS export).
ARROW_BLOCK_BYTES = 8 << 20
#: The same when reading every column to load them (some 100,000 rows): fewer, larger batches
#: cost less per row downstream (key look-ups, COPY writes); the key pass keeps the smaller blocks,
#: which Arrow's reader overlaps better with decompressing.
LOAD_BLOCK_BYTES = 16 << 20
#: Rows of Parquet the column-wise pass reads at a time.
PARQUET_COLUMN_BATCH_ROWS = 25_000


class Table(Protocol):
    """An open file: its header and its records, row by row."""

    header: list[str]

    def __enter__(self) -> Table: ...

    def __exit__(self, *exc: object) -> None: ...

    def records(self, columns: dict[str, str]) -> Iterator[tuple[int, dict[str, object]]]: ...


#: The key under which ``records`` reports a row with the wrong number of values.
WIDTH_PROBLEM = "\0width"


@dataclass(frozen=True)
class Source:
    """One file of an import and how messages name it."""

    path: Path
    #: The file's name in messages when several files are imported together.
    label: str | None

    def where(self, row: int) -> str:
        return f"{self.label}, row {row}" if self.label else f"row {row}"

    def prefix(self) -> str:
        return f"{self.label}: " if self.label else ""

    def open(self) -> Table:
        try:
            with self.path.open("rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise InvalidInput(f"{self.path.name} cannot be read ({exc.strerror})") from exc
        suffix = self.path.suffix.lower()
        if magic[:2] == _GZIP_MAGIC:
            return _CsvTable(self, compressed=True)
        if magic == _PARQUET_MAGIC:
            return _ParquetTable(self)
        if suffix == ".parquet":
            raise InvalidInput(f"{self.prefix()}not a Parquet file")
        if suffix == ".gz":
            raise InvalidInput(f"{self.prefix()}not a gzip file")
        return _CsvTable(self, compressed=False)


def checksum_of(sources: Sequence[Source]) -> str:
    """Return the SHA-256 of the files' contents, one after the other."""
    digest = hashlib.sha256()
    for source in sources:
        try:
            with source.path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise InvalidInput(f"{source.path.name} cannot be read ({exc.strerror})") from exc
    return digest.hexdigest()


#: What ``errors="surrogateescape"`` turns an undecodable byte into.
_UNDECODED = re.compile("[\udc80-\udcff]")


class _CsvTable:
    def __init__(self, source: Source, *, compressed: bool) -> None:
        self.source = source
        self.compressed = compressed
        self.header: list[str] = []

    def __enter__(self) -> _CsvTable:
        opener = gzip.open if self.compressed else open
        self._fh = opener(self.source.path, "rt", encoding="utf-8-sig", newline="")
        self._reader = csv.reader(self._fh)
        first = self._read(0)
        if first is None:
            self._fh.close()
            raise InvalidInput(f"{self.source.prefix()}the file is empty")
        self.header = [h.strip() for h in first]
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def _read(self, row: int) -> list[str] | None:
        try:
            return next(self._reader, None)
        except UnicodeDecodeError as exc:
            # The text layer decodes ahead of the CSV reader, so the error comes a few rows early:
            # read the file again, keeping undecodable bytes, to name the row that holds the byte.
            bad_row = self._row_of_undecodable_byte()
            where = self.source.where(bad_row) if bad_row else f"{self.source.prefix()}header"
            byte = exc.object[exc.start:exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
            raise InvalidInput(f"{where}: the file is not UTF-8 CSV (byte 0x{byte} is not UTF-8 text); "
                               "export it as UTF-8") from exc
        except (csv.Error, OSError, EOFError, zlib.error) as exc:
            where = self.source.where(row) if row else f"{self.source.prefix()}header"
            kind = "gzip-compressed UTF-8 CSV" if self.compressed else "UTF-8 CSV"
            raise InvalidInput(f"{where}: the file cannot be read as {kind} ({exc})") from exc

    def _row_of_undecodable_byte(self) -> int:
        """Return the row (0: the header) of the first value holding a byte that is not UTF-8."""
        opener = gzip.open if self.compressed else open
        with opener(self.source.path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            for row, values in enumerate(csv.reader(fh)):
                if any(_UNDECODED.search(value) for value in values):
                    return row
        return 0

    def records(self, columns: dict[str, str]) -> Iterator[tuple[int, dict[str, object]]]:
        index = [(logical, self.header.index(actual)) for logical, actual in columns.items()]
        width = len(self.header)
        row = 0
        while (values := self._read(row + 1)) is not None:
            row += 1
            if not values:  # a blank line
                continue
            if len(values) != width:
                yield row, {WIDTH_PROBLEM: f"{len(values)} values where the header has "
                                            f"{width} columns"}
                continue
            yield row, {logical: values[i] for logical, i in index}


class _ParquetTable:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.header: list[str] = []

    def __enter__(self) -> _ParquetTable:
        import pyarrow.parquet as pq  # here, not at the top: only Parquet imports need it

        try:
            self._file = pq.ParquetFile(self.source.path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise InvalidInput(f"{self.source.prefix()}not a readable Parquet file ({exc})") from exc
        self.header = list(self._file.schema_arrow.names)
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def records(self, columns: dict[str, str]) -> Iterator[tuple[int, dict[str, object]]]:
        logical_of = {actual: logical for logical, actual in columns.items()}
        batches = self._file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=list(logical_of))
        row = 0
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad data
                raise InvalidInput(f"{self.source.where(row + 1)}: the Parquet data cannot be "
                                   f"read ({exc})") from exc
            if batch is None:
                return
            names = [logical_of[n] for n in batch.schema.names]
            values = [_python_values(column) for column in batch.columns]
            del batch  # keep one batch alive at a time, as Python objects
            for record in zip(*values, strict=True):
                row += 1
                yield row, dict(zip(names, record, strict=True))


def _python_values(column: Any) -> list[object]:
    """Return an Arrow column as Python values; timestamps as naive UTC datetimes.

    Converting zoned timestamps one by one makes pyarrow try to import pytz for every value
    (hundreds of microseconds each); naive UTC (to the microsecond) converts at full speed.
    """
    import pyarrow as pa  # here, not at the top: only Parquet imports need it

    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us"), safe=False)
    values: list[object] = column.to_pylist()
    return values


def format_of(sources: Sequence[Source]) -> Format:
    """Return the format of the files' headers; refuse a mix of FOCUS and CUR 2.0."""
    formats = set()
    for source in sources:
        with source.open() as table:
            formats.add(detect_format(table.header))
    if len(formats) > 1:
        raise InvalidInput("the files mix FOCUS and CUR 2.0: import them separately")
    return formats.pop()


def map_columns(table: Table, source: Source, layout: Layout) -> dict[str, str]:
    """Map each logical column to the header name present; refuse a header missing any."""
    seen: set[str] = set()
    for name in table.header:
        if name in seen:
            raise InvalidInput(f"{source.prefix()}column {name} appears twice in the header")
        seen.add(name)
    columns: dict[str, str] = {}
    missing = []
    for logical, aliases in {**layout.required, **layout.optional}.items():
        actual = next((a for a in aliases if a in seen), None)
        if actual is not None:
            columns[logical] = actual
        elif logical in layout.required:
            missing.append(f"{source.prefix()}missing column {logical}")
    if missing:
        first = missing[0] + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        raise InvalidInput(first, details={"errors": missing, "truncated": False})
    return columns


def text_batches(source: Source, layout: Layout, keys: Sequence[str] | None = None, *,
                 positions: bool = False) -> Iterator[Any]:
    """Read a source with Arrow, a block at a time: the layout's columns (or just ``keys``) as
    text, by logical name (with ``positions``: each with the bytes of the file read by then).
    Whatever Arrow cannot read raises ``NeedsRowPath``."""
    import pyarrow as pa

    with source.open() as table:
        columns = map_columns(table, source, layout)
        parquet = isinstance(table, _ParquetTable)
        compressed = isinstance(table, _CsvTable) and table.compressed
    if keys is not None:
        columns = {key: columns[key] for key in keys}
    logical = {actual: name for name, actual in columns.items()}
    try:
        if parquet:
            batches = _parquet_text_batches(source, logical)
        elif any(name != name.strip() for name in logical):
            raise NeedsRowPath  # Arrow would not find a header name the row-wise reader strips
        else:
            batches = _csv_text_batches(source, logical, compressed=compressed,
                                        block_bytes=ARROW_BLOCK_BYTES if keys is not None else LOAD_BLOCK_BYTES)
        for cells, position in batches:
            yield (cells, position) if positions else cells
    except (pa.ArrowException, UnicodeDecodeError, OSError, EOFError) as exc:
        raise NeedsRowPath from exc


def _csv_text_batches(source: Source, logical: dict[str, str], *, compressed: bool,
                      block_bytes: int) -> Iterator[tuple[dict[str, Any], int]]:
    """Each block's text columns, and the bytes of the file read by then."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    from isal import igzip

    with source.path.open("rb") as raw, (
            # ISA-L inflates gzip in about 60% of zlib's time (Arrow's own stream uses zlib).
            igzip.IGzipFile(fileobj=raw, mode="rb") if compressed else contextlib.nullcontext(raw)) as stream:
        reader = pa_csv.open_csv(
            stream, read_options=pa_csv.ReadOptions(block_size=block_bytes),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                include_columns=list(logical), strings_can_be_null=False,
                column_types={name: pa.string() for name in logical}))
        for batch in reader:
            yield {logical[name]: batch.column(name) for name in batch.schema.names}, raw.tell()


def _parquet_text_batches(source: Source, logical: dict[str, str]) -> Iterator[tuple[dict[str, Any], int]]:
    """Parquet columns as the text ``Cells`` would read from them (see ``_parquet_text``), and
    the share of the file read by then (in bytes, by rows)."""
    import pyarrow.parquet as pq

    size = source.path.stat().st_size
    with pq.ParquetFile(source.path) as parquet:
        rows, done = parquet.metadata.num_rows or 1, 0
        for batch in parquet.iter_batches(batch_size=PARQUET_COLUMN_BATCH_ROWS, columns=list(logical)):
            done += batch.num_rows
            yield {logical[name]: _parquet_text(batch.column(name)) for name in batch.schema.names}, size * done // rows


def _parquet_text(column: Any) -> Any:
    """A typed Parquet column as text that parses to what the row-wise pass takes from it: decimals,
    integers and dates exactly; timestamps at their UTC time; a map as its JSON object. A float
    (whose value the row-wise pass takes by its shortest text) or anything else goes row by row."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return column.cast(pa.string())
    if pa.types.is_decimal(kind) or pa.types.is_integer(kind) or pa.types.is_date(kind):
        return column.cast(pa.string())
    if pa.types.is_timestamp(kind):
        return column.cast(pa.timestamp("us"), safe=False).cast(pa.string())  # the UTC instant, no zone
    if pa.types.is_map(kind) and pa.types.is_string(kind.key_type):
        # Distinct maps are few but Arrow cannot tell them apart: JSON each row (about 2 µs).
        return pa.array([None if pairs is None else json.dumps(dict(pairs)) for pairs in column.to_pylist()],
                        type=pa.string())
    raise NeedsRowPath
