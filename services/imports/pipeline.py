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

    The format is sniffed from the content: gzip magic (``.csv.gz``), Parquet magic
    (``.parquet``: read one record batch of the needed columns at a time), else UTF-8 CSV (a
    byte-order mark is ignored). The literal ``NULL`` and empty values mean "missing". Columns
    the mapping does not use are ignored (FOCUS 1.1/1.2 ``ServiceSubcategory``,
    ``PricingCurrency``, ``x_`` columns...; the hundred-odd CUR 2.0 columns). Row ``N`` in a
    message is the ``N``-th record after the header (line ``N + 1`` when no value spans lines).

Values
    Money and quantities are parsed as ``Decimal`` from their text, never through a float. A
    Parquet ``double`` (CUR 2.0 stores costs so) is taken by its shortest round-trip text
    (``repr``), which is the decimal the exporter wrote. Money is rounded half-even to 11 decimal
    places, the FOCUS precision and the scale of the money columns (PostgreSQL would round there
    anyway; rounding here keeps SQLite identical). Dates accept ISO 8601 with ``T`` or a space,
    with or without ``Z`` or an offset, or a bare date; aware times are taken in UTC. The usage
    date is the UTC date of the charge's start; the billing period is the month of its start.

Account ids
    FOCUS account ids can be long (Azure ``/subscriptions/<guid>`` is about 52 characters, OCI
    tenancy OCIDs about 80); the account columns hold 128. An id that fits is stored unchanged; a longer one is
    stored as ``...<its last characters>#<8 hex digits of its SHA-256>`` (see
    ``stored_account_id``): stable, distinct, recognisable. The limit is read from the models.

