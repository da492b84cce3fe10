"""Import cost files: FOCUS 1.0-1.2 and AWS CUR 2.0, as CSV, gzip CSV or Parquet.

How a file is read
    Lazily, never held in memory. A FOCUS export of one billing period (as exports come) is
    read once, column-wise (below): the period is that of its first row, and its rows replace
    the facts of that period, source and the billing accounts they name. Anything else, and any
    such file that turns out to hold another period, no rows or a currency mix, is read in two
    passes from a savepoint taken before. A first, cheap pass reads only the key columns (billing
    period, billing account, currency, provider): it checks them, counts the rows of each billing
    period and notes its billing accounts and which files hold it. If anything is wrong there,
    ``InvalidInput`` is raised before anything is written. Then, for each billing period, a pass
    parses that period's rows (in the files that hold it) in full and streams them into
    ``services.costs.ingest.replace_period``, which replaces the facts of that period, source and
    billing accounts (so importing the same file again changes nothing) and rebuilds the
    period's rollups. A row that fails to parse there is reported the same way; the caller's
    transaction, in which all of this runs, is then rolled back by the caller. The file's SHA-256
    is taken before and after: a file that changed meanwhile is refused.

    FOCUS CSV (plain or gzip) is read column-wise by Arrow, a block of some 25,000 rows at a
    time: the same checks and mapping computed on whole columns, each distinct date, account id,
    currency and tag set parsed once by the row-wise parsers themselves. Whatever that pass cannot
    take exactly (a value missing or too long, a number with more decimals than Arrow's decimal
    cast holds, a date that does not parse, a currency mix, a Parquet float...) sends the pass
    back to a savepoint and the period is read again row by row, which also names every problem
    by row and column. FOCUS Parquet goes the same way (decimals, integers, dates and timestamps
    as their exact text, a Tags map as its JSON). CUR 2.0 files are read row by row.

    Files are opened and read by ``_reading``, their values parsed by ``_cells``, mapped to facts
    by ``_focus`` and ``_cur``; the columns of each format are in ``formats``.

Why two ways of parsing
    The row-by-row path is the one every file can take: CUR 2.0 files, and any FOCUS file the
    column-wise path gives up on; it alone names each problem by row and column. The column-wise
    path is kept beside it for the figure it buys, measured with ``benchmarks/import_paths.py``
    (the FOCUS 1.0 sample's September rows repeated 200 times: 199,800 rows, 135 MiB of CSV, on
    SQLite, two cores): parsing 247,000 rows/s column-wise against 50,000 row by row (4.9 times),
    the import end to end 65,000 rows/s against 11,300 (5.7 times, 3.1 s against 17.7 s), for a
    peak memory of 351 MiB against 219 MiB (the Arrow blocks in flight).

Checks, each naming the row and the column: required columns present and none twice, as many
values as columns, numbers and dates parse, required values present, text fits its column, a
three-letter currency, one currency per billing period and billing account, tags a JSON
object, at least one data row. Up to ``MAX_ERRORS`` problems are listed in
``InvalidInput.details["errors"]``; the first is the message.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ImportBatch
from services import database
from services.costs import bulk
from services.costs.ingest import ArrowFacts, FactRow, replace_period
from services.errors import InvalidInput
from services.imports._cells import (
    CellError,
    Cells,
    NeedsRowPath,
    TextColumns,
    currency_code,
    parse_account,
    parse_currency,
    parse_period,
)
from services.imports._cur import cur2_fact
from services.imports._focus import focus_batch, focus_fact
from services.imports._reading import WIDTH_PROBLEM, Source, checksum_of, format_of, map_columns, text_batches
from services.imports.formats import LAYOUTS, LIMITS, Format, Layout, stored_account_id

logger = logging.getLogger(__name__)

#: How many problems a refused file reports.
MAX_ERRORS = 20
#: Distinct key-column combinations parsed once per file, up to this many.
_KEY_CACHE_SIZE = 8_192


#: Called with the rows written so far and the share of the work done (0 to 1).
Progress = Callable[[int, float], None]


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import landed."""

    format: Format
    billing_periods: list[dt.date]
    rows: int
    providers: list[str]
    batch_ids: list[int]


