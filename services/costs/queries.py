"""The cost service: totals, series and breakdowns from the rollups, exact to the cent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Date, cast, func, select, type_coerce
from sqlalchemy.orm import Session

from models import AwsAccount, CostDailyRollup
from models.types import money_sum
from services import audit, months
from services.identity.permissions import Actor, visible_account_ids
from services.validation import parse

if TYPE_CHECKING:
    from services.costs.forecast import Forecast

Metric = Literal["unblended_cost", "amortized_cost", "net_cost", "list_cost", "contracted_cost"]
METRIC_LABELS: dict[str, str] = {
    "unblended_cost": "Unblended",
    "amortized_cost": "Amortised",
    "net_cost": "Net",
    "list_cost": "List",
    "contracted_cost": "Contracted",
}
TOP_SERVICES = 10
MAX_RANGE_DAYS = 3 * 366


class CostFilter(BaseModel):
    """What a cost query may be narrowed by; validated before any query runs."""

    start: dt.date
    end: dt.date
    account_ids: tuple[str, ...] = Field(default=(), max_length=500)
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
    forecast: Forecast | None = None


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


def _ask(session: Session, *, actor: Actor, metric: Metric, start: dt.date, end: dt.date,
         account_ids: tuple[str, ...], granularity: Granularity = "total",
         group_by: tuple[Dimension, ...] = ()) -> CostResult:
    """One question to the general cost query (smallest table, cached), narrowed to accounts."""
    return query_costs(session, actor=actor, query=CostQuery(
        start=start, end=end, metric=metric, granularity=granularity, group_by=group_by,
        filters={"account": account_ids} if account_ids else {}))


def compute_kpis(session: Session, *, actor: Actor, metric: Metric, account_ids: tuple[str, ...],
                 today: dt.date) -> Kpis:
    """Month to date, last month, the same days of last month, and a month-end forecast (see
    ``services.costs.forecast``: recurring spend projected, one-off charges where they fall)."""
    from services.costs import forecast as forecasting

    def total(start: dt.date, end: dt.date) -> Decimal:
        return _ask(session, actor=actor, metric=metric, start=start, end=end, account_ids=account_ids).total

    this_month = months.month_start(today)
    last_month_start = months.add_months(this_month, -1)
    last_month_end = months.month_end(last_month_start)
    mtd = total(this_month, today)
    last_month = total(last_month_start, last_month_end)
    # the same day of last month, or its last day when last month is shorter
    same_days = total(last_month_start, min(last_month_start + dt.timedelta(days=today.day - 1), last_month_end))
    forecast = forecasting.get_forecast(session, actor=actor, metric=metric, account_ids=account_ids, today=today)
    change = ((mtd - same_days) / same_days * 100) if same_days else None
    return Kpis(
        month_to_date=mtd,
        last_month_total=last_month,
        last_month_same_days=same_days,
        forecast_month_end=forecast.amount,
        change_vs_last_month_pct=change.quantize(Decimal("0.1")) if change is not None else None,
        as_of=today,
        forecast=forecast,
    )


def list_accounts(session: Session, *, actor: Actor) -> list[tuple[str, str]]:
    """Return (account id, name) of every account with costs the actor may see."""
    from models import CostSummaryRollup

    visible = visible_account_ids(session, actor=actor)
    ids = select(CostSummaryRollup.usage_account_id).distinct()
    if visible is not None:
        ids = ids.where(CostSummaryRollup.usage_account_id.in_(sorted(visible)))
    names = dict(session.execute(select(AwsAccount.account_id, AwsAccount.name)).all())
    return sorted(((a, names.get(a, "")) for a in session.scalars(ids)), key=lambda p: (p[1] or p[0]))


def _currencies(session: Session, *, actor: Actor, f: CostFilter) -> list[str]:
    """The currencies of the months the range touches (from the smallest rollup)."""
    from models import CostSummaryRollup

    query = select(CostSummaryRollup.currency).distinct().where(
        CostSummaryRollup.billing_period >= f.start.replace(day=1), CostSummaryRollup.billing_period <= f.end)
    visible = visible_account_ids(session, actor=actor)
    wanted: frozenset[str] | None = frozenset(f.account_ids) if f.account_ids else None
    if visible is not None:
        wanted = visible if wanted is None else wanted & visible
    if wanted is not None:
        query = query.where(CostSummaryRollup.usage_account_id.in_(sorted(wanted)))
    return list(session.scalars(query))


def currency_of(session: Session, *, actor: Actor, start: dt.date, end: dt.date,
                account_ids: tuple[str, ...] = ()) -> str:
    """The currency of the costs a range holds: "USD" when there are none, "mixed" when several."""
    found = _currencies(session, actor=actor, f=CostFilter(start=start, end=end, account_ids=account_ids))
    return found[0] if len(found) == 1 else ("USD" if not found else "mixed")


def get_overview(session: Session, *, actor: Actor, cost_filter: CostFilter, today: dt.date) -> Overview:
    """Build the overview for a filter: KPIs, daily trend, top services and cost by account, all
    through the general cost query (so from the smallest rollups, and cached)."""
    f = cost_filter

    def ask(granularity: Granularity, group_by: tuple[Dimension, ...] = ()) -> CostResult:
        return _ask(session, actor=actor, metric=f.metric, start=f.start, end=f.end, account_ids=f.account_ids,
                    granularity=granularity, group_by=group_by)

    daily = sorted((r.period, r.amount) for r in ask("day").rows if r.period is not None)
    services = [(r.keys[0], r.amount) for r in ask("total", ("service",)).rows]
    accounts = [(r.keys[0], r.amount) for r in ask("total", ("account",)).rows]
    currencies = _currencies(session, actor=actor, f=f)
    names = dict(session.execute(select(AwsAccount.account_id, AwsAccount.name)).all())
    kpis = compute_kpis(session, actor=actor, metric=f.metric, account_ids=f.account_ids, today=today)
    accounts_list = list_accounts(session, actor=actor)
    # The audit row is the transaction's only write, and last. It does not wait for the chain
    # head: viewers never queue on each other; the row is chained in passing or soon after.
    audit.record(session, actor=actor, action="costs.view", object_type="overview",
                 details={"start": f.start.isoformat(), "end": f.end.isoformat(),
                          "accounts": list(f.account_ids), "metric": f.metric}, defer_chain=True)
    return Overview(
        filter=f,
        kpis=kpis,
        total=sum((v for _, v in daily), Decimal(0)),
        daily=daily,
        top_services=top_n(services, TOP_SERVICES),
        by_account=sorted(((a, names.get(a, ""), v) for a, v in accounts), key=lambda r: r[2], reverse=True),
        currency=currencies[0] if len(currencies) == 1 else ("USD" if not currencies else "mixed"),
        accounts=accounts_list,
    )


def top_n(rows: Iterable[tuple[str, Decimal]], n: int,
          other_label: str = "Other") -> list[tuple[str, Decimal]]:
    """Return the n largest rows, then one "Other" row holding the rest (never dropped)."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    head, tail = ordered[:n], ordered[n:]
    if tail:
        head.append((other_label, sum((v for _, v in tail), Decimal(0))))
    return head


