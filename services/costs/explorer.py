"""The cost explorer: a view's whole state (what its URL holds), drill-down, and the view's data.

A state is plain data: the range (a preset relative to today, or fixed dates), grain, metric, the
dimension shown, the filters set by hand, the drill trail (each step a dimension and the value
clicked), the chart kind, the comparison with the previous period, and the table's sort, search and
page. It travels as a query string (``state_to_query`` / ``parse_state``) and as saved views.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from urllib.parse import parse_qs, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit, months
from services.costs import queries
from services.costs.queries import OTHER, AnyDimension, CostQuery, CostResult, CostRow, Metric
from services.errors import InvalidInput
from services.identity.permissions import Actor
from services.validation import invalid

Preset = Literal["this_month", "last_month", "last_3_months", "last_6_months", "last_12_months",
                 "year_to_date", "custom"]
PRESET_LABELS: dict[str, str] = {
    "this_month": "This month",
    "last_month": "Last month",
    "last_3_months": "Last 3 months",
    "last_6_months": "Last 6 months",
    "last_12_months": "Last 12 months",
    "year_to_date": "Year to date",
    "custom": "Custom dates",
}
ChartKind = Literal["bar", "line", "area", "treemap"]
SortKey = Literal["amount", "key", "previous", "change"]
ExplorerGranularity = Literal["day", "month"]

#: What a click shows next: the first of these not fixed yet by the trail or a filter.
DRILL_ORDER: tuple[str, ...] = ("account", "service", "region", "usage_type", "charge_category")
DIMENSION_LABELS: dict[str, str] = {
    "account": "Account",
    "service": "Service",
    "region": "Region",
    "usage_type": "Usage type",
    "charge_category": "Charge category",
    "team": "Team",
    "cost_center": "Cost centre",
    "environment": "Environment",
    "provider": "Provider",
    "service_category": "Service category",
}
PAGE_SIZE = 25
#: The chart folds everything past the n largest keys into one "Other" series.
CHART_TOP_N = 10
MAX_TRAIL = 6


def dimension_label(dimension: str) -> str:
    """A dimension's name for people: "Usage type", or "Tag: owner" for a tag key."""
    if queries.is_tag(dimension):
        return f"Tag: {dimension.removeprefix(queries.TAG_PREFIX)}"
    return DIMENSION_LABELS.get(dimension, dimension)


