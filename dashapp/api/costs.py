"""Cost operations: the overview and the general cost query."""

from __future__ import annotations

import datetime as dt
from typing import get_args

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, create_model
from werkzeug.datastructures import MultiDict

from callbacks.context import current_actor
from dashapp.api.problems import (
    COMMON_RESPONSES,
    SECURITY,
    Money,
    QueryModel,
    day_field,
    json_response,
    operation_id,
    utc_today,
)
from services import database
from services.costs import queries
from services.costs.forecast import Forecast

bp = APIBlueprint("costs", __name__, abp_tags=[Tag(name="costs", description="Cost data")],
                  abp_security=SECURITY, operation_id_callback=operation_id, abp_responses=COMMON_RESPONSES)


class OverviewQuery(QueryModel):
    start: dt.date | None = day_field("First day (default: 89 days before end)", default=None)
    end: dt.date | None = day_field("Last day, inclusive (default: today, UTC)", default=None)
    account: list[str] = Field(default_factory=list, max_length=500,
                               description="Usage account ids to keep (repeatable); all visible when absent")
    metric: queries.Metric = "unblended_cost"


class ExpectedChargeOut(BaseModel):
    day: dt.date
    category: str
    amount: Money


class AwsForecastOut(BaseModel):
    mean: Money = Field(description="AWS's forecast of the month's total (booked before it, plus its forecast)")
    low: Money | None = Field(description="The low end of AWS's 80 % prediction interval")
    high: Money | None
    generated_at: dt.datetime | None


class ForecastOut(BaseModel):
    amount: Money
    low: Money = Field(description="The forecast with the lowest of the last three weeks' daily rates")
    high: Money
    booked: Money = Field(description="Costs booked from the 1st to the day before as_of")
    one_off_booked: Money = Field(description="Of booked, the one-off charges (fees, tax, support, credits)")
    daily_rate: Money = Field(description="Recurring spend per day over the last complete week")
    days_left: int = Field(description="Days projected at the daily rate: as_of to the month's end")
    one_off_expected: list[ExpectedChargeOut] = Field(
        description="One-off charges last month booked on a day still ahead, expected again")
    aws: AwsForecastOut | None = Field(description="AWS's own forecast, where it was collected (whole organisation)")


class KpisOut(BaseModel):
    month_to_date: Money
    last_month_total: Money
    forecast_month_end: Money
    change_vs_last_month_pct: Money | None
    as_of: dt.date
    forecast: ForecastOut | None = None


class NamedAmount(BaseModel):
    key: str
    name: str = ""
    amount: Money


class OverviewOut(BaseModel):
    start: dt.date
    end: dt.date
    metric: str
    currency: str
    total: Money
    kpis: KpisOut
    daily: list[NamedAmount]
    top_services: list[NamedAmount]
    by_account: list[NamedAmount]


@bp.get("/overview/", responses={200: OverviewOut})
def get_overview(query: OverviewQuery) -> Response:
    """Cost overview for a date range (default: the last 90 days), accounts and metric."""
    today = utc_today()
    end = query.end or today
    cost_filter = queries.parse_filter(start=query.start or end - dt.timedelta(days=89), end=end,
                                       account_ids=tuple(query.account), metric=query.metric)
    with database.session_scope() as session:
        data = queries.get_overview(session, actor=current_actor(), cost_filter=cost_filter, today=today)
    k = data.kpis
    return json_response(OverviewOut(
        start=cost_filter.start, end=cost_filter.end, metric=cost_filter.metric, currency=data.currency,
        total=data.total,
        kpis=KpisOut(month_to_date=k.month_to_date, last_month_total=k.last_month_total,
                     forecast_month_end=k.forecast_month_end,
                     change_vs_last_month_pct=k.change_vs_last_month_pct, as_of=k.as_of,
                     forecast=_forecast_out(k.forecast)),
        daily=[NamedAmount(key=d.isoformat(), amount=v) for d, v in data.daily],
        top_services=[NamedAmount(key=s, amount=v) for s, v in data.top_services],
        by_account=[NamedAmount(key=a, name=n, amount=v) for a, n, v in data.by_account],
    ))