# --- the general query: any dimension, filter, grain, metric; top-N with Other -------------------

Dimension = Literal["account", "service", "region", "usage_type", "charge_category", "team", "cost_center",
                    "environment", "provider", "service_category"]
#: Any tag key is a dimension too, named ``tag:<key>`` (answered from the cost facts).
TAG_PREFIX = "tag:"
TagDimension = Annotated[str, StringConstraints(pattern=r"^tag:[^\x00-\x1f]{1,128}$")]
AnyDimension = Dimension | TagDimension
Granularity = Literal["day", "month", "total"]
OTHER = "Other"
UNTAGGED = "(untagged)"
_ALLOCATION_KEYS = frozenset({"team", "cost_center", "environment"})


def is_tag(dimension: str) -> bool:
    """Whether a dimension is a tag key (``tag:<key>``) rather than a fixed column."""
    return dimension.startswith(TAG_PREFIX)


def _labelled_untagged(dimension: str) -> bool:
    """Whether an empty value of this dimension is shown as the explicit "(untagged)" bucket."""
    return dimension in _ALLOCATION_KEYS or is_tag(dimension)


class CostQuery(BaseModel):
    """A cost question: a range, how to group and filter, which metric, at which grain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.date
    end: dt.date
    granularity: Granularity = "month"
    group_by: tuple[AnyDimension, ...] = Field(default=(), max_length=3)
    filters: dict[AnyDimension, tuple[str, ...]] = Field(default_factory=dict)
    metric: Metric = "unblended_cost"
    top_n: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> CostQuery:
        if self.end < self.start:
            raise ValueError("the end date is before the start date")
        if (self.end - self.start).days > MAX_RANGE_DAYS:
            raise ValueError("the date range is longer than three years")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by must not repeat a dimension")
        if any(len(v) > 500 for v in self.filters.values()):
            raise ValueError("a filter may list at most 500 values")
        return self


@dataclass(frozen=True)
class CostRow:
    period: dt.date | None
    keys: tuple[str, ...]
    amount: Decimal


@dataclass(frozen=True)
class CostResult:
    query: CostQuery
    rows: tuple[CostRow, ...]
    total: Decimal
    #: which table answered: a rollup, or the facts when no rollup holds the dimensions
    table: str


@dataclass(frozen=True)
class _Table:
    name: str
    model: type[Any]
    columns: dict[str, str]
    grain: str
    #: False for a rollup without an account column: it cannot be narrowed to visible accounts.
    per_account: bool = True

    def has(self, query: CostQuery, dims: Iterable[str], *, scoped: bool, months_agree: bool) -> bool:
        """Whether this table answers the query: it holds the dimensions and filters, may be narrowed
        to the actor's accounts, and (a month rollup) sums the same rows as the day tables would."""
        if scoped and not self.per_account:
            return False
        wanted = set(dims) | set(query.filters)
        if any(is_tag(d) for d in wanted) and self.name != "cost_facts":
            return False  # tags are kept on the facts only
        if not {d for d in wanted if not is_tag(d)} <= set(self.columns):
            return False
        if self.grain == "month":
            return query.granularity != "day" and months_agree and is_whole_months(query.start, query.end)
        return True


