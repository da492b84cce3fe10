"""The month-end forecast: what is booked, recurring daily spend projected, one-off charges on their day.

A seven-day run rate of *all* costs counts the charges booked once a month (tax, support,
reservation fees, upfront payments, all on the 1st in Cost Explorer's data) as if they came every
day: on day 7 that doubled the forecast. Here only recurring charge categories make the run rate;
one-off charges count where they fall: those booked this month as they are, those that last month
booked on a day still ahead expected again on that day. AWS's own forecast, where it was collected,
is shown beside ours with its range, never blended into it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import months
from services.identity.permissions import Actor, visible_account_ids

#: Charge categories booked once (a month, or at a purchase), not day by day. Cost Explorer's record
#: types and FOCUS's charge categories both.
ONE_OFF_CATEGORIES = frozenset({
    "Fee", "RIFee", "Tax", "Support", "Credit", "Refund", "SavingsPlanUpfrontFee", "Purchase",
    "Adjustment", "Distributor Discount", "BundledDiscount", "EdpDiscount", "PrivateRateDiscount",
})
#: Complete days in each run-rate window; three windows give the forecast's range.
WINDOW_DAYS = 7
WINDOWS = 3
CENT = Decimal("0.01")

#: Amounts per day per charge category.
Daily = Mapping[dt.date, Mapping[str, Decimal]]


@dataclass(frozen=True)
class ExpectedCharge:
    day: dt.date
    category: str
    amount: Decimal


@dataclass(frozen=True)
class AwsForecast:
    """AWS's forecast (Cost Explorer ``GetCostForecast``) of the month's end, with its 80 % range."""

    mean: Decimal
    low: Decimal | None
    high: Decimal | None
    generated_at: dt.datetime | None


@dataclass(frozen=True)
class Forecast:
    """A month-end forecast and the parts it is made of."""

    month: dt.date
    as_of: dt.date
    amount: Decimal
    low: Decimal
    high: Decimal
    #: costs booked from the 1st to the day before ``as_of``
    booked: Decimal
    #: of ``booked``, the one-off charges
    one_off_booked: Decimal
    #: recurring spend per day, and the days it is projected over (``as_of`` to the month's end)
    daily_rate: Decimal
    days_left: int
    one_off_expected: tuple[ExpectedCharge, ...] = field(default=())
    aws: AwsForecast | None = None

    @property
    def recurring_projection(self) -> Decimal:
        return (self.daily_rate * self.days_left).quantize(CENT)


def is_one_off(category: str) -> bool:
    """Whether a charge category is booked once rather than every day."""
    return category in ONE_OFF_CATEGORIES


def _recurring(day: Mapping[str, Decimal] | None) -> Decimal:
    return sum((a for c, a in (day or {}).items() if not is_one_off(c)), Decimal(0))


def forecast_month(daily: Daily, *, as_of: dt.date, aws: AwsForecast | None = None) -> Forecast:
    """Forecast the total of ``as_of``'s month from daily costs by charge category up to the day
    before ``as_of`` (that day's costs are still arriving). ``daily`` should reach back at least
    four weeks and over the previous month, for the run rate and last month's one-off charges."""
    month = months.month_start(as_of)
    last_day = months.month_end(as_of)
    days_left = (last_day - as_of).days + 1
    booked_days = [d for d in daily if month <= d < as_of]
    booked = sum((sum(daily[d].values(), Decimal(0)) for d in booked_days), Decimal(0))
    one_off_booked = sum((a for d in booked_days for c, a in daily[d].items() if is_one_off(c)), Decimal(0))

    # The run rate: mean recurring spend of the last complete week; the range from the weeks before.
    rates: list[Decimal] = []
    for window in range(WINDOWS):
        end = as_of - dt.timedelta(days=1 + window * WINDOW_DAYS)
        days = [end - dt.timedelta(days=i) for i in range(WINDOW_DAYS)]
        if all(d in daily for d in days):
            rates.append(sum((_recurring(daily[d]) for d in days), Decimal(0)) / WINDOW_DAYS)
    if not rates:  # less than a week of data: the mean of what there is
        known = [d for d in daily if d < as_of]
        rates = [sum((_recurring(daily[d]) for d in known), Decimal(0)) / len(known)] if known else [Decimal(0)]
    rate = rates[0]

    # One-off charges that last month booked on a day still ahead this month, and not yet booked.
    previous = months.add_months(month, -1)
    booked_categories = {c for d in booked_days for c in daily[d] if is_one_off(c)}
    expected: list[ExpectedCharge] = []
    for day in sorted(d for d in daily if previous <= d <= months.month_end(previous)):
        if day.day < as_of.day:
            continue
        for category, amount in sorted(daily[day].items()):
            if is_one_off(category) and category not in booked_categories and amount:
                on = month.replace(day=min(day.day, last_day.day))
                expected.append(ExpectedCharge(on, category, amount))
    expected_total = sum((e.amount for e in expected), Decimal(0))
    base = booked + expected_total
    amount = (base + rate * days_left).quantize(CENT)
    low = (base + min(rates) * days_left).quantize(CENT)
    high = (base + max(rates) * days_left).quantize(CENT)
    return Forecast(month=month, as_of=as_of, amount=amount, low=low, high=high, booked=booked,
                    one_off_booked=one_off_booked, daily_rate=rate.quantize(Decimal("0.0001")),
                    days_left=days_left, one_off_expected=tuple(expected), aws=aws)


def linear_forecast(daily: Daily, *, as_of: dt.date) -> Decimal:
    """The old method, kept for the backtest: month to date plus the last seven days' mean of all
    costs times the days left."""
    month = months.month_start(as_of)
    booked = sum((sum(v.values(), Decimal(0)) for d, v in daily.items() if month <= d < as_of), Decimal(0))
    recent = [sum(daily.get(as_of - dt.timedelta(days=i), {}).values(), Decimal(0)) for i in range(1, 8)]
    days_left = (months.month_end(as_of) - as_of).days + 1
    return (booked + sum(recent, Decimal(0)) / 7 * days_left).quantize(CENT)


def error_pct(forecast: Decimal, actual: Decimal) -> float:
    """The absolute error of a forecast, in per cent of the actual total."""
    return abs(float(forecast - actual)) / abs(float(actual)) * 100 if actual else 0.0


def mean(values: list[float]) -> float:
    """The mean of some figures (0 for none)."""
    return statistics.fmean(values) if values else 0.0


def get_forecast(session: Session, *, actor: Actor, metric: str, account_ids: tuple[str, ...],
                 today: dt.date) -> Forecast:
    """The forecast of today's month for the accounts (all visible when empty), with AWS's forecast
    when it was collected and the view covers the whole organisation."""
    from services.costs import queries

    as_of = today
    start = min(months.add_months(months.month_start(as_of), -1), as_of - dt.timedelta(days=WINDOW_DAYS * WINDOWS + 1))
    end = as_of - dt.timedelta(days=1)
    daily: dict[dt.date, dict[str, Decimal]] = {}
    if end >= start:
        result = queries.query_costs(session, actor=actor, query=queries.CostQuery.model_validate({
            "start": start, "end": end, "granularity": "day", "group_by": ("charge_category",),
            "metric": metric, "filters": {"account": account_ids} if account_ids else {}}))
        for row in result.rows:
            if row.period is not None:
                daily.setdefault(row.period, {})[row.keys[0]] = row.amount
    aws = None
    if not account_ids and metric == "unblended_cost" and visible_account_ids(session, actor=actor) is None:
        aws = _aws_forecast(session, as_of=as_of, daily=daily)
    return forecast_month(daily, as_of=as_of, aws=aws)


def _aws_forecast(session: Session, *, as_of: dt.date, daily: Daily) -> AwsForecast | None:
    """AWS's latest forecast of the rest of the month for each payer, plus what was booked before
    the day it forecasts from."""
    from models import CostForecast

    month_after = months.add_months(months.month_start(as_of), 1)
    rows = session.scalars(select(CostForecast).where(
        CostForecast.metric == "UNBLENDED_COST", CostForecast.period_end == month_after,
        CostForecast.period_start >= months.month_start(as_of), CostForecast.period_start <= as_of,
    ).order_by(CostForecast.generated_at.desc())).all()
    latest: dict[str, CostForecast] = {}
    for row in rows:
        latest.setdefault(row.payer_account_id, row)
    if not latest:
        return None
    found = list(latest.values())
    first = min(r.period_start for r in found)
    booked = sum((sum(v.values(), Decimal(0)) for d, v in daily.items()
                  if months.month_start(as_of) <= d < first), Decimal(0))
    low = None if any(r.lower_bound is None for r in found) else \
        booked + sum((r.lower_bound or Decimal(0) for r in found), Decimal(0))
    high = None if any(r.upper_bound is None for r in found) else \
        booked + sum((r.upper_bound or Decimal(0) for r in found), Decimal(0))
    return AwsForecast(mean=(booked + sum((r.mean for r in found), Decimal(0))).quantize(CENT),
                       low=low.quantize(CENT) if low is not None else None,
                       high=high.quantize(CENT) if high is not None else None,
                       generated_at=max(r.generated_at for r in found))
