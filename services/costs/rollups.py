"""Rollup tables: rebuilt per billing period from the facts, so dashboards never scan facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, false, func, insert, or_, select
from sqlalchemy.orm import Session

from models import (
    CostAccountSource,
    CostAllocationRollup,
    CostDailyRollup,
    CostFact,
    CostMonthlyRollup,
    CostPeriodSpan,
    CostSummaryRollup,
    CostTeamDailyRollup,
)
from models.types import MONEY_PRECISION, MONEY_SCALE, money_sum
from services import months
from services.costs import bulk

#: The money columns of facts and rollups alike.
MONEY_COLUMNS = ("unblended_cost", "amortized_cost", "net_cost", "list_cost", "contracted_cost")
#: When several sources hold the same account's costs for a month, the most detailed one counts
#: and the others are kept but not added (never the same dollar twice). Decided per usage account,
#: not per payer: an aws-finops job stores each linked account under itself as payer (it cannot
#: know the real one), while Cost Explorer and the exports store it under the real payer.
SOURCE_PRIORITY = ("cur2", "focus", "cost_explorer", "aws_finops", "demo")


def held_sources(session: Session, *, billing_period: dt.date) -> dict[str, set[str]]:
    """Return, per usage account, every source that holds facts of this billing period."""
    rows = session.execute(
        select(CostFact.usage_account_id, CostFact.source)
        .where(CostFact.billing_period == billing_period).distinct()
    ).all()
    by_account: dict[str, set[str]] = {}
    for account, source in rows:
        by_account.setdefault(account, set()).add(source)
    return by_account


def best_sources(held: set[str]) -> set[str]:
    """Return the most detailed of the sources that hold one account-month (ties all count)."""
    rank = {name: i for i, name in enumerate(SOURCE_PRIORITY)}
    top = min(rank.get(s, len(SOURCE_PRIORITY)) for s in held)
    return {s for s in held if rank.get(s, len(SOURCE_PRIORITY)) == top}


def counted_sources(session: Session, *, billing_period: dt.date) -> dict[str, set[str]]:
    """Return, per usage account, the source(s) whose facts count for this billing period."""
    return {account: best_sources(held) for account, held in held_sources(session,
                                                                           billing_period=billing_period).items()}


def record_sources(session: Session, *, billing_period: dt.date, held: dict[str, set[str]]) -> None:
    """Replace the period's record of which sources hold each account and which one counts."""
    session.execute(delete(CostAccountSource).where(CostAccountSource.billing_period == billing_period))
    rows = [{"billing_period": billing_period, "usage_account_id": account, "source": source,
             "is_counted": source in best_sources(sources)}
            for account, sources in sorted(held.items()) for source in sorted(sources)]
    for at in range(0, len(rows), 5_000):
        session.execute(insert(CostAccountSource), rows[at:at + 5_000])


@dataclass(frozen=True)
class _Rollup:
    """One rollup table, the order its rows go in (so that the few rows one question needs lie
    together on disk: an account's month, a service's days; and so that its indexes grow at their
    ends as the rows are stored), and the finer table it is summed from (the facts, or a rollup
    just built)."""

    model: type[Any]
    order: tuple[str, ...]
    source: type[Any] = CostFact

    @property
    def keys(self) -> tuple[str, ...]:
        """The columns it groups by (its primary key for the ORM)."""
        return tuple(column.name for column in self.model.__mapper__.primary_key)


ROLLUPS = (
    _Rollup(CostDailyRollup, order=("usage_date", "usage_account_id")),
    _Rollup(CostAllocationRollup, order=("usage_date",)),
    _Rollup(CostMonthlyRollup, order=("usage_account_id", "service")),
    _Rollup(CostSummaryRollup, order=("usage_account_id", "service"), source=CostMonthlyRollup),
    _Rollup(CostTeamDailyRollup, order=("service", "usage_date", "team"), source=CostAllocationRollup),
)