def is_whole_months(start: dt.date, end: dt.date) -> bool:
    """Whether a range runs from the first day of a month to the last day of a month."""
    return start.day == 1 and (end + dt.timedelta(days=1)).day == 1


def _months_agree(session: Session, query: CostQuery) -> bool:
    """Whether the month rollups (keyed by billing period) hold exactly the rows charged within the
    query's whole months: no period in the range, nor one whose rows reach into it, holds a row
    charged outside its own month. The rule every path applies is the charge date."""
    from services.costs import rollups

    if query.granularity == "day" or not is_whole_months(query.start, query.end):
        return False
    return not any(query.start <= period <= query.end or (first <= query.end and last >= query.start)
                   for period, first, last in rollups.list_straying_spans(session))


def _month_of(session: Session, column: Any) -> Any:
    """The first day of the month of a date column, as a date, on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("month", column), Date)
    return type_coerce(func.date(column, "start of month"), Date)


def _tables() -> list[_Table]:
    from models import CostAllocationRollup, CostFact, CostMonthlyRollup, CostSummaryRollup, CostTeamDailyRollup

    base = {"account": "usage_account_id", "service": "service", "service_category": "service_category"}
    allocation = {"team": "team", "cost_center": "cost_center", "environment": "environment"}
    return [
        # Smallest first: each question goes to the first table that holds its dimensions.
        _Table("cost_summary_rollups", CostSummaryRollup, {**base, "provider": "provider"}, "month"),
        _Table("cost_monthly_rollups", CostMonthlyRollup,
               {**base, "usage_type": "usage_type", "charge_category": "charge_category", "provider": "provider"},
               "month"),
        _Table("cost_team_daily_rollups", CostTeamDailyRollup, {"service": "service", **allocation}, "day",
               per_account=False),
        _Table("cost_daily_rollups", CostDailyRollup, {**base, "region": "region", "provider": "provider"}, "day"),
        _Table("cost_allocation_rollups", CostAllocationRollup,
               {"account": "usage_account_id", "service": "service", **allocation}, "day"),
        _Table("cost_facts", CostFact, {**base, "region": "region", "provider": "provider", "usage_type": "usage_type",
                                        "charge_category": "charge_category", **allocation}, "day"),
    ]


def parse_query(values: object) -> CostQuery:
    """Validate a cost question or raise InvalidInput naming the field."""
    return parse(CostQuery, values, default_field="query")


def query_costs(session: Session, *, actor: Actor, query: CostQuery, is_view: bool = False) -> CostResult:
    """Answer a cost question from the smallest tables that hold its dimensions (cached).

    ``is_view``: the answer is shown as it is (the API, an export), so the view is audited; a page
    that builds a view from several answers audits that view once instead.
    """
    from services.costs import cache
    from services.costs.ingest import get_data_version

    visible = visible_account_ids(session, actor=actor)
    key = cache.key_for("costs", version=get_data_version(session),
                        parts={"q": query.model_dump(mode="json"), "scope": sorted(visible) if visible else None})
    result = cache.get_or_compute(key, lambda: _compute(session, query=query, visible=visible),
                                  dump=_dump, load=lambda data: _load(query, data))
    if is_view:
        audit.record(session, actor=actor, action="costs.query", object_type="costs",
                     details=query.model_dump(mode="json", exclude_defaults=True))
    return result


_Amounts = dict[tuple[dt.date | None, tuple[str, ...]], Decimal]
#: Joins the keys of a drill-down prefix into one text to match (a control character; rows that
#: match only through one inside a key are dropped after the query).
_KEY_SEPARATOR = "\x1f"


def _amounts(session: Session, *, query: CostQuery, dims: tuple[str, ...], visible: frozenset[str] | None,
             months_agree: bool, within: set[tuple[str, ...]] | None = None) -> tuple[_Amounts, str]:
    """Sum the metric by period and ``dims`` from the smallest table that holds them; ``within``
    keeps only rows whose leading dimensions are one of those keys (the kept ones of a level above)."""
    table = next(t for t in _tables() if t.has(query, dims, scoped=visible is not None, months_agree=months_agree))
    model = table.model
    daily = table.grain == "day"
    # One rule on every path: a range holds the rows charged within it. A month rollup answers
    # only when its billing periods hold exactly those rows (``months_agree``).
    date_column = model.usage_date if daily else model.billing_period
    start = query.start if daily else query.start.replace(day=1)
    keys = [_column(model, table, d) for d in dims]
    month = _month_of(session, model.usage_date) if daily else model.billing_period
    period = {"day": date_column, "month": month, "total": None}[query.granularity]
    selected = [c for c in (period, *keys) if c is not None]
    stmt = select(*selected, money_sum(getattr(model, query.metric))).where(
        date_column >= start, date_column <= query.end)
    for dimension, accepted in query.filters.items():
        column = _column(model, table, dimension)
        untagged_bucket = _labelled_untagged(dimension)
        stmt = stmt.where(column.in_(["" if (untagged_bucket and v == UNTAGGED) else v for v in accepted]))
    if within is not None:
        depth = len(next(iter(within), ()))
        raw = sorted(tuple("" if (_labelled_untagged(d) and v == UNTAGGED) else v
                           for d, v in zip(dims, k, strict=False)) for k in within)
        # The first key narrows through the index; deeper prefixes are matched as one joined text
        # (a row-value IN list would make the planner try one index probe per pair).
        stmt = stmt.where(keys[0].in_(sorted({k[0] for k in raw})))
        if depth > 1:
            joined = keys[0]
            for column in keys[1:depth]:
                joined = joined + _KEY_SEPARATOR + column
            stmt = stmt.where(joined.in_([_KEY_SEPARATOR.join(k) for k in raw]))
    if visible is not None:
        stmt = stmt.where(model.usage_account_id.in_(sorted(visible)))
    if selected:
        stmt = stmt.group_by(*selected)
    amounts: _Amounts = {}
    untagged = [i for i, d in enumerate(dims) if _labelled_untagged(d)]
    prefix = len(next(iter(within))) if within else 0
    first = 1 if period is not None else 0
    for record in session.execute(stmt).all():
        labels = tuple(record[first:-1])  # the key columns are text already
        if untagged:
            labels = tuple(UNTAGGED if i in untagged and v == "" else v for i, v in enumerate(labels))
        if prefix and labels[:prefix] not in within:  # type: ignore[operator]  # prefix > 0: within is set
            continue  # matched the joined text only by a separator inside a key
        amounts[(record[0] if first else None, labels)] = record[-1]
    return amounts, table.name


def _column(model: Any, table: _Table, dimension: str) -> Any:
    """A dimension's column in a table; the facts' service category is "" where a source has none,
    as the rollups keep it, and a tag's value is "" where a line does not carry the tag."""
    if is_tag(dimension):
        return func.coalesce(model.tags[dimension.removeprefix(TAG_PREFIX)].as_string(), "")
    column = getattr(model, table.columns[dimension])
    return func.coalesce(column, "") if table.name == "cost_facts" and dimension == "service_category" else column


