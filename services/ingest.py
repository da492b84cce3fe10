"""Land cost facts from any source: one batch per source and billing period, all or nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, cast

from sqlalchemy import Numeric, delete, select, text, update
from sqlalchemy.orm import Session

from models import CostFact, DataVersion, ImportBatch
from models.base import utcnow
from models.types import MONEY_PRECISION, MONEY_SCALE
from services import bulk, rollups

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: Rows per chunk: an insert on SQLite (its values pass through Python objects), or a write into
#: PostgreSQL's COPY (Arrow columns, a few times smaller, and fewer round trips pay).
CHUNK_SIZE = 5_000
COPY_CHUNK_SIZE = 20_000
#: A load at least this large refreshes the planner's statistics before the rollups are rebuilt.
ANALYZE_AFTER_ROWS = 100_000

#: Tag keys that resolve to each allocation key, first match wins.
TEAM_TAGS = ("team", "Team", "owner_team")
COST_CENTER_TAGS = ("cost-center", "cost_center", "CostCenter", "costcenter")
ENVIRONMENT_TAGS = ("environment", "Environment", "env")


@dataclass(frozen=True, slots=True)
class FactRow:
    """One daily cost line as every importer produces it."""

    usage_date: dt.date
    usage_account_id: str
    service: str
    unblended_cost: Decimal
    amortized_cost: Decimal
    net_cost: Decimal
    list_cost: Decimal
    payer_account_id: str = ""
    provider: str = "AWS"
    service_category: str | None = None
    region: str = "global"
    usage_type: str = ""
    charge_category: str = "Usage"
    resource_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    usage_quantity: Decimal | None = None
    usage_unit: str | None = None
    currency: str = "USD"
    #: The invoice month the row belongs to; defaults to the month of ``usage_date``. FOCUS and
    #: CUR say it explicitly (a credit or a fee may be dated outside its billing period).
    billing_period: dt.date | None = None


def billing_period_of(day: dt.date) -> dt.date:
    """Return the first day of the month that holds ``day``."""
    return day.replace(day=1)


def _first_tag(tags: dict[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = tags.get(key)
        if value:
            return str(value)[:64]
    return ""


def allocation_keys(tags: dict[str, str]) -> tuple[str, str, str]:
    """Return the team, cost centre and environment that tags resolve to ("" for none)."""
    if not tags:
        return "", "", ""
    return (_first_tag(tags, TEAM_TAGS), _first_tag(tags, COST_CENTER_TAGS),
            _first_tag(tags, ENVIRONMENT_TAGS)[:32])


class ArrowFacts:
    """Facts already in Arrow tables, for loaders that parse column by column.

    Each table has the columns of ``ARROW_FACT_COLUMNS``: tags as their JSON text with the
    allocation keys beside them (see ``allocation_keys`` and ``tags_json``), money as decimal128 at
    the money scale; the billing period, source and batch are added here. Rows must all belong
    to the billing period being replaced (the loader filters them).
    """

    def __init__(self, tables: Iterable[pa.Table]) -> None:
        self.tables = tables


#: The fact columns as loaded, in order (``id`` is the database's).
_COLUMNS = ("usage_date", "billing_period", "provider", "payer_account_id", "usage_account_id", "service",
            "service_category", "region", "usage_type", "charge_category", "resource_id", "tags", "team",
            "cost_center", "environment", "unblended_cost", "amortized_cost", "net_cost", "list_cost",
            "usage_quantity", "usage_unit", "currency", "source", "import_batch_id")
#: What an ``ArrowFacts`` table holds: every fact column but those the load itself sets.
ARROW_FACT_COLUMNS = tuple(c for c in _COLUMNS if c not in ("billing_period", "source", "import_batch_id"))
#: The scale of ``usage_quantity`` (its column type says it).
QUANTITY_SCALE = int(cast(Numeric, CostFact.__table__.c.usage_quantity.type).scale or 0)


def _to_columns(chunk: list[FactRow], *, period: dt.date, source: str, batch_id: int) -> dict[str, list[object]]:
    """Return a chunk of rows as one list per fact column (what COPY, Arrow and inserts all take)."""
    count = len(chunk)
    tags: list[dict[str, str]] = [row.tags for row in chunk]
    keys = [allocation_keys(t) for t in tags]
    return {
        "usage_date": [row.usage_date for row in chunk],
        "billing_period": [period] * count,
        "provider": [row.provider for row in chunk],
        "payer_account_id": [row.payer_account_id or row.usage_account_id for row in chunk],
        "usage_account_id": [row.usage_account_id for row in chunk],
        "service": [row.service for row in chunk],
        "service_category": [row.service_category for row in chunk],
        "region": [row.region or "global" for row in chunk],
        "usage_type": [row.usage_type for row in chunk],
        "charge_category": [row.charge_category for row in chunk],
        "resource_id": [row.resource_id for row in chunk],
        "tags": list(tags),
        "team": [k[0] for k in keys],
        "cost_center": [k[1] for k in keys],
        "environment": [k[2] for k in keys],
        "unblended_cost": [row.unblended_cost for row in chunk],
        "amortized_cost": [row.amortized_cost for row in chunk],
        "net_cost": [row.net_cost for row in chunk],
        "list_cost": [row.list_cost for row in chunk],
        "usage_quantity": [row.usage_quantity for row in chunk],
        "usage_unit": [row.usage_unit for row in chunk],
        "currency": [row.currency for row in chunk],
        "source": [source] * count,
        "import_batch_id": [batch_id] * count,
    }


def _to_table(columns: dict[str, list[object]]) -> pa.Table:
    """Return the columns as one Arrow table, typed: money as decimal128 at the money scale
    (as text when a value has more decimals, for the database to round as it stores it)."""
    import pyarrow as pa

    def exact(values: list[object], scale: int) -> pa.Array:
        try:
            return pa.array(values, type=pa.decimal128(MONEY_PRECISION, scale))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())

    arrays = {}
    for name, values in columns.items():
        if name in ("usage_date", "billing_period"):
            arrays[name] = pa.array(values, type=pa.date32())
        elif name in rollups.MONEY_COLUMNS:
            arrays[name] = exact(values, MONEY_SCALE)
        elif name == "usage_quantity":
            arrays[name] = exact(values, QUANTITY_SCALE)
        elif name == "tags":
            arrays[name] = pa.array([tags_json(t) for t in values], type=pa.string())
        elif name == "import_batch_id":
            arrays[name] = pa.array(values, type=pa.int64())
        else:
            arrays[name] = pa.array(values, type=pa.string())
    return pa.table(arrays)


def tags_json(tags: object) -> str:
    """Return tags as stored: compact JSON, ``{}`` for none."""
    return json.dumps(tags, separators=(",", ":")) if tags else "{}"


def _chunks(rows: Iterable[FactRow], size: int) -> Iterator[list[FactRow]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _tables(rows: Iterable[FactRow] | ArrowFacts, *, period: dt.date, source: str, batch_id: int,
            chunk_size: int) -> Iterator[pa.Table]:
    """Yield the rows as Arrow tables of every fact column, at most ``chunk_size`` rows each."""
    import pyarrow as pa

    if isinstance(rows, ArrowFacts):
        for given in rows.tables:
            for at in range(0, given.num_rows, chunk_size):
                piece = given.slice(at, chunk_size).select(list(ARROW_FACT_COLUMNS))
                count = piece.num_rows
                for name, value, kind in (("billing_period", period, pa.date32()), ("source", source, pa.string()),
                                          ("import_batch_id", batch_id, pa.int64())):
                    piece = piece.append_column(name, pa.array([value] * count, type=kind))
                yield piece.select(list(_COLUMNS))
        return
    for chunk in _chunks(rows, chunk_size):
        for row in chunk:
            row_period = billing_period_of(row.billing_period or row.usage_date)
            if row_period != period:
                raise ValueError(
                    f"a row of billing period {row_period} (dated {row.usage_date}) does not belong "
                    f"to billing period {period}"
                )
        yield _to_table(_to_columns(chunk, period=period, source=source, batch_id=batch_id))


def replace_period(
    session: Session,
    *,
    source: str,
    billing_period: dt.date,
    rows: Iterable[FactRow] | ArrowFacts,
    actor_id: int | None = None,
    file_name: str | None = None,
    payer_account_ids: Collection[str] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> ImportBatch:
    """Replace one source's facts for one billing period and rebuild that period's rollups.

    ``payer_account_ids`` narrows what is replaced to those payer (billing) accounts, so that
    files of two organisations for the same month do not replace each other. Runs inside the
    caller's transaction: if anything fails the caller rolls back and the database is as it was.
    Importing the same period again replaces it, never duplicates it. ``on_chunk`` (rows written
    so far) must not use ``session``: on PostgreSQL a COPY is open on its connection meanwhile.
    """
    period = billing_period_of(billing_period)
    batch = ImportBatch(source=source, billing_period=period, created_by_id=actor_id,
                        file_name=file_name, status="running")
    session.add(batch)
    session.flush()
    stale = delete(CostFact).where(CostFact.billing_period == period, CostFact.source == source)
    if payer_account_ids is not None:
        stale = stale.where(CostFact.payer_account_id.in_(sorted(payer_account_ids)))
    session.execute(stale)
    # When these rows will be all the period holds, the rollups are summed from them on the way in;
    # otherwise (other sources or payers stay in the period) they are rebuilt from the stored facts.
    alone = session.scalar(select(CostFact.id).where(CostFact.billing_period == period).limit(1)) is None
    sums = rollups.PeriodSums() if alone else None
    total = 0
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    with ExitStack() as stack:
        # On PostgreSQL one COPY takes the whole period, fed as the rows come (see copy_writer).
        copy = stack.enter_context(bulk.copy_writer(connection, "cost_facts", _COLUMNS)) if postgresql else None
        for table in _tables(rows, period=period, source=source, batch_id=batch.id,
                             chunk_size=COPY_CHUNK_SIZE if postgresql else CHUNK_SIZE):
            if copy is not None:
                copy(table)
            else:
                bulk.insert_rows(connection, CostFact.__tablename__, table)
            if sums is not None and not sums.add(table):
                sums = None
            total += table.num_rows
            if on_chunk is not None:
                on_chunk(total)
    if total >= ANALYZE_AFTER_ROWS and postgresql:
        # Fresh statistics for whatever reads these rows next (the SQL rebuild below included):
        # without them the planner takes the new month for a handful of rows and sorts a million on disk.
        session.execute(text("ANALYZE cost_facts"))
    if sums is not None:
        sums.write(session, billing_period=period)
    else:
        rollups.rebuild_period(session, billing_period=period)
    batch.row_count = total
    batch.status = "succeeded"
    batch.finished_at = utcnow()
    bump_data_version(session)
    logger.info("imported %s rows from %s for %s", total, source, period)
    return batch


def bump_data_version(session: Session) -> int:
    """Advance the data version so that every cached query result is stale."""
    current = session.scalar(select(DataVersion).where(DataVersion.id == 1).with_for_update())
    if current is None:
        session.add(DataVersion(id=1, version=1))
        session.flush()
        return 1
    session.execute(
        update(DataVersion).where(DataVersion.id == 1).values(version=current.version + 1)
    )
    return current.version + 1


def get_data_version(session: Session) -> int:
    """Return the current data version (0 before any import)."""
    return session.scalar(select(DataVersion.version).where(DataVersion.id == 1)) or 0