def import_file(
    session: Session,
    *,
    path: Path,
    file_name: str | None = None,
    actor_id: int | None = None,
    on_progress: Progress | None = None,
) -> ImportResult:
    """Import one FOCUS or CUR 2.0 file in the caller's transaction, all or nothing.

    Raises ``InvalidInput`` for any problem with the file, possibly after rows were written:
    the caller rolls back (``services.database.session_scope`` does). ``on_progress`` is called
    with the number of rows written so far and the share of the work done (0 to 1: of the file
    read, or of the rows written in a second pass), inside the transaction: on SQLite it must
    not write through another connection (the import holds the write lock until the caller
    commits).
    """
    return import_files(session, paths=[path], file_name=file_name, actor_id=actor_id,
                        on_progress=on_progress)


def import_files(
    session: Session,
    *,
    paths: Sequence[Path],
    file_name: str | None = None,
    actor_id: int | None = None,
    on_progress: Progress | None = None,
    labels: Sequence[str] | None = None,
) -> ImportResult:
    """Import the parts of one export (CUR 2.0 splits a large month into several files) as one.

    All parts of a billing period must come in one call: each import replaces the billing
    periods and billing accounts it holds. Errors name a part by its ``labels`` entry (where it
    came from, e.g. its S3 key), else by its file name.
    """
    if not paths:
        raise InvalidInput("no file to import")
    if labels is not None and len(labels) != len(paths):
        raise ValueError("one label per path")
    sources = [Source(Path(p), label=labels[i] if labels else Path(p).name if len(paths) > 1 else None)
               for i, p in enumerate(paths)]
    checksum = checksum_of(sources)
    name = (file_name or ", ".join(s.path.name for s in sources))[:512]
    result = None
    reached = [0.0]  # the share reported last: two passes after a one pass that gave way go on from it

    def report(rows: int, share: float) -> None:
        reached[0] = share
        if on_progress is not None:
            on_progress(rows, share)

    if _columnwise_possible(format_of(sources)):
        try:
            with database.savepoint(session):  # the two passes start from here again
                result = _import_in_one_pass(session, sources, name=name, actor_id=actor_id, on_progress=report)
        except NeedsRowPath:
            logger.info("%s: read in two passes", name)
    if result is None:
        left = reached[0]
        result = _import_in_two_passes(session, sources, name=name, actor_id=actor_id,
                                       on_progress=lambda rows, share: report(rows, left + (1 - left) * share))
    for batch in session.scalars(select(ImportBatch).where(ImportBatch.id.in_(result.batch_ids))):
        batch.checksum = checksum
    if checksum_of(sources) != checksum:
        raise InvalidInput("the file changed while it was being imported: import it again")
    session.flush()
    logger.info("imported %s: %s %s rows in billing periods %s", name, result.rows, result.format,
                ", ".join(p.isoformat() for p in result.billing_periods))
    return result