def rebuild_period(session: Session, *, billing_period: dt.date) -> None:
    """Rebuild every rollup of one billing period from the facts, in the caller's transaction."""
    # Which source counts for each account is decided first (a row per account and source), then
    # the facts are read with a plain condition: a correlated subquery here would run once per fact.
    held = held_sources(session, billing_period=billing_period)
    record_sources(session, billing_period=billing_period, held=held)
    accounts_by_counted: dict[tuple[str, ...], list[str]] = {}
    for account, sources in held.items():
        accounts_by_counted.setdefault(tuple(sorted(best_sources(sources))), []).append(account)
    if len(accounts_by_counted) == 1:
        # One choice for every account (the usual case): no list of accounts needed.
        (only,) = accounts_by_counted
        chosen: Any = CostFact.source.in_(only)
    else:
        chosen = or_(false(), *(and_(CostFact.source.in_(counted), CostFact.usage_account_id.in_(sorted(accounts)))
                                for counted, accounts in accounts_by_counted.items()))
    in_period = and_(CostFact.billing_period == billing_period, chosen)
    for rollup in ROLLUPS:  # the derived ones come after the rollups they are summed from
        where = in_period if rollup.source is CostFact else rollup.source.billing_period == billing_period
        _refill(session, rollup, where=where, billing_period=billing_period)
    record_span(session, billing_period=billing_period)


def record_span(session: Session, *, billing_period: dt.date) -> None:
    """Record the first and last charge date of the period's counted rows (from its day rollup)."""
    session.execute(delete(CostPeriodSpan).where(CostPeriodSpan.billing_period == billing_period))
    first, last = session.execute(
        select(func.min(CostDailyRollup.usage_date), func.max(CostDailyRollup.usage_date))
        .where(CostDailyRollup.billing_period == billing_period)).one()
    if first is not None:
        session.add(CostPeriodSpan(billing_period=billing_period, first_usage_date=first, last_usage_date=last))
        session.flush()


def list_straying_spans(session: Session) -> list[tuple[dt.date, dt.date, dt.date]]:
    """Return (billing period, first, last charge date) of each period holding a row charged outside
    its own month, oldest first."""
    spans = session.execute(select(CostPeriodSpan.billing_period, CostPeriodSpan.first_usage_date,
                                   CostPeriodSpan.last_usage_date).order_by(CostPeriodSpan.billing_period)).all()
    return [(p, first, last) for p, first, last in spans if first < p or last > months.month_end(p)]


def _refill(session: Session, rollup: _Rollup, *, where: Any, billing_period: dt.date) -> None:
    """Replace one rollup's rows of a billing period with sums of its source (facts or a finer rollup)."""
    target, source = rollup.model, rollup.source
    session.execute(delete(target).where(target.billing_period == billing_period))
    key_columns = [_key_value(source, k) for k in rollup.keys]
    lines = func.count() if source is CostFact else func.sum(source.line_count)
    query = (select(*key_columns, *(money_sum(getattr(source, c)) for c in MONEY_COLUMNS), lines)
             .where(where).group_by(*key_columns).order_by(*(getattr(source, k) for k in rollup.order)))
    session.execute(insert(target).from_select([*rollup.keys, *MONEY_COLUMNS, "line_count"], query))


#: Key values a fact may lack that a rollup keeps as "" (so each rollup row has a plain key).
_BLANK_WHEN_MISSING = frozenset({"service_category"})


def _key_value(source: type[Any], name: str) -> Any:
    column = getattr(source, name)
    if source is CostFact and name in _BLANK_WHEN_MISSING:
        return func.coalesce(column, "")
    return column