class DrillStep(BaseModel):
    """One click of a drill-down: the dimension that was shown and the value that was clicked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dimension: AnyDimension
    value: str = Field(min_length=1, max_length=256)


class ExplorerState(BaseModel):
    """Everything that makes one explorer view; the URL holds exactly this."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: Preset = "last_3_months"
    start: dt.date | None = None
    end: dt.date | None = None
    granularity: ExplorerGranularity = "month"
    metric: Metric = "unblended_cost"
    group_by: AnyDimension = "service"
    filters: dict[AnyDimension, tuple[str, ...]] = Field(default_factory=dict)
    drill: tuple[DrillStep, ...] = Field(default=(), max_length=MAX_TRAIL)
    chart: ChartKind = "bar"
    compare: bool = True
    sort: SortKey = "amount"
    descending: bool = True
    search: str = Field(default="", max_length=128)
    page: int = Field(default=1, ge=1, le=100_000)

    @field_validator("filters")
    @classmethod
    def _check_filters(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        if len(value) > 12:
            raise ValueError("at most 12 dimensions may be filtered")
        if any(len(v) > 500 for v in value.values()):
            raise ValueError("a filter may list at most 500 values")
        return {k: tuple(v) for k, v in value.items() if v}

    @model_validator(mode="after")
    def _check_range(self) -> ExplorerState:
        if self.preset == "custom":
            if self.start is None or self.end is None:
                raise ValueError("custom dates need both a start and an end")
            if self.end < self.start:
                raise ValueError("the end date is before the start date")
            if (self.end - self.start).days > queries.MAX_RANGE_DAYS:
                raise ValueError("the date range is longer than three years")
        elif self.start is not None or self.end is not None:
            raise ValueError("fixed dates need preset=custom")
        return self

    def date_range(self, today: dt.date) -> tuple[dt.date, dt.date]:
        """The first and last day this state covers, as of ``today``."""
        if self.preset == "custom":
            assert self.start is not None and self.end is not None  # noqa: S101 - validated above
            return self.start, self.end
        return preset_range(self.preset, today)

    def fixed(self) -> dict[str, tuple[str, ...]]:
        """The filters in force: those set by hand plus each drill step."""
        out = dict(self.filters)
        for step in self.drill:
            out[step.dimension] = (step.value,)
        return out


def preset_range(preset: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The range a preset means on ``today`` (whole months, the current one up to today)."""
    this_month = months.month_start(today)
    if preset == "this_month":
        return this_month, today
    if preset == "last_month":
        start = months.add_months(this_month, -1)
        return start, months.month_end(start)
    if preset == "year_to_date":
        return today.replace(month=1, day=1), today
    count = {"last_3_months": 3, "last_6_months": 6, "last_12_months": 12}[preset]
    # the current month and the whole months before it
    return months.add_months(this_month, -(count - 1)), today


# --- the query string --------------------------------------------------------------------------

_DEFAULT = ExplorerState()


def state_to_query(state: ExplorerState) -> str:
    """The query string (with its "?", or "" for the default view) that reopens this state."""
    pairs: list[tuple[str, str]] = []
    if state.preset != _DEFAULT.preset:
        pairs.append(("preset", state.preset))
    if state.start and state.end:
        pairs += [("start", state.start.isoformat()), ("end", state.end.isoformat())]
    for name in ("granularity", "metric", "group_by", "chart", "sort"):
        if getattr(state, name) != getattr(_DEFAULT, name):
            pairs.append((name, str(getattr(state, name))))
    for name in ("compare", "descending"):
        if getattr(state, name) != getattr(_DEFAULT, name):
            pairs.append((name, "1" if getattr(state, name) else "0"))
    for dimension, values in state.filters.items():
        pairs += [(f"filter.{dimension}", v) for v in values]
    pairs += [("drill", f"{s.dimension}={s.value}") for s in state.drill]
    if state.search:
        pairs.append(("search", state.search))
    if state.page != 1:
        pairs.append(("page", str(state.page)))
    return f"?{urlencode(pairs)}" if pairs else ""


_SCALARS = ("preset", "start", "end", "granularity", "metric", "group_by", "chart", "sort", "compare",
            "descending", "search", "page")


def parse_state(search: str | Mapping[str, Sequence[str]] | None) -> ExplorerState:
    """Read a state from a query string (or parsed query); raise InvalidInput naming the bad part."""
    query = parse_qs((search or "").lstrip("?"), keep_blank_values=True) if isinstance(search, str | None) \
        else {k: list(v) for k, v in search.items()}
    values: dict[str, object] = {}
    filters: dict[str, list[str]] = {}
    drill: list[dict[str, str]] = []
    for name, items in query.items():
        if name in ("embed",):
            continue  # the page frame's, not the view's
        if name.startswith("filter."):
            filters[name.removeprefix("filter.")] = list(items)
        elif name == "drill":
            for item in items:
                dimension, sep, value = item.partition("=")
                if not sep:
                    raise InvalidInput(f"drill: {item!r} is not dimension=value", details={"field": "drill"})
                drill.append({"dimension": dimension, "value": value})
        elif name in _SCALARS:
            if len(items) != 1:
                raise InvalidInput(f"{name}: give it once", details={"field": name})
            values[name] = items[0]
        else:
            raise InvalidInput(f"{name}: not a setting of the cost explorer", details={"field": name})
    if ("start" in values or "end" in values) and "preset" not in values:
        values["preset"] = "custom"
    return state_from_dict({**values, "filters": filters, "drill": drill})


def state_from_dict(values: Mapping[str, object]) -> ExplorerState:
    """Validate a state given as an object (a saved view's ``state``); raise InvalidInput."""
    try:
        return ExplorerState.model_validate(values)
    except ValidationError as exc:
        raise invalid(exc, default_field="state") from exc


def state_to_dict(state: ExplorerState) -> dict[str, object]:
    """A state as a JSON object, without the settings left at their defaults."""
    return state.model_dump(mode="json", exclude_defaults=True)


def shared_filters(state: ExplorerState) -> dict[str, object]:
    """The part of a state that follows the user to other pages: the dates and the accounts."""
    return {"preset": state.preset, "start": state.start.isoformat() if state.start else None,
            "end": state.end.isoformat() if state.end else None,
            "accounts": list(state.fixed().get("account", ()))}


def with_shared_filters(state: ExplorerState, shared: Mapping[str, object] | None) -> ExplorerState:
    """The state with the dates and accounts chosen last on another page (left as it is when they
    are missing or no longer valid)."""
    if not shared:
        return state
    values = state_to_dict(state)
    values.update({k: shared.get(k) for k in ("preset", "start", "end")})
    accounts = shared.get("accounts")
    if isinstance(accounts, list) and accounts:
        values["filters"] = {**state.filters, "account": accounts}
    try:
        return state_from_dict(values)
    except InvalidInput:
        return state


# --- moving through states ---------------------------------------------------------------------

def next_dimension(state: ExplorerState) -> str | None:
    """The dimension a click on the current one leads to, or None at the bottom of the order."""
    fixed = set(state.fixed()) | {state.group_by}
    return next((d for d in DRILL_ORDER if d not in fixed), None)


def drill_into(state: ExplorerState, value: str) -> ExplorerState | None:
    """The state after clicking ``value`` of the dimension shown (None for "Other" or at the end)."""
    following = next_dimension(state)
    if value in ("", OTHER) or following is None or len(state.drill) >= MAX_TRAIL:
        return None
    step = DrillStep(dimension=state.group_by, value=value)
    return state.model_copy(update={"drill": (*state.drill, step), "group_by": following, "page": 1,
                                    "search": ""})


def climb_to(state: ExplorerState, depth: int) -> ExplorerState:
    """The state with only the first ``depth`` drill steps, showing the dimension step ``depth`` showed."""
    depth = max(0, min(depth, len(state.drill)))
    if depth == len(state.drill):
        return state
    return state.model_copy(update={"drill": state.drill[:depth], "group_by": state.drill[depth].dimension,
                                    "page": 1, "search": ""})


@dataclass(frozen=True)
class Crumb:
    label: str
    depth: int


def breadcrumbs(state: ExplorerState, names: Mapping[str, str]) -> list[Crumb]:
    """The trail from the total down to the current view, one crumb per drill step."""
    crumbs = [Crumb("All costs", 0)]
    for depth, step in enumerate(state.drill, start=1):
        crumbs.append(Crumb(f"{dimension_label(step.dimension)}: {display_key(step.dimension, step.value, names)}",
                            depth))
    return crumbs


def display_key(dimension: str, key: str, names: Mapping[str, str]) -> str:
    """A key as people read it: an account's name with its id, other keys as they are."""
    if dimension == "account" and names.get(key):
        return f"{names[key]} ({key})"
    return key or "(none)"


# --- the view's data ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TableRow:
    key: str
    label: str
    amount: Decimal
    previous: Decimal | None
    change: Decimal | None
    change_pct: Decimal | None


@dataclass(frozen=True)
class ExplorerView:
    """What the explorer shows for one state: the chart's series, the totals, a page of the table."""

    state: ExplorerState
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    currency: str
    #: (period, key, amount), the chart's keys folded to the top n and "Other"
    series: list[tuple[dt.date, str, Decimal]]
    #: the chart's keys, largest first ("Other" last), with their totals
    keys: list[tuple[str, Decimal]]
    total: Decimal
    previous_total: Decimal | None
    rows: list[TableRow]
    row_count: int
    page: int
    page_count: int
    names: dict[str, str]
    next_dimension: str | None

    @property
    def is_empty(self) -> bool:
        return not self.series

    @property
    def change(self) -> Decimal | None:
        return None if self.previous_total is None else self.total - self.previous_total

    @property
    def change_pct(self) -> Decimal | None:
        if not self.previous_total:
            return None
        return ((self.total - self.previous_total) / abs(self.previous_total) * 100).quantize(Decimal("0.1"))


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period just before a range: as many months earlier for a range that starts on the 1st
    (whole months, or the same days of them when the range ends mid-month), else as many days."""
    if start.day == 1:
        span = (end.year - start.year) * 12 + end.month - start.month + 1
        end_month = months.add_months(months.month_start(end), -span)
        if queries.is_whole_months(start, end):
            return months.add_months(start, -span), months.month_end(end_month)
        return months.add_months(start, -span), min(end_month + dt.timedelta(days=end.day - 1),
                                                    months.month_end(end_month))
    days = (end - start).days + 1
    return start - dt.timedelta(days=days), start - dt.timedelta(days=1)


def _query(state: ExplorerState, start: dt.date, end: dt.date, **changes: object) -> CostQuery:
    return CostQuery.model_validate({
        "start": start, "end": end, "metric": state.metric, "granularity": "total",
        "group_by": (state.group_by,), "filters": state.fixed(), **changes})


def account_names(session: Session) -> dict[str, str]:
    """Every known account's name by id (ids without a name are left out)."""
    from models import AwsAccount

    return {a: n for a, n in session.execute(select(AwsAccount.account_id, AwsAccount.name)).all() if n}


def totals_by_key(chart: CostResult) -> CostResult | None:
    """The chart's answer summed over its periods, one row per key, or None when top-N folded keys
    into "Other" (then only the query without top-N knows every key's total)."""
    totals: dict[tuple[str, ...], Decimal] = {}
    for row in chart.rows:
        if OTHER in row.keys:
            return None
        totals[row.keys] = totals.get(row.keys, Decimal(0)) + row.amount
    rows = [CostRow(None, keys, amount) for keys, amount in totals.items()]
    rows.sort(key=lambda r: (-r.amount, r.keys))
    query = chart.query.model_copy(update={"granularity": "total", "top_n": None})
    return CostResult(query=query, rows=tuple(rows), total=chart.total, table=chart.table)


def get_view(session: Session, *, actor: Actor, state: ExplorerState, today: dt.date,
             page_size: int = PAGE_SIZE) -> ExplorerView:
    """Compute the explorer's chart series, totals and one table page for a state (audited once)."""
    start, end = state.date_range(today)
    prev_start, prev_end = previous_period(start, end)
    names = account_names(session)
    chart = queries.query_costs(session, actor=actor, query=_query(
        state, start, end, granularity=state.granularity, top_n=CHART_TOP_N))
    keyed = totals_by_key(chart) or queries.query_costs(session, actor=actor, query=_query(state, start, end))
    previous = queries.query_costs(session, actor=actor, query=_query(state, prev_start, prev_end)) \
        if state.compare else None
    series = [(r.period, r.keys[0], r.amount) for r in chart.rows if r.period is not None]
    key_totals: dict[str, Decimal] = {}
    for _, key, amount in series:
        key_totals[key] = key_totals.get(key, Decimal(0)) + amount
    keys = sorted(key_totals.items(), key=lambda kv: (kv[0] == OTHER, -kv[1], kv[0]))
    before = {r.keys[0]: r.amount for r in previous.rows} if previous is not None else {}
    rows = [_row(state, r.keys[0], r.amount, before, names, has_previous=previous is not None) for r in keyed.rows]
    if previous is not None:  # keys that had costs before and none now still belong in the table
        now = {r.keys[0] for r in keyed.rows}
        rows += [_row(state, k, Decimal(0), before, names, has_previous=True) for k in before if k not in now]
    rows = _search(rows, state.search)
    rows = _sort(rows, state.sort, descending=state.descending)
    page_count = max(1, -(-len(rows) // page_size))
    page = min(state.page, page_count)
    audit.record(session, actor=actor, action="costs.view", object_type="explorer",
                 details={"state": state_to_dict(state), "start": start.isoformat(), "end": end.isoformat()},
                 defer_chain=True)
    return ExplorerView(
        state=state, start=start, end=end, previous_start=prev_start, previous_end=prev_end,
        currency=queries.currency_of(session, actor=actor, start=start, end=end,
                                     account_ids=state.fixed().get("account", ())),
        series=series, keys=keys, total=keyed.total,
        previous_total=previous.total if previous is not None else None,
        rows=rows[(page - 1) * page_size:page * page_size], row_count=len(rows), page=page,
        page_count=page_count, names=names, next_dimension=next_dimension(state))


def _row(state: ExplorerState, key: str, amount: Decimal, before: Mapping[str, Decimal], names: Mapping[str, str],
         *, has_previous: bool) -> TableRow:
    previous = before.get(key, Decimal(0)) if has_previous else None
    change = amount - previous if previous is not None else None
    pct = (change / abs(previous) * 100).quantize(Decimal("0.1")) if previous and change is not None else None
    return TableRow(key=key, label=display_key(state.group_by, key, names), amount=amount, previous=previous,
                    change=change, change_pct=pct)


def _search(rows: list[TableRow], text: str) -> list[TableRow]:
    needle = text.strip().casefold()
    return [r for r in rows if needle in r.label.casefold()] if needle else rows


def _sort(rows: list[TableRow], key: str, *, descending: bool) -> list[TableRow]:
    if key == "key":
        return sorted(rows, key=lambda r: r.label.casefold(), reverse=descending)
    attribute = {"amount": "amount", "previous": "previous", "change": "change"}[key]

    def value(row: TableRow) -> Decimal:
        found = getattr(row, attribute)
        return found if found is not None else Decimal("-Infinity")
    return sorted(rows, key=lambda r: (value(r), r.label), reverse=descending)


def list_dimensions(session: Session) -> list[str]:
    """Every dimension the explorer offers: the fixed ones, then each tag key found in the data."""
    return [*DIMENSION_LABELS, *(f"{queries.TAG_PREFIX}{k}" for k in list_tag_keys(session))]


#: Tag keys are read from at most this many distinct key tuples (enough to find every key in use).
_TAG_SCAN_LIMIT = 20_000


def list_tag_keys(session: Session) -> list[str]:
    """The tag keys the cost data carries, sorted (cached per data version)."""
    from models.cost_storage import CostFactKey
    from services.costs import cache
    from services.costs.ingest import get_data_version

    def compute() -> list[str]:
        found: set[str] = set()
        for tags in session.scalars(select(CostFactKey.tags).limit(_TAG_SCAN_LIMIT)):
            found.update(k for k in (tags or {}) if isinstance(k, str) and 0 < len(k) <= 128)
        return sorted(found, key=str.casefold)

    key = cache.key_for("tag-keys", version=get_data_version(session), parts={})
    return cache.get_or_compute(key, compute, dump=lambda v: v, load=lambda v: list(v))


def list_values(session: Session, *, actor: Actor, dimension: str, start: dt.date, end: dt.date,
                limit: int = 500) -> list[str]:
    """The values of a dimension with costs in a range (largest first), for a filter's choices."""
    result = queries.query_costs(session, actor=actor, query=CostQuery.model_validate({
        "start": start, "end": end, "granularity": "total", "group_by": (dimension,)}))
    return [r.keys[0] for r in sorted(result.rows, key=lambda r: -r.amount)][:limit]