def _import_in_one_pass(session: Session, sources: Sequence[Source], *, name: str, actor_id: int | None,
                        on_progress: Progress | None) -> ImportResult:
    """Import a FOCUS export of one billing period (as exports come), reading it once: the period
    is that of the first row, and the billing accounts it replaces are those its rows name.

    Whatever this pass does not take raises ``NeedsRowPath``, for the caller to roll back and read
    the file in two passes: rows of another period, no rows, a billing account in two currencies,
    and anything the column-wise pass refuses (see ``_focus_tables``).
    """
    layout = LAYOUTS["focus"]
    currencies: dict[str, str] = {}
    providers: set[str] = set()
    sizes = [source.path.stat().st_size for source in sources]
    total = sum(sizes) or 1
    consumed = [0]  # bytes of the files read so far

    def parts() -> Iterator[dict[str, Any]]:
        for index, source in enumerate(sources):
            before = sum(sizes[:index])
            for cells, position in text_batches(source, layout, positions=True):
                consumed[0] = before + position
                yield cells

    def report(written: int) -> None:
        if on_progress is not None:
            on_progress(written, min(1.0, consumed[0] / total))

    # Arrow parses the next CSV block in a thread of its own (letting go of the GIL) while this
    # one is mapped and split into keys, and the database stores the one before: on two cores
    # the stages overlap.
    with bulk.Prefetched(parts()) as read:
        batches = iter(read)
        first = next(batches, None)
        if first is None:
            raise NeedsRowPath
        period = TextColumns(first).period(layout.period)[0].as_py()

        def facts() -> Iterator[Any]:
            for cells in itertools.chain([first], batches):
                table = focus_batch(cells, period, whole=True)
                accounts = table.group_by(["payer_account_id", "currency", "provider"]).aggregate([])
                for account, currency, provider in zip(*accounts.to_pydict().values(), strict=True):
                    providers.add(provider)
                    if currencies.setdefault(account, currency) != currency:
                        raise NeedsRowPath  # a currency mix: the row-wise pass says where
                yield table

        batch = replace_period(session, source="focus", billing_period=period, rows=ArrowFacts(facts()),
                               payer_account_ids="loaded", file_name=name, actor_id=actor_id, on_chunk=report)
    if batch.row_count == 0:
        raise NeedsRowPath
    return ImportResult(format="focus", billing_periods=[period], rows=batch.row_count,
                        providers=sorted(providers), batch_ids=[batch.id])


def _import_in_two_passes(session: Session, sources: Sequence[Source], *, name: str, actor_id: int | None,
                          on_progress: Progress | None) -> ImportResult:
    """Import any export: a first pass finds its billing periods and accounts (and refuses the
    file, naming rows and columns, if a key column is wrong), then each period is read and
    replaced in turn."""
    scan = _scan(sources)
    batches: list[ImportBatch] = []
    done = 0
    columnwise = _columnwise_possible(scan.format)
    for period in sorted(scan.periods):
        expected = scan.period_rows[period]
        holding = [source for i, source in enumerate(sources) if i in scan.sources_of[period]]

        def report(written: int, before: int = done) -> None:
            if on_progress is not None:
                on_progress(before + written, (before + written) / scan.rows)

        load = functools.partial(replace_period, session, source=scan.format, billing_period=period,
                                 payer_account_ids=scan.periods[period], file_name=name, actor_id=actor_id,
                                 on_chunk=report)
        batch = None
        if columnwise:
            try:
                with database.savepoint(session):  # the row-wise pass starts from here again
                    batch = load(rows=ArrowFacts(_focus_tables(holding, period=period, expected=expected)))
            except NeedsRowPath:
                logger.info("%s: billing period %s goes row by row", name, period)
        if batch is None:
            batch = load(rows=_period_facts(holding, fmt=scan.format, period=period, expected=expected))
        batches.append(batch)
        done += expected
    return ImportResult(
        format=scan.format, billing_periods=sorted(scan.periods), rows=scan.rows,
        providers=sorted(scan.providers), batch_ids=[b.id for b in batches],
    )


_MAPPERS: dict[str, Callable[[Cells, dt.date], FactRow]] = {"focus": focus_fact, "cur2": cur2_fact}


# --- the passes --------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.messages: list[str] = []

    @property
    def full(self) -> bool:
        return len(self.messages) >= MAX_ERRORS

    def add(self, message: str) -> None:
        if not self.full:
            self.messages.append(message)

    def raise_if_any(self) -> None:
        if not self.messages:
            return
        more = len(self.messages) - 1
        suffix = f" (and {more}{'+' if self.full else ''} more problems)" if more else ""
        raise InvalidInput(self.messages[0] + suffix,
                           details={"errors": list(self.messages), "truncated": self.full})


