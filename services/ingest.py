"""Land cost facts from any source: one batch per source and billing period, all or nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import cast

from sqlalchemy import Connection, Table, delete, insert, select, text, update
from sqlalchemy.orm import Session

from models import CostFact, DataVersion, ImportBatch
from models.base import utcnow
from services import rollups

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5_000
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


def _to_mapping(row: FactRow, *, period: dt.date, source: str, batch_id: int) -> dict[str, object]:
    return {
        "usage_date": row.usage_date,
        "billing_period": period,
        "provider": row.provider,
        "payer_account_id": row.payer_account_id or row.usage_account_id,
        "usage_account_id": row.usage_account_id,
        "service": row.service,
        "service_category": row.service_category,
        "region": row.region or "global",
        "usage_type": row.usage_type,
        "charge_category": row.charge_category,
        "resource_id": row.resource_id,
        "tags": row.tags,
        "team": _first_tag(row.tags, TEAM_TAGS),
        "cost_center": _first_tag(row.tags, COST_CENTER_TAGS),
        "environment": _first_tag(row.tags, ENVIRONMENT_TAGS)[:32],
        "unblended_cost": row.unblended_cost,
        "amortized_cost": row.amortized_cost,
        "net_cost": row.net_cost,
        "list_cost": row.list_cost,
        "usage_quantity": row.usage_quantity,
        "usage_unit": row.usage_unit,
        "currency": row.currency,
        "source": source,
        "import_batch_id": batch_id,
    }


_COPY_COLUMNS = ("usage_date", "billing_period", "provider", "payer_account_id", "usage_account_id", "service",
                 "service_category", "region", "usage_type", "charge_category", "resource_id", "tags", "team",
                 "cost_center", "environment", "unblended_cost", "amortized_cost", "net_cost", "list_cost",
                 "usage_quantity", "usage_unit", "currency", "source", "import_batch_id")
_COPY_TEXT = ("provider", "payer_account_id", "usage_account_id", "service", "service_category", "region",
              "usage_type", "charge_category", "resource_id", "team", "cost_center", "environment",
              "unblended_cost", "amortized_cost", "net_cost", "list_cost", "usage_quantity", "usage_unit",
              "currency", "source")


def _copy(connection: Connection, mappings: list[dict[str, object]]) -> None:
    """Load rows with PostgreSQL's COPY: the columns go to Arrow and its CSV writer (C++) writes
    them, several times faster than formatting each row in Python, and COPY beats INSERTs."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    def text(name: str) -> pa.Array:
        return pa.array([None if (v := m[name]) is None else str(v) for m in mappings], type=pa.string())

    columns = {name: text(name) for name in _COPY_TEXT}
    columns["usage_date"] = pa.array([m["usage_date"] for m in mappings], type=pa.date32())
    columns["billing_period"] = pa.array([m["billing_period"] for m in mappings], type=pa.date32())
    columns["tags"] = pa.array([_tags_json(m["tags"]) for m in mappings], type=pa.string())
    columns["import_batch_id"] = pa.array([m["import_batch_id"] for m in mappings], type=pa.int64())
    buffer = pa.BufferOutputStream()
    pa_csv.write_csv(pa.table([columns[c] for c in _COPY_COLUMNS], names=list(_COPY_COLUMNS)), buffer,
                     pa_csv.WriteOptions(include_header=False))
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]  # psycopg 3 connection
            f"COPY cost_facts ({', '.join(_COPY_COLUMNS)}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(memoryview(buffer.getvalue()))


def _tags_json(tags: object) -> str:
    return json.dumps(tags, separators=(",", ":")) if tags else "{}"


def _chunks(rows: Iterable[FactRow], size: int) -> Iterator[list[FactRow]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def replace_period(
    session: Session,
    *,
    source: str,
    billing_period: dt.date,
    rows: Iterable[FactRow],
    actor_id: int | None = None,
    file_name: str | None = None,
    payer_account_ids: Collection[str] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> ImportBatch:
    """Replace one source's facts for one billing period and rebuild that period's rollups.

    ``payer_account_ids`` narrows what is replaced to those payer (billing) accounts, so that
    files of two organisations for the same month do not replace each other. Runs inside the
    caller's transaction: if anything fails the caller rolls back and the database is as it was.
    Importing the same period again replaces it, never duplicates it.
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
    total = 0
    for chunk in _chunks(rows, CHUNK_SIZE):
        for row in chunk:
            row_period = billing_period_of(row.billing_period or row.usage_date)
            if row_period != period:
                raise ValueError(
                    f"a row of billing period {row_period} (dated {row.usage_date}) does not belong "
                    f"to billing period {period}"
                )
        mappings = [_to_mapping(r, period=period, source=source, batch_id=batch.id) for r in chunk]
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            _copy(connection, mappings)
        else:
            # A plain table insert (executemany) is much faster than the ORM's bulk path.
            connection.execute(insert(cast(Table, CostFact.__table__)), mappings)
        total += len(chunk)
        if on_chunk is not None:
            on_chunk(total)
    if total >= ANALYZE_AFTER_ROWS and session.connection().dialect.name == "postgresql":
        # Fresh statistics before the rollups read these rows back: without them the planner
        # takes the new month for a handful of rows and sorts a million on disk.
        session.execute(text("ANALYZE cost_facts"))
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
