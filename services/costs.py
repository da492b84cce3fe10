"""The cost service: totals, series and breakdowns from the rollups, exact to the cent."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeVarTuple

from pydantic import BaseModel, model_validator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from models import AwsAccount, CostDailyRollup
from models.types import money_sum
from services import audit
from services.permissions import Actor, visible_account_ids
from services.validation import parse

Metric = Literal["unblended_cost", "amortized_cost", "net_cost"]
METRIC_LABELS: dict[str, str] = {
    "unblended_cost": "Unblended",
    "amortized_cost": "Amortised",
    "net_cost": "Net",
}
TOP_SERVICES = 10
MAX_RANGE_DAYS = 3 * 366


class CostFilter(BaseModel):
    """What a cost query may be narrowed by; validated before any query runs."""

    start: dt.date
    end: dt.date
    account_ids: tuple[str, ...] = ()
    metric: Metric = "unblended_cost"

    @model_validator(mode="after")
    def _check_range(self) -> CostFilter:
        if self.end < self.start:
            raise ValueError("the end date is before the start date")
        if (self.end - self.start).days > MAX_RANGE_DAYS:
            raise ValueError("the date range is longer than three years")
        return self


def parse_filter(**values: object) -> CostFilter:
    """Validate filter input into a CostFilter or raise InvalidInput with a readable message."""
    return parse(CostFilter, values, default_field="filter")


@dataclass(frozen=True)
class Kpis:
    month_to_date: Decimal
    last_month_total: Decimal
    last_month_same_days: Decimal
    forecast_month_end: Decimal
    change_vs_last_month_pct: Decimal | None
    as_of: dt.date


@dataclass(frozen=True)
class Overview:
    """Everything the overview page shows, computed for one filter."""

    filter: CostFilter
    kpis: Kpis
    total: Decimal
    daily: list[tuple[dt.date, Decimal]]
    top_services: list[tuple[str, Decimal]]
    by_account: list[tuple[str, str, Decimal]]
    currency: str = "USD"
    accounts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.daily


Ts = TypeVarTuple("Ts")


def _scoped(query: Select[*Ts], *, session: Session, actor: Actor,
            account_ids: tuple[str, ...]) -> Select[*Ts]:
    visible = visible_account_ids(session, actor=actor)
    if account_ids:
        wanted = set(account_ids) if visible is None else set(account_ids) & visible
        return query.where(CostDailyRollup.usage_account_id.in_(sorted(wanted)))
    if visible is not None:
        return query.where(CostDailyRollup.usage_account_id.in_(sorted(visible)))
    return query


def _total(session: Session, *, actor: Actor, metric: Metric, start: dt.date, end: dt.date,
           account_ids: tuple[str, ...]) -> Decimal:
    column = getattr(CostDailyRollup, metric)
    query = select(money_sum(column)).where(
        CostDailyRollup.usage_date >= start, CostDailyRollup.usage_date <= end
    )
    return session.scalar(_scoped(query, session=session, actor=actor, account_ids=account_ids)) or Decimal(0)


def _shift_month(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def compute_kpis(session: Session, *, actor: Actor, metric: Metric, account_ids: tuple[str, ...],
                 today: dt.date) -> Kpis:
    """Month to date, last month, the same days of last month, and a month-end forecast.

    The forecast is month to date plus the average of the last seven days (today excluded,
    since today's costs are still arriving) times the days left in the month.
    """
    def total(start: dt.date, end: dt.date) -> Decimal:
        return _total(session, actor=actor, metric=metric, start=start, end=end,
                      account_ids=account_ids)

    month_start = today.replace(day=1)
    last_month_start = _shift_month(month_start, -1)
    last_month_end = month_start - dt.timedelta(days=1)
    mtd = total(month_start, today)
    last_month = total(last_month_start, last_month_end)
    same_days = total(last_month_start, min(_shift_month(today, -1), last_month_end))
    recent_end = today - dt.timedelta(days=1)
    recent = total(recent_end - dt.timedelta(days=6), recent_end)
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    remaining = days_in_month - today.day
    forecast = mtd + (recent / 7) * remaining if remaining > 0 else mtd
    change = ((mtd - same_days) / same_days * 100) if same_days else None
    return Kpis(
        month_to_date=mtd,
        last_month_total=last_month,
        last_month_same_days=same_days,
        forecast_month_end=forecast.quantize(Decimal("0.01")),
        change_vs_last_month_pct=change.quantize(Decimal("0.1")) if change is not None else None,
        as_of=today,
    )


def list_accounts(session: Session, *, actor: Actor) -> list[tuple[str, str]]:
    """Return (account id, name) of every account with costs the actor may see."""
    visible = visible_account_ids(session, actor=actor)
    ids = select(CostDailyRollup.usage_account_id).distinct()
    if visible is not None:
        ids = ids.where(CostDailyRollup.usage_account_id.in_(sorted(visible)))
    names = dict(session.execute(select(AwsAccount.account_id, AwsAccount.name)).all())
    return sorted(((a, names.get(a, "")) for a in session.scalars(ids)), key=lambda p: (p[1] or p[0]))


def get_overview(session: Session, *, actor: Actor, cost_filter: CostFilter, today: dt.date) -> Overview:
    """Build the overview for a filter: KPIs, daily trend, top services and cost by account."""
    f = cost_filter
    column = getattr(CostDailyRollup, f.metric)
    in_range = (CostDailyRollup.usage_date >= f.start, CostDailyRollup.usage_date <= f.end)

    def scoped(query: Select[*Ts]) -> Select[*Ts]:
        return _scoped(query.where(*in_range), session=session, actor=actor, account_ids=f.account_ids)

    daily = session.execute(scoped(
        select(CostDailyRollup.usage_date, money_sum(column))
        .group_by(CostDailyRollup.usage_date).order_by(CostDailyRollup.usage_date)
    )).all()
    services = session.execute(scoped(
        select(CostDailyRollup.service, money_sum(column)).group_by(CostDailyRollup.service)
    )).all()
    accounts = session.execute(scoped(
        select(CostDailyRollup.usage_account_id, money_sum(column))
        .group_by(CostDailyRollup.usage_account_id)
    )).all()
    currencies = session.scalars(scoped(select(CostDailyRollup.currency).distinct())).all()
    names = dict(session.execute(select(AwsAccount.account_id, AwsAccount.name)).all())
    audit.record(session, actor=actor, action="costs.view", object_type="overview",
                 details={"start": f.start.isoformat(), "end": f.end.isoformat(),
                          "accounts": list(f.account_ids), "metric": f.metric})
    return Overview(
        filter=f,
        kpis=compute_kpis(session, actor=actor, metric=f.metric, account_ids=f.account_ids, today=today),
        total=sum((v for _, v in daily), Decimal(0)),
        daily=[(d, v) for d, v in daily],
        top_services=top_n(services, TOP_SERVICES),
        by_account=sorted(((a, names.get(a, ""), v) for a, v in accounts), key=lambda r: r[2], reverse=True),
        currency=currencies[0] if len(currencies) == 1 else ("USD" if not currencies else "mixed"),
        accounts=list_accounts(session, actor=actor),
    )


def top_n(rows: Iterable[tuple[str, Decimal]], n: int,
          other_label: str = "Other") -> list[tuple[str, Decimal]]:
    """Return the n largest rows, then one "Other" row holding the rest (never dropped)."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    head, tail = ordered[:n], ordered[n:]
    if tail:
        head.append((other_label, sum((v for _, v in tail), Decimal(0))))
    return head