@dataclass
class _Scan:
    format: Format
    rows: int = 0
    #: billing period -> the billing accounts it holds
    periods: dict[dt.date, set[str]] = field(default_factory=dict)
    period_rows: dict[dt.date, int] = field(default_factory=dict)
    providers: set[str] = field(default_factory=set)
    #: (billing period, billing account) -> (currency, where it was first seen)
    currencies: dict[tuple[dt.date, str], tuple[str, str]] = field(default_factory=dict)
    #: billing period -> the indexes of the sources that hold rows of it
    sources_of: dict[dt.date, set[int]] = field(default_factory=dict)


def _keys(cells: Cells, layout: Layout) -> tuple[dt.date, str, str, str]:
    """Return a row's billing period, billing account, currency and provider."""
    account = parse_account(cells, layout.account)
    provider = ("AWS" if layout.provider is None
                else cells.text(layout.provider, required=True, limit=LIMITS["provider"]))
    assert account is not None and provider is not None  # required=True raised otherwise
    return parse_period(cells, layout.period), account, parse_currency(cells, layout.currency), provider


def _scan(sources: Sequence[Source]) -> _Scan:
    """Read the key columns of every row; raise if any is wrong or the files hold no row.

    Column-wise where it can (see ``_scan_columnwise``), else, or when anything is wrong, row by
    row: that pass names every problem by row and column.
    """
    fmt = format_of(sources)
    if _columnwise_possible(fmt):
        try:
            return _scan_columnwise(sources, fmt)
        except NeedsRowPath:
            logger.info("the key columns go row by row")
    return _scan_rows(sources, fmt)


def _scan_columnwise(sources: Sequence[Source], fmt: Format) -> _Scan:
    """The first pass on whole columns: each distinct key parsed once, rows counted by Arrow."""
    import pyarrow as pa

    layout = LAYOUTS[fmt]
    keys = [layout.period, layout.account, layout.currency, *([layout.provider] if layout.provider else [])]
    scan = _Scan(format=fmt)
    for index, source in enumerate(sources):
        for cells in text_batches(source, layout, keys):
            columns = TextColumns(cells)
            table = pa.table({
                "period": columns.period(layout.period),
                "account": columns.parsed(layout.account, stored_account_id, pa.string(), required=True),
                "currency": columns.parsed(layout.currency, currency_code, pa.string(), required=True),
                "provider": (columns.text(layout.provider, required=True, limit=LIMITS["provider"])
                             if layout.provider else pa.array(["AWS"] * columns.rows, type=pa.string())),
            })
            counts = table.group_by(["period", "account", "currency", "provider"]).aggregate([([], "count_all")])
            for period, account, currency, provider, rows in zip(*counts.to_pydict().values(), strict=True):
                scan.rows += rows
                scan.period_rows[period] = scan.period_rows.get(period, 0) + rows
                scan.periods.setdefault(period, set()).add(account)
                scan.sources_of.setdefault(period, set()).add(index)
                scan.providers.add(provider)
                if scan.currencies.setdefault((period, account), (currency, ""))[0] != currency:
                    raise NeedsRowPath  # a currency mix: the row-wise pass says where
    if scan.rows == 0:
        raise NeedsRowPath
    return scan