class PeriodSums:
    """The rollups of one billing period summed in memory from the lines as they are loaded.

    Used when the lines being loaded are all the period holds (the usual case: a new month, or a
    source replacing its own month): Arrow's hash aggregation over the incoming batches is many
    times faster than summing the stored rows again in SQL, and exact (decimal128 at the money
    scale, as the lines are stored).
    Lines are summed by day and key (two integers, see ``services.costs.ingest._Keys``); only at the end
    are the keys' values attached, for each rollup grouped by the values it keeps. Partial sums
    are folded together whenever enough batches have piled up, so memory stays bounded.
    """

    #: Incoming rows held before they are summed into a partial sum, and partial sums' rows held
    #: before they are summed together (lines of a day and key often lie far apart in a file).
    FOLD_ROWS = 200_000
    MERGE_ROWS = 2_000_000

    def __init__(self) -> None:
        self._pending: list[Any] = []
        self._pending_rows = 0
        self._partials: list[Any] = []

    def add(self, lines: Any, seqs: Any) -> None:
        """Take one batch of lines (an Arrow table, money as decimal128 at the money scale) and their
        keys' ``seq``."""
        import pyarrow as pa

        money = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
        if any(lines.schema.field(c).type != money for c in MONEY_COLUMNS):
            raise TypeError(f"money columns must be {money}: {lines.schema}")
        self._pending.append(pa.table({
            "usage_date": lines.column("usage_date"), "seq": seqs, **{c: lines.column(c) for c in MONEY_COLUMNS},
            "line_count": pa.nulls(lines.num_rows, type=pa.int64()).fill_null(1)}))
        self._pending_rows += lines.num_rows
        if self._pending_rows >= self.FOLD_ROWS:
            self._fold()

    def _fold(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        self._partials.append(_sum(pa.concat_tables(self._pending), ("usage_date", "seq")))
        self._pending, self._pending_rows = [], 0
        if sum(p.num_rows for p in self._partials) > self.MERGE_ROWS:
            self._merge()

    def _merge(self) -> None:
        import pyarrow as pa

        self._fold()
        if len(self._partials) > 1:
            self._partials = [_sum(pa.concat_tables(self._partials), ("usage_date", "seq"))]

    def write(self, session: Session, *, billing_period: dt.date, keys: Any,
              meanwhile: Callable[[], object] | None = None) -> None:
        """Replace the period's rows of every rollup with these sums, in the caller's transaction;
        ``keys`` holds the values of every key, in ``seq`` order. The rollups are summed in a
        thread while the database stores those summed before (and first runs ``meanwhile``, a
        write of the caller's on the same connection)."""
        for rollup in ROLLUPS:
            session.execute(delete(rollup.model).where(rollup.model.billing_period == billing_period))
        with bulk.Prefetched(self._tables(billing_period, keys)) as made:
            if meanwhile is not None:
                meanwhile()
            for model, table in made:
                bulk.write_table(session.connection(), model.__tablename__, table)

    def _tables(self, billing_period: dt.date, keys: Any) -> Iterator[tuple[type[Any], Any]]:
        """Each rollup's rows that are not empty, in the order they are stored (see ``_Rollup``)."""
        self._merge()
        sums = self._partials[0] if self._partials else None
        made: dict[type[Any], Any] = {}
        for rollup in ROLLUPS:
            if rollup.source is CostFact:
                table = None if sums is None else _by_values(sums, rollup, keys, billing_period)
            else:
                finer = made.get(rollup.source)
                table = None if finer is None else _sum(finer, rollup.keys)
            made[rollup.model] = table
            if table is None or table.num_rows == 0:
                continue
            yield rollup.model, table.sort_by([(k, "ascending") for k in rollup.order])


def _by_values(sums: Any, rollup: _Rollup, keys: Any, billing_period: dt.date) -> Any:
    """Sum the (day, key) sums into one rollup's rows."""
    import pyarrow as pa

    values = [k for k in rollup.keys if k not in ("usage_date", "billing_period")]
    code_of_seq, groups = _groups(keys, values)
    daily = "usage_date" in rollup.keys
    summed = _sum(pa.table({
        **({"usage_date": sums.column("usage_date")} if daily else {}),
        "code": code_of_seq.take(sums.column("seq")),
        **{c: sums.column(c) for c in (*MONEY_COLUMNS, "line_count")},
    }), ("usage_date", "code") if daily else ("code",))
    import pyarrow.compute as pc

    found = groups.take(summed.column("code"))
    columns = {name: pc.fill_null(found.column(name), "") if name in _BLANK_WHEN_MISSING else found.column(name)
               for name in values}
    columns["billing_period"] = pa.array([billing_period] * summed.num_rows, type=pa.date32())
    if daily:
        columns["usage_date"] = summed.column("usage_date")
    return pa.table({**{k: columns[k] for k in rollup.keys},
                     **{c: summed.column(c) for c in (*MONEY_COLUMNS, "line_count")}})


def _groups(keys: Any, values: list[str]) -> tuple[Any, Any]:
    """Group keys by some of their values: the group of each key (by ``seq``), and each group's values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    numbered = keys.select(values).append_column("seq", pa.array(range(keys.num_rows), type=pa.int64()))
    grouped = numbered.group_by(values, use_threads=False).aggregate([("seq", "list")])
    members = grouped.column("seq_list").combine_chunks()
    group_of = pc.list_parent_indices(members)
    # Each seq is in exactly one group: ordering the flattened members by seq lines their groups up.
    code_of_seq = group_of.take(pc.sort_indices(pc.list_flatten(members)))
    return code_of_seq, grouped.select(values)


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
