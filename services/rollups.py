"""Rollup tables: rebuilt per billing period from the facts, so dashboards never scan facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
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
from models.types import money_sum

_COSTS = ("unblended_cost", "amortized_cost", "net_cost", "list_cost")
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


def rebuild_period(session: Session, *, billing_period: dt.date) -> None:
    """Rebuild every rollup of one billing period from the facts, in the caller's transaction."""
    # Which source counts for each payer is decided first (a handful of rows), then the facts are
    # read with a plain condition: a correlated subquery here would run once per fact.
    counted = counted_sources(session, billing_period=billing_period)
    in_period = and_(CostFact.billing_period == billing_period, or_(false(), *(
        and_(CostFact.payer_account_id == payer, CostFact.source.in_(sorted(sources)))
        for payer, sources in counted.items())))
    # Each rollup: its key columns, and the order its rows go in, so that the few rows one question
    # needs lie together on disk (an account's month; a service's days). The smallest two come
    # from rollups just built, not from the facts again.
    facts: list[tuple[type[Any], list[str], list[str]]] = [
        (CostDailyRollup, ["usage_date", "billing_period", "provider", "usage_account_id", "service", "region",
                           "currency"], []),
        (CostAllocationRollup, ["usage_date", "billing_period", "usage_account_id", "service", "team",
                                "cost_center", "environment", "currency"], []),
        (CostMonthlyRollup, ["billing_period", "provider", "usage_account_id", "service", "usage_type",
                             "charge_category", "currency"], ["usage_account_id", "service"]),
    ]
    for target, keys, order in facts:
        _refill(session, target, source=CostFact, keys=keys, order=order, where=in_period,
                billing_period=billing_period)
    derived: list[tuple[type[Any], type[Any], list[str], list[str]]] = [
        (CostSummaryRollup, CostMonthlyRollup,
         ["billing_period", "provider", "usage_account_id", "service", "currency"], ["usage_account_id", "service"]),
        (CostTeamDailyRollup, CostAllocationRollup,
         ["usage_date", "billing_period", "service", "team", "cost_center", "environment", "currency"],
         ["service", "usage_date", "team"]),
    ]
    for target, source, keys, order in derived:
        _refill(session, target, source=source, keys=keys, order=order,
                where=source.billing_period == billing_period, billing_period=billing_period)


def _refill(session: Session, target: type[Any], *, source: type[Any], keys: list[str], order: list[str],
            where: Any, billing_period: dt.date) -> None:
    """Replace one rollup's rows of a billing period with sums of ``source`` (facts or a finer rollup)."""
    session.execute(delete(target).where(target.billing_period == billing_period))
    key_columns = [getattr(source, k) for k in keys]
    lines = func.count() if source is CostFact else func.sum(source.line_count)
    query = (select(*key_columns, *(money_sum(getattr(source, c)) for c in _COSTS), lines)
             .where(where).group_by(*key_columns).order_by(*(getattr(source, k) for k in order)))
    session.execute(insert(target).from_select([*keys, *_COSTS, "line_count"], query))


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
