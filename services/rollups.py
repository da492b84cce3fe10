"""Rollup tables: rebuilt per billing period from the facts, so dashboards never scan facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, false, func, insert, or_, select
from sqlalchemy.orm import Session

from models import (
    CostAllocationRollup,
    CostDailyRollup,
    CostFact,
    CostMonthlyRollup,
    CostSummaryRollup,
    CostTeamDailyRollup,
)
from models.types import MONEY_PRECISION, MONEY_SCALE, money_sum
from services import bulk

#: The money columns of facts and rollups alike.
MONEY_COLUMNS = ("unblended_cost", "amortized_cost", "net_cost", "list_cost")
#: When several sources hold the same payer's costs for a month, the most detailed one counts
#: and the others are kept but not added (never the same dollar twice).
SOURCE_PRIORITY = ("cur2", "focus", "cost_explorer", "aws_finops", "demo")


def counted_sources(session: Session, *, billing_period: dt.date) -> dict[str, set[str]]:
    """Return, per payer account, the source(s) whose facts count for this billing period."""
    rows = session.execute(
        select(CostFact.payer_account_id, CostFact.source)
        .where(CostFact.billing_period == billing_period).distinct()
    ).all()
    by_payer: dict[str, set[str]] = {}
    for payer, source in rows:
        by_payer.setdefault(payer, set()).add(source)
    rank = {name: i for i, name in enumerate(SOURCE_PRIORITY)}

    def best(sources: set[str]) -> set[str]:
        top = min(rank.get(s, len(SOURCE_PRIORITY)) for s in sources)
        return {s for s in sources if rank.get(s, len(SOURCE_PRIORITY)) == top}

    return {payer: best(sources) for payer, sources in by_payer.items()}


@dataclass(frozen=True)
class _Rollup:
    """One rollup table: its key columns, the order its rows go in (so that the few rows one
    question needs lie together on disk: an account's month, a service's days), and the finer
    table it is summed from (the facts, or a rollup just built)."""

    model: type[Any]
    keys: tuple[str, ...]
    order: tuple[str, ...] = ()
    source: type[Any] = CostFact


ROLLUPS = (
    _Rollup(CostDailyRollup, ("usage_date", "billing_period", "provider", "usage_account_id", "service", "region",
                              "currency")),
    _Rollup(CostAllocationRollup, ("usage_date", "billing_period", "usage_account_id", "service", "team",
                                   "cost_center", "environment", "currency")),
    _Rollup(CostMonthlyRollup, ("billing_period", "provider", "usage_account_id", "service", "usage_type",
                                "charge_category", "currency"), order=("usage_account_id", "service")),
    _Rollup(CostSummaryRollup, ("billing_period", "provider", "usage_account_id", "service", "currency"),
            order=("usage_account_id", "service"), source=CostMonthlyRollup),
    _Rollup(CostTeamDailyRollup, ("usage_date", "billing_period", "service", "team", "cost_center", "environment",
                                  "currency"), order=("service", "usage_date", "team"), source=CostAllocationRollup),
)
#: The fact columns the rollups read.
FACT_COLUMNS = tuple(dict.fromkeys(k for r in ROLLUPS if r.source is CostFact for k in r.keys)) + MONEY_COLUMNS


def rebuild_period(session: Session, *, billing_period: dt.date) -> None:
    """Rebuild every rollup of one billing period from the facts, in the caller's transaction."""
    # Which source counts for each payer is decided first (a handful of rows), then the facts are
    # read with a plain condition: a correlated subquery here would run once per fact.
    counted = counted_sources(session, billing_period=billing_period)
    in_period = and_(CostFact.billing_period == billing_period, or_(false(), *(
        and_(CostFact.payer_account_id == payer, CostFact.source.in_(sorted(sources)))
        for payer, sources in counted.items())))
    for rollup in ROLLUPS:  # the derived ones come after the rollups they are summed from
        where = in_period if rollup.source is CostFact else rollup.source.billing_period == billing_period
        _refill(session, rollup, where=where, billing_period=billing_period)