def _compute(session: Session, *, query: CostQuery, visible: frozenset[str] | None) -> CostResult:
    months_agree = _months_agree(session, query)
    if not (query.top_n and query.group_by):
        amounts, table = _amounts(session, query=query, dims=query.group_by, visible=visible,
                                  months_agree=months_agree)
        rows = [CostRow(p, k, a) for (p, k), a in amounts.items()]
    else:
        rows, table = _top_n_levels(session, query=query, visible=visible, months_agree=months_agree)
    rows.sort(key=lambda r: (r.period or dt.date.min, OTHER in r.keys, -r.amount, r.keys))
    return CostResult(query=query, rows=tuple(rows), total=sum((r.amount for r in rows), Decimal(0)), table=table)


def _top_n_levels(session: Session, *, query: CostQuery, visible: frozenset[str] | None,
                  months_agree: bool) -> tuple[list[CostRow], str]:
    """A drill-down with top-N and "Other" at every level: the n largest keys of the first
    dimension, within each of those its n largest of the second, and so on (ranked over the whole
    range); what is left at a level is one "Other" row per parent and period. Each level is summed
    from the smallest table that holds it, and only under the parents kept above it, so the
    answer stays small however many accounts and usage types there are."""
    assert query.top_n is not None  # noqa: S101 - the caller checked
    depth = len(query.group_by)
    rows: list[CostRow] = []
    within: set[tuple[str, ...]] | None = None
    table = ""
    for level in range(1, depth + 1):
        amounts, table = _amounts(session, query=query, dims=query.group_by[:level], visible=visible,
                                  months_agree=months_agree, within=within)
        totals: dict[tuple[str, ...], Decimal] = {}
        for (_period, keys), amount in amounts.items():
            totals[keys] = totals.get(keys, Decimal(0)) + amount
        by_parent: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for keys in totals:
            by_parent.setdefault(keys[:-1], []).append(keys)
        kept = {keys for children in by_parent.values()
                for keys in sorted(children, key=lambda k: (-totals[k], k))[:query.top_n]}
        padding = ("",) * (depth - level)
        folded: _Amounts = {}
        for (period, keys), amount in amounts.items():
            if keys in kept and level < depth:
                continue  # split further at the next level
            out = keys + padding if keys in kept else keys[:-1] + (OTHER,) + padding
            folded[(period, out)] = folded.get((period, out), Decimal(0)) + amount
        rows += [CostRow(p, k, a) for (p, k), a in folded.items()]
        within = kept
        if not kept:
            break
    return rows, table


def _dump(result: CostResult) -> dict[str, object]:
    return {"table": result.table, "total": str(result.total),
            "rows": [[r.period.isoformat() if r.period else None, list(r.keys), str(r.amount)] for r in result.rows]}


def _load(query: CostQuery, data: dict[str, Any]) -> CostResult:
    rows = tuple(CostRow(dt.date.fromisoformat(p) if p else None, tuple(k), Decimal(a)) for p, k, a in data["rows"])
    return CostResult(query=query, rows=rows, total=Decimal(data["total"]), table=data["table"])