def _scan_rows(sources: Sequence[Source], fmt: Format) -> _Scan:
    """The first pass row by row."""
    layout = LAYOUTS[fmt]
    keys = [layout.period, layout.account, layout.currency]
    if layout.provider is not None:
        keys.append(layout.provider)
    scan = _Scan(format=fmt)
    errors = _Errors()
    for index, source in enumerate(sources):
        with source.open() as table:
            columns = map_columns(table, source, layout)
            wanted = {k: columns[k] for k in keys}
            # A file repeats a handful of key combinations: parse each once.
            parsed: dict[tuple[object, ...], tuple[dt.date, str, str, str] | CellError] = {}
            for row, values in table.records(wanted):
                if errors.full:
                    errors.raise_if_any()
                if WIDTH_PROBLEM in values:
                    errors.add(f"{source.where(row)}: {values[WIDTH_PROBLEM]}")
                    continue
                raw = tuple(values.values())
                found = parsed.get(raw)
                if found is None:
                    try:
                        found = _keys(Cells(values, wanted, {}), layout)
                    except CellError as exc:
                        found = exc
                    if len(parsed) >= _KEY_CACHE_SIZE:
                        parsed.clear()
                    parsed[raw] = found
                if isinstance(found, CellError):
                    errors.add(f"{source.where(row)}, column {found.column}: {found.message}")
                    continue
                period, account, currency, provider = found
                scan.rows += 1
                if period in scan.period_rows:
                    scan.period_rows[period] += 1
                else:
                    scan.period_rows[period] = 1
                    scan.periods[period] = set()
                scan.periods[period].add(account)
                scan.sources_of.setdefault(period, set()).add(index)
                scan.providers.add(provider)
                first = scan.currencies.get((period, account))
                if first is None:
                    scan.currencies[(period, account)] = (currency, source.where(row))
                elif first[0] != currency:
                    errors.add(
                        f"{source.where(row)}, column {columns[layout.currency]}: wrong currency "
                        f"mix: {currency} where {first[1]} has {first[0]} for billing period "
                        f"{period:%Y-%m} and billing account {account}"
                    )
    errors.raise_if_any()
    if scan.rows == 0:
        raise InvalidInput("the file has no data rows")
    return scan


def _period_facts(sources: Sequence[Source], *, fmt: Format, period: dt.date,
                  expected: int) -> Iterator[FactRow]:
    """Stream one billing period's facts; raise ``InvalidInput`` for rows that do not parse.

    Bad rows are collected (and not yielded) until ``MAX_ERRORS``, then reported together.
    """
    layout = LAYOUTS[fmt]
    mapper = _MAPPERS[fmt]
    errors = _Errors()
    json_cache: dict[str, object] = {}
    count = 0
    for source in sources:
        with source.open() as table:
            columns = map_columns(table, source, layout)
            for row, values in table.records(columns):
                if WIDTH_PROBLEM in values:
                    continue  # reported by the first pass, which would have refused the file
                cells = Cells(values, columns, json_cache)
                try:
                    if parse_period(cells, layout.period) != period:
                        continue
                    fact = mapper(cells, period)
                except CellError as exc:
                    errors.add(f"{source.where(row)}, column {exc.column}: {exc.message}")
                    if errors.full:
                        errors.raise_if_any()
                    continue
                count += 1
                yield fact
    errors.raise_if_any()
    if count != expected:
        raise InvalidInput("the file changed while it was being imported: "
                           f"{count} rows for {period:%Y-%m} where there were {expected}")


def _columnwise_possible(fmt: Format) -> bool:
    """FOCUS goes column-wise (CSV, gzip CSV or Parquet); CUR 2.0 goes row by row."""
    return fmt == "focus"


def _focus_tables(sources: Sequence[Source], *, period: dt.date, expected: int) -> Iterator[Any]:
    """Yield one billing period's FOCUS rows as Arrow tables of fact columns (``ArrowFacts``).

    The same mapping as ``focus_fact``, computed on whole columns by Arrow: text trimmed and
    "missing" made null, money cast exactly and rounded half-even to the money scale, dates, account
    ids, currencies and tags parsed once per distinct value with the row-wise parsers themselves.
    Anything out of the ordinary (a missing required value, text too long, a number or date that
    does not parse, a changed file...) raises ``NeedsRowPath``: the caller then rolls this period
    back and takes it row by row, which reports each problem by row and column.
    """
    count = 0
    for source in sources:
        for cells in text_batches(source, LAYOUTS["focus"]):
            facts = focus_batch(cells, period)
            count += facts.num_rows
            if facts.num_rows:
                yield facts
    if count != expected:
        raise NeedsRowPath


__all__ = ["MAX_ERRORS", "ImportResult", "import_file", "import_files"]