def _forecast_out(f: Forecast | None) -> ForecastOut | None:
    if f is None:
        return None
    aws = None if f.aws is None else AwsForecastOut(mean=f.aws.mean, low=f.aws.low, high=f.aws.high,
                                                      generated_at=f.aws.generated_at)
    return ForecastOut(amount=f.amount, low=f.low, high=f.high, booked=f.booked, one_off_booked=f.one_off_booked,
                       daily_rate=f.daily_rate, days_left=f.days_left, aws=aws, one_off_expected=[
                           ExpectedChargeOut(day=e.day, category=e.category, amount=e.amount)
                           for e in f.one_off_expected])


_DIMENSIONS: tuple[str, ...] = get_args(queries.Dimension)
_FilterValues = list[str]

#: The cost query's parameters; each dimension is filtered by its own repeatable ``filter.<dimension>``.
CostsQuery: type[QueryModel] = create_model(  # type: ignore[call-overload]  # fields built from the dimensions
    "CostsQuery",
    __base__=QueryModel,
    start=(dt.date, day_field("First day")),
    end=(dt.date, day_field("Last day, inclusive")),
    granularity=(queries.Granularity, "month"),
    group_by=(list[queries.Dimension], Field(default_factory=list, max_length=3,
                                             description="Dimensions to group by, outermost first (repeatable)")),
    metric=(queries.Metric, "unblended_cost"),
    top_n=(int | None, Field(default=None, ge=1, le=100,
                             description='The n largest at every level of group_by, the rest as one "Other" row')),
    **{f"filter_{d}": (_FilterValues, Field(default_factory=list, alias=f"filter.{d}", max_length=500,
                                            description=f"Keep only these {d} values (repeatable)"))
       for d in _DIMENSIONS},
)


class CostRowOut(BaseModel):
    period: dt.date | None
    keys: list[str]
    amount: Money


class CostResultOut(BaseModel):
    table: str = Field(description="Which table answered: a rollup, or the cost facts")
    total: Money
    rows: list[CostRowOut]


def cost_query_from_args(args: MultiDict[str, str]) -> queries.CostQuery:
    """Read a cost query from a query string exactly as ``GET /api/v1/costs/`` does (raises
    pydantic's ValidationError for unknown or malformed parameters, InvalidInput for the rest)."""
    lists = {"group_by", *(f"filter.{d}" for d in _DIMENSIONS)}
    raw = {k: (args.getlist(k) if k in lists else args.get(k)) for k in args}
    return cost_query_of(CostsQuery.model_validate(raw))


def cost_query_of(query: BaseModel) -> queries.CostQuery:
    """The cost question a validated ``CostsQuery`` asks."""
    values = query.model_dump()
    return queries.parse_query({
        "start": values["start"], "end": values["end"], "granularity": values["granularity"],
        "group_by": values["group_by"], "metric": values["metric"], "top_n": values["top_n"],
        "filters": {d: values[f"filter_{d}"] for d in _DIMENSIONS if values[f"filter_{d}"]},
    })


@bp.get("/costs/", responses={200: CostResultOut})
def query_costs(query: CostsQuery) -> Response:  # type: ignore[valid-type]  # a model built above
    """Costs by any dimensions: a range, a grain (day, month or total), groups, filters and a metric."""
    cost_query = cost_query_of(query)
    with database.session_scope() as session:
        result = queries.query_costs(session, actor=current_actor(), query=cost_query, is_view=True)
    return json_response(CostResultOut(table=result.table, total=result.total, rows=[
        CostRowOut(period=r.period, keys=list(r.keys), amount=r.amount) for r in result.rows]))