FOCUS (1.0, 1.1, 1.2) to ``FactRow``
    ================  ===============================================================
    usage_date        ChargePeriodStart (UTC date)
    billing_period    BillingPeriodStart (its month)
    provider          ProviderName (``ServiceProviderName``, FOCUS 1.3's name, accepted)
    payer_account_id  BillingAccountId
    usage_account_id  SubAccountId, or BillingAccountId when missing
    service           ServiceName
    service_category  ServiceCategory
    region            RegionId, or ``global`` when missing
    usage_type        x_UsageType (AWS's FOCUS export) when present, else SkuId, else
                      ChargeDescription cut to 128 characters, else empty. SkuId is the
                      provider-neutral, stable grain of a price; descriptions are free text.
    charge_category   ChargeCategory
    resource_id       ResourceId
    tags              Tags, a JSON object (missing: ``{}``); non-string scalars become their
                      JSON text, a null value an empty string
    unblended_cost    BilledCost
    amortized_cost    EffectiveCost
    net_cost          EffectiveCost: FOCUS has no separate "net" figure; EffectiveCost is the
                      cost after negotiated discounts and amortised commitments
    list_cost         ListCost
    usage_quantity    ConsumedQuantity (missing: ``None``)
    usage_unit        ConsumedUnit
    currency          BillingCurrency (1.2's PricingCurrency is ignored: costs are as billed)
    ================  ===============================================================

    Required columns: BilledCost, BillingAccountId, BillingCurrency, BillingPeriodStart,
    ChargeCategory, ChargePeriodStart, EffectiveCost, ListCost, ProviderName, ServiceName.

CUR 2.0 to ``FactRow``
    ================  ===============================================================
    usage_date        line_item_usage_start_date (UTC date)
    billing_period    bill_billing_period_start_date (its month)
    provider          ``AWS``
    payer_account_id  bill_payer_account_id
    usage_account_id  line_item_usage_account_id
    service           the product name (what Cost Explorer and FOCUS call the service):
                      column ``product_product_name`` or key ``product_name`` of the
                      ``product`` map; else line_item_product_code; else product_servicecode
    region            product_region_code, key ``region_code`` of ``product``, product_region,
                      key ``region`` of ``product``, else ``global``
    usage_type        line_item_usage_type
    charge_category   line_item_line_item_type (Usage, SavingsPlanCoveredUsage, Tax, ...)
    resource_id       line_item_resource_id
    tags              resource_tags (a map in Parquet, JSON text in CSV); keys lose their
                      ``user_`` (or ``user:``) prefix, ``aws_`` keys stay; empty values dropped
    unblended_cost    line_item_unblended_cost
    amortized_cost    by line item type, as AWS's own amortised-cost queries compute it:
                      SavingsPlanCoveredUsage: savings_plan_savings_plan_effective_cost;
                      DiscountedUsage: reservation_effective_cost;
                      SavingsPlanNegation, SavingsPlanUpfrontFee: 0;
                      SavingsPlanRecurringFee: the unused commitment,
                      savings_plan_total_commitment_to_date - savings_plan_used_commitment
                      (0 when those columns are missing): the used part is already in the
                      covered usage, the unused part is still money spent;
                      RIFee: reservation_unused_amortized_upfront_fee_for_billing_period +
                      reservation_unused_recurring_fee (0 when missing), for the same reason;
                      Fee with a reservation_reservation_a_r_n (an RI bought upfront): 0;
                      anything else (Usage, Tax, Credit, Refund, discounts...): unblended
    net_cost          line_item_net_unblended_cost when present, else unblended
    list_cost         pricing_public_on_demand_cost when present; else 0 for
                      SavingsPlanNegation (the on-demand price sits on the covered line);
                      else unblended
    usage_quantity    line_item_usage_amount
    usage_unit        pricing_unit
    currency          line_item_currency_code
    ================  ===============================================================

    Required columns: bill_billing_period_start_date, bill_payer_account_id,
    line_item_usage_account_id, line_item_usage_start_date, line_item_line_item_type,
    line_item_product_code, line_item_unblended_cost, line_item_currency_code.

Checks, each naming the row and the column: required columns present and none twice, as many
values as columns, numbers and dates parse, required values present, text fits its column, a
three-letter currency, one currency per billing period and billing account, tags a JSON
object, at least one data row. Up to ``MAX_ERRORS`` problems are listed in
``InvalidInput.details["errors"]``; the first is the message.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import gzip
import hashlib
import itertools
import json
import logging
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CostAllocationRollup, CostDailyRollup, CostFact, CostMonthlyRollup, ImportBatch
from models.types import MONEY_PRECISION, MONEY_SCALE
from services import database
from services.costs import bulk
from services.costs.ingest import (
    ARROW_FACT_COLUMNS,
    QUANTITY_SCALE,
    ArrowFacts,
    FactRow,
    allocation_keys,
    billing_period_of,
    replace_period,
    tags_json,
)
from services.errors import InvalidInput

logger = logging.getLogger(__name__)

Format = Literal["focus", "cur2"]

#: How many problems a refused file reports.
MAX_ERRORS = 20
#: Rows per Parquet record batch: bounds memory whatever the file's size.
PARQUET_BATCH_ROWS = 8_192

_MISSING = frozenset({"", "NULL"})
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_MONEY_QUANTUM = Decimal("1E-11")
#: numeric(38, 11): 38 digits in all; quantize() raises beyond that.
_MONEY_CONTEXT = Context(prec=38, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
_ZERO = Decimal(0)
#: Distinct JSON texts (tags, product maps) parsed once per import, up to this many.
_JSON_CACHE_SIZE = 8_192
#: Distinct key-column combinations parsed once per file, up to this many.
_KEY_CACHE_SIZE = 8_192


def _column_length(*columns: Any) -> int:
    return min(int(c.type.length) for c in columns)


#: The stored column of each fact attribute (of the lines or of their keys).
_FACT_COLUMNS = CostFact.__mapper__.columns
_ACCOUNT_ID_LENGTH = _column_length(
    _FACT_COLUMNS["payer_account_id"], _FACT_COLUMNS["usage_account_id"],
    CostDailyRollup.__table__.c.usage_account_id, CostAllocationRollup.__table__.c.usage_account_id,
    CostMonthlyRollup.__table__.c.usage_account_id,
)
_LIMITS = {name: _column_length(_FACT_COLUMNS[name]) for name in (
    "provider", "service", "service_category", "region", "usage_type", "charge_category",
    "resource_id", "usage_unit",
)}


@dataclass(frozen=True)
class _Layout:
    """The columns of one format: logical name -> accepted header names, first present wins."""

    required: dict[str, tuple[str, ...]]
    optional: dict[str, tuple[str, ...]]
    #: The key columns the first pass reads: billing period, billing account, currency, provider.
    period: str
    account: str
    currency: str
    provider: str | None


def _same(*names: str) -> dict[str, tuple[str, ...]]:
    return {name: (name,) for name in names}


_LAYOUTS: dict[str, _Layout] = {
    "focus": _Layout(
        required={**_same("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
                          "ChargeCategory", "ChargePeriodStart", "EffectiveCost", "ListCost"),
                  "ProviderName": ("ProviderName", "ServiceProviderName"),
                  **_same("ServiceName")},
        optional=_same("SubAccountId", "ServiceCategory", "RegionId", "x_UsageType", "SkuId",
                       "ChargeDescription", "ResourceId", "Tags", "ConsumedQuantity",
                       "ConsumedUnit"),
        period="BillingPeriodStart", account="BillingAccountId", currency="BillingCurrency",
        provider="ProviderName",
    ),
    "cur2": _Layout(
        required=_same("bill_billing_period_start_date", "bill_payer_account_id",
                       "line_item_usage_account_id", "line_item_usage_start_date",
                       "line_item_line_item_type", "line_item_product_code",
                       "line_item_unblended_cost", "line_item_currency_code"),
        optional=_same(
            "line_item_usage_type", "line_item_resource_id", "resource_tags",
            "line_item_net_unblended_cost", "pricing_public_on_demand_cost",
            "line_item_usage_amount", "pricing_unit", "product", "product_product_name",
            "product_servicecode", "product_region_code", "product_region",
            "savings_plan_savings_plan_effective_cost", "savings_plan_total_commitment_to_date",
            "savings_plan_used_commitment", "reservation_effective_cost",
            "reservation_unused_amortized_upfront_fee_for_billing_period",
            "reservation_unused_recurring_fee", "reservation_reservation_a_r_n",
        ),
        period="bill_billing_period_start_date", account="bill_payer_account_id",
        currency="line_item_currency_code", provider=None,
    ),
}


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


def detect_format(header: Sequence[str]) -> Format:
    """Tell a FOCUS header from a CUR 2.0 one by the columns each must have."""
    names = {h.strip() for h in header}
    scores = {fmt: sum(1 for aliases in layout.required.values() if names.intersection(aliases))
              for fmt, layout in _LAYOUTS.items()}
    if max(scores.values()) >= 3:
        return "focus" if scores["focus"] >= scores["cur2"] else "cur2"
    if any(n.startswith("lineItem/") for n in names):
        raise InvalidInput("this is a legacy Cost and Usage Report (lineItem/... columns): "
                           "export CUR 2.0 or FOCUS instead")
    raise InvalidInput("not a FOCUS or CUR 2.0 file: the header has neither BilledCost and "
                       "ChargePeriodStart nor line_item_unblended_cost and "
                       "line_item_usage_start_date")


def stored_account_id(value: str) -> str:
    """Return an account id as stored: unchanged if it fits the column, else a stable short form."""
    if len(value) <= _ACCOUNT_ID_LENGTH:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    tail = _ACCOUNT_ID_LENGTH - len(digest) - 4
    return f"...{value[-tail:]}#{digest}"


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
    sources = [_Source(Path(p), label=labels[i] if labels else Path(p).name if len(paths) > 1 else None)
               for i, p in enumerate(paths)]
    checksum = _checksum(sources)
    name = (file_name or ", ".join(s.path.name for s in sources))[:512]
    result = None
    reached = [0.0]  # the share reported last: two passes after a one pass that gave way go on from it

    def report(rows: int, share: float) -> None:
        reached[0] = share
        if on_progress is not None:
            on_progress(rows, share)

    if _columnwise_possible(_format_of(sources)):
        try:
            with database.savepoint(session):  # the two passes start from here again
                result = _import_in_one_pass(session, sources, name=name, actor_id=actor_id, on_progress=report)
        except _NeedsRowPath:
            logger.info("%s: read in two passes", name)
    if result is None:
        left = reached[0]
        result = _import_in_two_passes(session, sources, name=name, actor_id=actor_id,
                                       on_progress=lambda rows, share: report(rows, left + (1 - left) * share))
    for batch in session.scalars(select(ImportBatch).where(ImportBatch.id.in_(result.batch_ids))):
        batch.checksum = checksum
    if _checksum(sources) != checksum:
        raise InvalidInput("the file changed while it was being imported: import it again")
    session.flush()
    logger.info("imported %s: %s %s rows in billing periods %s", name, result.rows, result.format,
                ", ".join(p.isoformat() for p in result.billing_periods))
    return result


def _import_in_one_pass(session: Session, sources: Sequence[_Source], *, name: str, actor_id: int | None,
                        on_progress: Progress | None) -> ImportResult:
    """Import a FOCUS export of one billing period (as exports come), reading it once: the period
    is that of the first row, and the billing accounts it replaces are those its rows name.

    Whatever this pass does not take raises ``_NeedsRowPath``, for the caller to roll back and read
    the file in two passes: rows of another period, no rows, a billing account in two currencies,
    and anything the column-wise pass refuses (see ``_focus_tables``).
    """
    layout = _LAYOUTS["focus"]
    currencies: dict[str, str] = {}
    providers: set[str] = set()
    sizes = [source.path.stat().st_size for source in sources]
    total = sum(sizes) or 1
    consumed = [0]  # bytes of the files read so far

    def parts() -> Iterator[dict[str, Any]]:
        for index, source in enumerate(sources):
            before = sum(sizes[:index])
            for cells, position in _text_batches(source, layout, positions=True):
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
            raise _NeedsRowPath
        period = _TextColumns(first).period(layout.period)[0].as_py()

        def facts() -> Iterator[Any]:
            for cells in itertools.chain([first], batches):
                table = _focus_batch(cells, period, whole=True)
                accounts = table.group_by(["payer_account_id", "currency", "provider"]).aggregate([])
                for account, currency, provider in zip(*accounts.to_pydict().values(), strict=True):
                    providers.add(provider)
                    if currencies.setdefault(account, currency) != currency:
                        raise _NeedsRowPath  # a currency mix: the row-wise pass says where
                yield table

        batch = replace_period(session, source="focus", billing_period=period, rows=ArrowFacts(facts()),
                               payer_account_ids="loaded", file_name=name, actor_id=actor_id, on_chunk=report)
    if batch.row_count == 0:
        raise _NeedsRowPath
    return ImportResult(format="focus", billing_periods=[period], rows=batch.row_count,
                        providers=sorted(providers), batch_ids=[batch.id])


def _import_in_two_passes(session: Session, sources: Sequence[_Source], *, name: str, actor_id: int | None,
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
            except _NeedsRowPath:
                logger.info("%s: billing period %s goes row by row", name, period)
        if batch is None:
            batch = load(rows=_period_facts(holding, fmt=scan.format, period=period, expected=expected))
        batches.append(batch)
        done += expected
    return ImportResult(
        format=scan.format, billing_periods=sorted(scan.periods), rows=scan.rows,
        providers=sorted(scan.providers), batch_ids=[b.id for b in batches],
    )


# --- reading -----------------------------------------------------------------------------------


class _Table(Protocol):
    header: list[str]

    def __enter__(self) -> _Table: ...

    def __exit__(self, *exc: object) -> None: ...

    def records(self, columns: dict[str, str]) -> Iterator[tuple[int, dict[str, object]]]: ...


#: The key under which ``records`` reports a row with the wrong number of values.
_WIDTH_PROBLEM = "\0width"


@dataclass(frozen=True)
class _Source:
    path: Path
    #: The file's name in messages when several files are imported together.
    label: str | None

    def where(self, row: int) -> str:
        return f"{self.label}, row {row}" if self.label else f"row {row}"

    def prefix(self) -> str:
        return f"{self.label}: " if self.label else ""

    def open(self) -> _Table:
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


def _checksum(sources: Sequence[_Source]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        try:
            with source.path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise InvalidInput(f"{source.path.name} cannot be read ({exc.strerror})") from exc
    return digest.hexdigest()


class _CsvTable:
    def __init__(self, source: _Source, *, compressed: bool) -> None:
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
        except (csv.Error, UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
            where = self.source.where(row) if row else f"{self.source.prefix()}header"
            kind = "gzip-compressed UTF-8 CSV" if self.compressed else "UTF-8 CSV"
            raise InvalidInput(f"{where}: the file cannot be read as {kind} ({exc})") from exc

    def records(self, columns: dict[str, str]) -> Iterator[tuple[int, dict[str, object]]]:
        index = [(logical, self.header.index(actual)) for logical, actual in columns.items()]
        width = len(self.header)
        row = 0
        while (values := self._read(row + 1)) is not None:
            row += 1
            if not values:  # a blank line
                continue
            if len(values) != width:
                yield row, {_WIDTH_PROBLEM: f"{len(values)} values where the header has "
                                            f"{width} columns"}
                continue
            yield row, {logical: values[i] for logical, i in index}


class _ParquetTable:
    def __init__(self, source: _Source) -> None:
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


# --- values ------------------------------------------------------------------------------------


class _CellError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@functools.lru_cache(maxsize=4_096)
def _parse_day(text: str) -> dt.date:
    """Return the UTC date of an ISO 8601 time or date (hourly files repeat a few hundred)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date()


class _Cells:
    """One row's values by logical column, with parsers that name the column on failure."""

    __slots__ = ("values", "names", "json_cache")

    def __init__(self, values: dict[str, object], names: dict[str, str],
                 json_cache: dict[str, object]) -> None:
        self.values = values
        self.names = names
        self.json_cache = json_cache

    def has(self, key: str) -> bool:
        return key in self.names

    def fail(self, key: str, message: str) -> _CellError:
        return _CellError(self.names.get(key, key), message)

    def text(self, key: str, *, required: bool = False, limit: int | None = None) -> str | None:
        value = self.values.get(key)
        if value is not None:
            value = (value if value.__class__ is str else str(value)).strip()
            if value in _MISSING:
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
            if text in _MISSING:
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
            if text in _MISSING:
                value = None
            else:
                try:
                    return _parse_day(text)
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
            if text in _MISSING:
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
            return _tag_values(self.mapping(key))
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None


def _tag_values(mapping: dict[str, object]) -> dict[str, str]:
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


def _account(cells: _Cells, key: str, *, required: bool = True) -> str | None:
    value = cells.text(key, required=required)
    return None if value is None else stored_account_id(value)


def _currency(cells: _Cells, key: str) -> str:
    value = cells.text(key, required=True)
    assert value is not None  # required=True raised otherwise
    try:
        return _currency_code(value)
    except ValueError as exc:
        raise cells.fail(key, str(exc)) from None


def _period(cells: _Cells, key: str) -> dt.date:
    day = cells.day(key, required=True)
    assert day is not None  # required=True raised otherwise
    return billing_period_of(day)


def _focus_fact(cells: _Cells, period: dt.date) -> FactRow:
    billing_account = _account(cells, "BillingAccountId")
    usage_start = cells.day("ChargePeriodStart", required=True)
    assert billing_account is not None and usage_start is not None  # required
    usage_type = (cells.text("x_UsageType", limit=_LIMITS["usage_type"])
                  or cells.text("SkuId", limit=_LIMITS["usage_type"])
                  or (cells.text("ChargeDescription") or "")[:_LIMITS["usage_type"]])
    effective = cells.money("EffectiveCost", required=True)
    return FactRow(
        usage_date=usage_start,
        billing_period=period,
        provider=cells.text("ProviderName", required=True, limit=_LIMITS["provider"]) or "",
        payer_account_id=billing_account,
        usage_account_id=_account(cells, "SubAccountId", required=False) or billing_account,
        service=cells.text("ServiceName", required=True, limit=_LIMITS["service"]) or "",
        service_category=cells.text("ServiceCategory", limit=_LIMITS["service_category"]),
        region=cells.text("RegionId", limit=_LIMITS["region"]) or "global",
        usage_type=usage_type,
        charge_category=cells.text("ChargeCategory", required=True,
                                   limit=_LIMITS["charge_category"]) or "",
        resource_id=cells.text("ResourceId", limit=_LIMITS["resource_id"]),
        tags=cells.tags("Tags"),
        unblended_cost=cells.money("BilledCost", required=True) or _ZERO,
        amortized_cost=effective or _ZERO,
        net_cost=effective or _ZERO,
        list_cost=cells.money("ListCost", required=True) or _ZERO,
        usage_quantity=cells.number("ConsumedQuantity"),
        usage_unit=cells.text("ConsumedUnit", limit=_LIMITS["usage_unit"]),
        currency=_currency(cells, "BillingCurrency"),
    )


def _cur2_amortized(cells: _Cells, line_type: str, unblended: Decimal) -> Decimal:
    if line_type == "SavingsPlanCoveredUsage":
        return cells.money("savings_plan_savings_plan_effective_cost", required=True) or _ZERO
    if line_type == "DiscountedUsage":
        return cells.money("reservation_effective_cost", required=True) or _ZERO
    if line_type in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return _ZERO
    if line_type == "SavingsPlanRecurringFee":
        total = cells.money("savings_plan_total_commitment_to_date")
        used = cells.money("savings_plan_used_commitment")
        return _ZERO if total is None or used is None else total - used
    if line_type == "RIFee":
        upfront = cells.money("reservation_unused_amortized_upfront_fee_for_billing_period")
        recurring = cells.money("reservation_unused_recurring_fee")
        return (upfront or _ZERO) + (recurring or _ZERO)
    if line_type == "Fee" and cells.text("reservation_reservation_a_r_n"):
        return _ZERO
    return unblended


def _map_text(mapping: dict[str, object], key: str) -> str | None:
    value = mapping.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return None if text in _MISSING else text


def _cur2_tags(raw: dict[str, str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if not value:
            continue
        for prefix in ("user_", "user:"):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        tags[key] = value
    return tags


def _cur2_fact(cells: _Cells, period: dt.date) -> FactRow:
    usage_start = cells.day("line_item_usage_start_date", required=True)
    payer = _account(cells, "bill_payer_account_id")
    account = _account(cells, "line_item_usage_account_id")
    line_type = cells.text("line_item_line_item_type", required=True,
                           limit=_LIMITS["charge_category"])
    unblended = cells.money("line_item_unblended_cost", required=True)
    assert usage_start and payer and account and line_type and unblended is not None  # required
    product = cells.mapping("product") if cells.has("product") else {}
    service = (cells.text("product_product_name") or _map_text(product, "product_name")
               or cells.text("line_item_product_code") or cells.text("product_servicecode"))
    if service is None:
        raise cells.fail("line_item_product_code", "missing value")
    if len(service) > _LIMITS["service"]:
        raise cells.fail("line_item_product_code",
                         f"{service[:40]!r}... is longer than {_LIMITS['service']} characters")
    region = (cells.text("product_region_code") or _map_text(product, "region_code")
              or cells.text("product_region") or _map_text(product, "region") or "global")
    if len(region) > _LIMITS["region"]:
        raise cells.fail("product_region_code",
                         f"{region[:40]!r} is longer than {_LIMITS['region']} characters")
    net = cells.money("line_item_net_unblended_cost")
    listed = cells.money("pricing_public_on_demand_cost")
    if listed is None:
        listed = _ZERO if line_type == "SavingsPlanNegation" else unblended
    return FactRow(
        usage_date=usage_start,
        billing_period=period,
        provider="AWS",
        payer_account_id=payer,
        usage_account_id=account,
        service=service,
        region=region,
        usage_type=cells.text("line_item_usage_type", limit=_LIMITS["usage_type"]) or "",
        charge_category=line_type,
        resource_id=cells.text("line_item_resource_id", limit=_LIMITS["resource_id"]),
        tags=_cur2_tags(cells.tags("resource_tags")),
        unblended_cost=unblended,
        amortized_cost=_cur2_amortized(cells, line_type, unblended),
        net_cost=unblended if net is None else net,
        list_cost=listed,
        usage_quantity=cells.number("line_item_usage_amount"),
        usage_unit=cells.text("pricing_unit", limit=_LIMITS["usage_unit"]),
        currency=_currency(cells, "line_item_currency_code"),
    )


_MAPPERS: dict[str, Callable[[_Cells, dt.date], FactRow]] = {"focus": _focus_fact, "cur2": _cur2_fact}


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


def _format_of(sources: Sequence[_Source]) -> Format:
    formats = set()
    for source in sources:
        with source.open() as table:
            formats.add(detect_format(table.header))
    if len(formats) > 1:
        raise InvalidInput("the files mix FOCUS and CUR 2.0: import them separately")
    return formats.pop()


def _columns(table: _Table, source: _Source, layout: _Layout) -> dict[str, str]:
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


def _keys(cells: _Cells, layout: _Layout) -> tuple[dt.date, str, str, str]:
    """Return a row's billing period, billing account, currency and provider."""
    account = _account(cells, layout.account)
    provider = ("AWS" if layout.provider is None
                else cells.text(layout.provider, required=True, limit=_LIMITS["provider"]))
    assert account is not None and provider is not None  # required=True raised otherwise
    return _period(cells, layout.period), account, _currency(cells, layout.currency), provider


def _scan(sources: Sequence[_Source]) -> _Scan:
    """Read the key columns of every row; raise if any is wrong or the files hold no row.

    Column-wise where it can (see ``_scan_columnwise``), else, or when anything is wrong, row by
    row: that pass names every problem by row and column.
    """
    fmt = _format_of(sources)
    if _columnwise_possible(fmt):
        try:
            return _scan_columnwise(sources, fmt)
        except _NeedsRowPath:
            logger.info("the key columns go row by row")
    return _scan_rows(sources, fmt)


def _scan_columnwise(sources: Sequence[_Source], fmt: Format) -> _Scan:
    """The first pass on whole columns: each distinct key parsed once, rows counted by Arrow."""
    import pyarrow as pa

    layout = _LAYOUTS[fmt]
    keys = [layout.period, layout.account, layout.currency, *([layout.provider] if layout.provider else [])]
    scan = _Scan(format=fmt)
    for index, source in enumerate(sources):
        for cells in _text_batches(source, layout, keys):
            columns = _TextColumns(cells)
            table = pa.table({
                "period": columns.period(layout.period),
                "account": columns.parsed(layout.account, stored_account_id, pa.string(), required=True),
                "currency": columns.parsed(layout.currency, _currency_code, pa.string(), required=True),
                "provider": (columns.text(layout.provider, required=True, limit=_LIMITS["provider"])
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
                    raise _NeedsRowPath  # a currency mix: the row-wise pass says where
    if scan.rows == 0:
        raise _NeedsRowPath
    return scan


def _scan_rows(sources: Sequence[_Source], fmt: Format) -> _Scan:
    """The first pass row by row."""
    layout = _LAYOUTS[fmt]
    keys = [layout.period, layout.account, layout.currency]
    if layout.provider is not None:
        keys.append(layout.provider)
    scan = _Scan(format=fmt)
    errors = _Errors()
    for index, source in enumerate(sources):
        with source.open() as table:
            columns = _columns(table, source, layout)
            wanted = {k: columns[k] for k in keys}
            # A file repeats a handful of key combinations: parse each once.
            parsed: dict[tuple[object, ...], tuple[dt.date, str, str, str] | _CellError] = {}
            for row, values in table.records(wanted):
                if errors.full:
                    errors.raise_if_any()
                if _WIDTH_PROBLEM in values:
                    errors.add(f"{source.where(row)}: {values[_WIDTH_PROBLEM]}")
                    continue
                raw = tuple(values.values())
                found = parsed.get(raw)
                if found is None:
                    try:
                        found = _keys(_Cells(values, wanted, {}), layout)
                    except _CellError as exc:
                        found = exc
                    if len(parsed) >= _KEY_CACHE_SIZE:
                        parsed.clear()
                    parsed[raw] = found
                if isinstance(found, _CellError):
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


def _period_facts(sources: Sequence[_Source], *, fmt: Format, period: dt.date,
                  expected: int) -> Iterator[FactRow]:
    """Stream one billing period's facts; raise ``InvalidInput`` for rows that do not parse.

    Bad rows are collected (and not yielded) until ``MAX_ERRORS``, then reported together.
    """
    layout = _LAYOUTS[fmt]
    mapper = _MAPPERS[fmt]
    errors = _Errors()
    json_cache: dict[str, object] = {}
    count = 0
    for source in sources:
        with source.open() as table:
            columns = _columns(table, source, layout)
            for row, values in table.records(columns):
                if _WIDTH_PROBLEM in values:
                    continue  # reported by the first pass, which would have refused the file
                cells = _Cells(values, columns, json_cache)
                try:
                    if _period(cells, layout.period) != period:
                        continue
                    fact = mapper(cells, period)
                except _CellError as exc:
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


# --- the column-wise pass ------------------------------------------------------------------------


class _NeedsRowPath(Exception):
    """The column-wise pass met something only the row-wise pass handles or reports exactly."""


#: Bytes of CSV the column-wise pass parses at a time (some 25,000 rows of a FOCUS export).
ARROW_BLOCK_BYTES = 8 << 20
#: The same when reading every column to load them (some 100,000 rows): fewer, larger batches
#: cost less per row downstream (key look-ups, COPY writes); the key pass keeps the smaller blocks,
#: which Arrow's reader overlaps better with decompressing.
LOAD_BLOCK_BYTES = 16 << 20
#: Rows of Parquet the column-wise pass reads at a time.
PARQUET_COLUMN_BATCH_ROWS = 25_000
_WIDE_MONEY = (38, 20)


def _columnwise_possible(fmt: Format) -> bool:
    """FOCUS goes column-wise (CSV, gzip CSV or Parquet); CUR 2.0 goes row by row."""
    return fmt == "focus"


def _focus_tables(sources: Sequence[_Source], *, period: dt.date, expected: int) -> Iterator[Any]:
    """Yield one billing period's FOCUS rows as Arrow tables of fact columns (``ArrowFacts``).

    The same mapping as ``_focus_fact``, computed on whole columns by Arrow: text trimmed and
    "missing" made null, money cast exactly and rounded half-even to the money scale, dates, account
    ids, currencies and tags parsed once per distinct value with the row-wise parsers themselves.
    Anything out of the ordinary (a missing required value, text too long, a number or date that
    does not parse, a changed file...) raises ``_NeedsRowPath``: the caller then rolls this period
    back and takes it row by row, which reports each problem by row and column.
    """
    count = 0
    for source in sources:
        for cells in _text_batches(source, _LAYOUTS["focus"]):
            facts = _focus_batch(cells, period)
            count += facts.num_rows
            if facts.num_rows:
                yield facts
    if count != expected:
        raise _NeedsRowPath


def _text_batches(source: _Source, layout: _Layout, keys: Sequence[str] | None = None, *,
                  positions: bool = False) -> Iterator[Any]:
    """Read a source with Arrow, a block at a time: the layout's columns (or just ``keys``) as
    text, by logical name (with ``positions``: each with the bytes of the file read by then).
    Whatever Arrow cannot read raises ``_NeedsRowPath``."""
    import pyarrow as pa

    with source.open() as table:
        columns = _columns(table, source, layout)
        parquet = isinstance(table, _ParquetTable)
        compressed = isinstance(table, _CsvTable) and table.compressed
    if keys is not None:
        columns = {key: columns[key] for key in keys}
    logical = {actual: name for name, actual in columns.items()}
    try:
        if parquet:
            batches = _parquet_text_batches(source, logical)
        elif any(name != name.strip() for name in logical):
            raise _NeedsRowPath  # Arrow would not find a header name the row-wise reader strips
        else:
            batches = _csv_text_batches(source, logical, compressed=compressed,
                                        block_bytes=ARROW_BLOCK_BYTES if keys is not None else LOAD_BLOCK_BYTES)
        for cells, position in batches:
            yield (cells, position) if positions else cells
    except (pa.ArrowException, UnicodeDecodeError, OSError, EOFError) as exc:
        raise _NeedsRowPath from exc


def _csv_text_batches(source: _Source, logical: dict[str, str], *, compressed: bool,
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


def _parquet_text_batches(source: _Source, logical: dict[str, str]) -> Iterator[tuple[dict[str, Any], int]]:
    """Parquet columns as the text ``_Cells`` would read from them (see ``_parquet_text``), and
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
    raise _NeedsRowPath


class _TextColumns:
    """A batch of text columns by logical name, read the way ``_Cells`` reads one row's values;
    anything ``_Cells`` would refuse or treat specially raises ``_NeedsRowPath`` instead."""

    def __init__(self, cells: dict[str, Any]) -> None:
        import pyarrow as pa

        self.cells = cells
        self.rows = len(next(iter(cells.values())))
        self._missing = pa.array(sorted(_MISSING), type=pa.string())

    def filter(self, mask: Any) -> None:
        self.cells = {key: column.filter(mask) for key, column in self.cells.items()}
        self.rows = len(next(iter(self.cells.values())))

    def text(self, key: str, *, required: bool = False, limit: int | None = None) -> Any:
        """Trimmed text, "" and NULL as null."""
        import pyarrow as pa

        column = self.cells.get(key)
        if column is None:
            if required:
                raise _NeedsRowPath
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
            raise _NeedsRowPath
        if limit is not None and (pc.max(pc.utf8_length(column)).as_py() or 0) > limit:
            raise _NeedsRowPath
        return column

    def parsed(self, key: str, parse: Callable[[str], Any], kind: Any, *, required: bool = False) -> Any:
        """``text`` parsed with the row-wise parser, each distinct value once (trimmed once, too:
        the values are told apart before they are cleaned)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.cells.get(key)
        if column is None:
            if required:
                raise _NeedsRowPath
            return pa.nulls(self.rows, type=kind)
        encoded = pc.dictionary_encode(column)
        if required and encoded.null_count:
            raise _NeedsRowPath
        values = self._clean(encoded.dictionary, required=required).to_pylist()
        try:
            parsed = [None if value is None else parse(value) for value in values]
        except (ValueError, _CellError):
            raise _NeedsRowPath from None
        return pa.array(parsed, type=kind).take(encoded.indices)

    def money(self, key: str) -> Any:
        """Exact, rounded half-even to the money scale, as ``_Cells.money``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        exact = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
        raw = self.cells.get(key)
        if raw is not None and not raw.null_count:
            try:  # the usual case: every value a number with no more decimals than the money scale,
                # and none missing or padded (what would not cast as it stands is cleaned first)
                return raw.cast(exact)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        column = self.text(key, required=True)
        try:  # exact already when no value has more decimals than the money scale
            return column.cast(exact)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        try:
            wide = column.cast(pa.decimal128(*_WIDE_MONEY))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _NeedsRowPath from None
        rounded = pc.round(wide, ndigits=MONEY_SCALE, round_mode="half_to_even")
        return rounded.cast(exact)

    def number(self, key: str, scale: int) -> Any:
        """Exact as ``_Cells.number``; more decimals than ``scale`` go row by row."""
        import pyarrow as pa

        try:
            return self.text(key).cast(pa.decimal128(MONEY_PRECISION, scale))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _NeedsRowPath from None

    def period(self, key: str) -> Any:
        import pyarrow as pa

        return self.parsed(key, lambda v: billing_period_of(_parse_day(v)), pa.date32(), required=True)


def _focus_batch(cells: dict[str, Any], period: dt.date, *, whole: bool = False) -> Any:
    """Map one batch of FOCUS text columns to the fact columns of its rows in ``period``
    (``whole``: the batch must hold no other rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = _TextColumns(cells)
    text, parsed, money = columns.text, columns.parsed, columns.money
    in_period = pc.equal(columns.period("BillingPeriodStart"), pa.scalar(period))
    if not pc.all(in_period).as_py():
        if whole:
            raise _NeedsRowPath
        columns.filter(in_period)
    billing_account = parsed("BillingAccountId", stored_account_id, pa.string(), required=True)
    sub_account = parsed("SubAccountId", stored_account_id, pa.string())
    limit = _LIMITS["usage_type"]
    description = text("ChargeDescription")
    usage_type = pc.coalesce(text("x_UsageType", limit=limit), text("SkuId", limit=limit),
                             pc.utf8_slice_codeunits(description, 0, limit), pa.scalar("", pa.string()))
    tags = parsed("Tags", _tag_columns, pa.struct([("json", pa.string()), ("team", pa.string()),
                                                   ("cost_center", pa.string()), ("environment", pa.string())]))
    none = pa.scalar("{}", pa.string())
    quantity = columns.number("ConsumedQuantity", QUANTITY_SCALE)
    effective = money("EffectiveCost")
    facts = {
        "usage_date": parsed("ChargePeriodStart", _parse_day, pa.date32(), required=True),
        "provider": text("ProviderName", required=True, limit=_LIMITS["provider"]),
        "payer_account_id": billing_account,
        "usage_account_id": pc.coalesce(sub_account, billing_account),
        "service": text("ServiceName", required=True, limit=_LIMITS["service"]),
        "service_category": text("ServiceCategory", limit=_LIMITS["service_category"]),
        "region": pc.coalesce(text("RegionId", limit=_LIMITS["region"]), pa.scalar("global", pa.string())),
        "usage_type": usage_type,
        "charge_category": text("ChargeCategory", required=True, limit=_LIMITS["charge_category"]),
        "resource_id": text("ResourceId", limit=_LIMITS["resource_id"]),
        "tags": pc.coalesce(pc.struct_field(tags, "json"), none),
        **{key: pc.coalesce(pc.struct_field(tags, key), pa.scalar("", pa.string()))
           for key in ("team", "cost_center", "environment")},
        "unblended_cost": money("BilledCost"),
        "amortized_cost": effective,
        "net_cost": effective,
        "list_cost": money("ListCost"),
        "usage_quantity": quantity,
        "usage_unit": text("ConsumedUnit", limit=_LIMITS["usage_unit"]),
        "currency": parsed("BillingCurrency", _currency_code, pa.string(), required=True),
    }
    return pa.table({name: facts[name] for name in ARROW_FACT_COLUMNS})


def _tag_columns(text: str) -> dict[str, str]:
    """A Tags cell as stored: its JSON and the allocation keys it resolves to."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    tags = _tag_values(value)
    team, cost_center, environment = allocation_keys(tags)
    return {"json": tags_json(tags), "team": team, "cost_center": cost_center, "environment": environment}


def _currency_code(value: str) -> str:
    if len(value) != 3 or not value.isalpha():
        raise ValueError(f"{value[:40]!r} is not a three-letter currency code")
    return value.upper()


__all__ = ["MAX_ERRORS", "Format", "ImportResult", "detect_format", "import_file",
           "import_files", "stored_account_id"]