def _refill(session: Session, rollup: _Rollup, *, where: Any, billing_period: dt.date) -> None:
    """Replace one rollup's rows of a billing period with sums of its source (facts or a finer rollup)."""
    target, source = rollup.model, rollup.source
    session.execute(delete(target).where(target.billing_period == billing_period))
    key_columns = [getattr(source, k) for k in rollup.keys]
    lines = func.count() if source is CostFact else func.sum(source.line_count)
    query = (select(*key_columns, *(money_sum(getattr(source, c)) for c in MONEY_COLUMNS), lines)
             .where(where).group_by(*key_columns).order_by(*(getattr(source, k) for k in rollup.order)))
    session.execute(insert(target).from_select([*rollup.keys, *MONEY_COLUMNS, "line_count"], query))


class PeriodSums:
    """The rollups of one billing period summed in memory from the facts as they are loaded.

    Used when the facts being loaded are all the period holds (the usual case: a new month, or a
    source replacing its own month): Arrow's hash aggregation over the incoming batches is many
    times faster than summing the stored rows again in SQL, and exact (decimal128 at the money
    scale; a value that does not fit makes ``add`` return False and the caller rebuilds in SQL).
    Partial sums are folded together whenever enough batches have piled up, so memory stays
    near the size of the rollups themselves.
    """

    #: Incoming rows held before they are folded into the partial sums.
    FOLD_ROWS = 100_000

    def __init__(self) -> None:
        self._pending: list[Any] = []
        self._pending_rows = 0
        self._sums: dict[type[Any], Any] = {}

    def add(self, facts: Any) -> bool:
        """Take one batch of facts (an Arrow table); False if its money is not decimal128 at the money scale."""
        import pyarrow as pa

        money = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
        if any(facts.schema.field(c).type != money for c in MONEY_COLUMNS):
            return False  # more decimals than the money scale: the SQL rebuild sums them as stored
        table = facts.select(list(FACT_COLUMNS))
        self._pending.append(table.append_column("line_count", pa.array([1] * table.num_rows, type=pa.int64())))
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.FOLD_ROWS:
            self._fold()
        return True

    def _fold(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        batch = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        for rollup in ROLLUPS:
            if rollup.source is not CostFact:
                continue
            parts = [batch.select([*rollup.keys, *MONEY_COLUMNS, "line_count"])]
            if rollup.model in self._sums:
                parts.insert(0, self._sums[rollup.model])
            self._sums[rollup.model] = _sum(pa.concat_tables(parts), rollup.keys)

    def write(self, session: Session, *, billing_period: dt.date) -> None:
        """Replace the period's rows of every rollup with these sums, in the caller's transaction."""
        self._fold()
        for rollup in ROLLUPS:
            session.execute(delete(rollup.model).where(rollup.model.billing_period == billing_period))
            if rollup.source is CostFact:
                table = self._sums.get(rollup.model)
            else:
                finer = self._sums.get(rollup.source)
                table = None if finer is None else _sum(finer, rollup.keys)
            if table is None or table.num_rows == 0:
                continue
            if rollup.order:
                table = table.sort_by([(k, "ascending") for k in rollup.order])
            bulk.write_table(session.connection(), rollup.model.__tablename__, table)


def _sum(table: Any, keys: tuple[str, ...]) -> Any:
    """Group an Arrow table by ``keys``, summing the money and the line counts."""
    measures = (*MONEY_COLUMNS, "line_count")
    summed = table.group_by(list(keys), use_threads=False).aggregate([(c, "sum") for c in measures])
    return summed.select([*keys, *(f"{c}_sum" for c in measures)]).rename_columns([*keys, *measures])


def list_billing_periods(session: Session) -> list[dt.date]:
    """Return every billing period that has facts, oldest first."""
    return list(
        session.scalars(select(CostFact.billing_period).distinct().order_by(CostFact.billing_period))
    )


def rebuild_all(
    session: Session,
    *,
    on_progress: Callable[[int, int, dt.date], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Rebuild the rollups of every billing period; report progress after each one."""
    periods = list_billing_periods(session)
    for done, period in enumerate(periods, start=1):
        if should_stop is not None and should_stop():
            break
        rebuild_period(session, billing_period=period)
        session.commit()
        if on_progress is not None:
            on_progress(done, len(periods), period)
    return len(periods)
