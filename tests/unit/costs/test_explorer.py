"""The cost explorer's state (what the URL holds), drill-down, tag dimensions and the view's totals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.costs import cache, explorer, ingest, queries
from services.errors import InvalidInput
from services.identity.permissions import Actor
from tests.factories import fact

FINANCE = Actor(user_id=None, username="fin", roles=frozenset({"finance"}))
TODAY = dt.date(2026, 3, 15)
ROWS = [
    fact(dt.date(2026, 1, 5), "111111111111", "Amazon EC2", "10.00000000001", region="us-east-1",
         usage_type="BoxUsage:m5.large", tags={"owner": "ana", "env": "prod"}),
    fact(dt.date(2026, 1, 6), "111111111111", "Amazon S3", "2.5", region="us-east-1", usage_type="TimedStorage",
         tags={"owner": "bo"}),
    fact(dt.date(2026, 2, 7), "222222222222", "Amazon EC2", "7.25", region="eu-west-1",
         usage_type="BoxUsage:t3.micro", tags={}),
    fact(dt.date(2026, 2, 8), "111111111111", "Amazon EC2", "1.75", region="eu-west-1",
         usage_type="BoxUsage:t3.micro", tags={"owner": "ana"}),
    fact(dt.date(2026, 3, 2), "222222222222", "AWS Lambda", "0.125", region="eu-west-1",
         usage_type="Request", tags={"owner": "=cmd"}),
]


@pytest.fixture()
def loaded(session):
    cache.configure(None)
    for month in (1, 2, 3):
        ingest.replace_period(session, source="test", billing_period=dt.date(2026, month, 1),
                              rows=[r for r in ROWS if r.usage_date.month == month])
    session.commit()
    return session


def test_a_state_survives_its_query_string():
    state = explorer.ExplorerState(
        preset="custom", start=dt.date(2026, 1, 1), end=dt.date(2026, 2, 28), granularity="day",
        metric="amortized_cost", group_by="tag:owner", filters={"service": ("Amazon EC2", "Amazon S3")},
        drill=(explorer.DrillStep(dimension="account", value="111111111111"),), chart="area", compare=False,
        sort="key", descending=False, search="an&a=1", page=3)
    assert explorer.parse_state(explorer.state_to_query(state)) == state


def test_the_default_view_has_an_empty_query_string():
    assert explorer.state_to_query(explorer.ExplorerState()) == ""
    assert explorer.parse_state("") == explorer.ExplorerState()


@pytest.mark.parametrize("search, field", [
    ("?group_by=colour", "group_by"),
    ("?start=2026-02-01&end=2026-01-01", "state"),
    ("?preset=last_month&start=2026-01-01&end=2026-01-31", "state"),
    ("?bogus=1", "bogus"),
    ("?drill=account", "drill"),
    ("?page=0", "page"),
    ("?metric=a&metric=b", "metric"),
])
def test_a_bad_query_string_is_refused_naming_its_part(search, field):
    with pytest.raises(InvalidInput) as caught:
        explorer.parse_state(search)
    assert caught.value.message.startswith(field)


def test_presets_cover_whole_months_up_to_today():
    assert explorer.preset_range("last_month", TODAY) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert explorer.preset_range("last_3_months", TODAY) == (dt.date(2026, 1, 1), TODAY)
    assert explorer.preset_range("year_to_date", TODAY) == (dt.date(2026, 1, 1), TODAY)
    assert explorer.preset_range("this_month", TODAY) == (dt.date(2026, 3, 1), TODAY)


@pytest.mark.parametrize("start, end, previous", [
    ((2026, 1, 1), (2026, 2, 28), ((2025, 11, 1), (2025, 12, 31))),
    ((2026, 3, 1), (2026, 3, 15), ((2026, 2, 1), (2026, 2, 15))),
    ((2026, 3, 1), (2026, 3, 31), ((2026, 2, 1), (2026, 2, 28))),
    ((2026, 3, 5), (2026, 3, 10), ((2026, 2, 27), (2026, 3, 4))),
])
def test_the_previous_period_is_as_long_as_the_range(start, end, previous):
    got = explorer.previous_period(dt.date(*start), dt.date(*end))
    assert got == (dt.date(*previous[0]), dt.date(*previous[1]))


def test_a_click_makes_a_filter_and_shows_the_next_dimension_and_crumbs_climb_back():
    state = explorer.ExplorerState(group_by="account")
    one = explorer.drill_into(state, "111111111111")
    assert one is not None and one.group_by == "service" and one.fixed() == {"account": ("111111111111",)}
    two = explorer.drill_into(one, "Amazon EC2")
    assert two is not None and two.group_by == "region"
    crumbs = explorer.breadcrumbs(two, {"111111111111": "Prod"})
    assert [c.label for c in crumbs] == ["All costs", "Account: Prod (111111111111)", "Service: Amazon EC2"]
    assert explorer.climb_to(two, 1) == one.model_copy(update={"page": 1})
    assert explorer.climb_to(two, 0).group_by == "account" and explorer.climb_to(two, 0).drill == ()
    assert explorer.drill_into(state, "Other") is None


def test_a_tag_key_is_a_dimension_with_an_untagged_bucket(loaded):
    result = queries.query_costs(loaded, actor=FINANCE, query=queries.parse_query({
        "start": "2026-01-01", "end": "2026-03-31", "granularity": "total", "group_by": ["tag:owner"]}))
    got = {r.keys[0]: r.amount for r in result.rows}
    assert result.table == "cost_facts"
    assert got == {"ana": Decimal("11.75000000001"), "bo": Decimal("2.5"), queries.UNTAGGED: Decimal("7.25"),
                   "=cmd": Decimal("0.125")}
    narrowed = queries.query_costs(loaded, actor=FINANCE, query=queries.parse_query({
        "start": "2026-01-01", "end": "2026-03-31", "granularity": "total", "group_by": ["service"],
        "filters": {"tag:owner": [queries.UNTAGGED]}}))
    assert {r.keys: r.amount for r in narrowed.rows} == {("Amazon EC2",): Decimal("7.25")}
    assert explorer.list_tag_keys(loaded) == ["env", "owner"]


def test_the_view_totals_equal_the_chart_and_the_table(loaded):
    state = explorer.ExplorerState(preset="custom", start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31),
                                   group_by="service")
    view = explorer.get_view(loaded, actor=FINANCE, state=state, today=TODAY, page_size=2)
    assert view.total == Decimal("21.62500000001")
    assert sum(a for _, _, a in view.series) == view.total
    assert view.row_count == 3 and view.page_count == 2 and len(view.rows) == 2
    assert [r.key for r in view.rows] == ["Amazon EC2", "Amazon S3"]
    assert view.previous_total == Decimal(0) and view.previous_start == dt.date(2025, 10, 1)


def test_the_view_compares_with_the_previous_period_and_searches_the_table(loaded):
    state = explorer.ExplorerState(preset="custom", start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28),
                                   group_by="account", search="2222")
    view = explorer.get_view(loaded, actor=FINANCE, state=state, today=TODAY)
    assert view.total == Decimal("9.00") and view.previous_total == Decimal("12.50000000001")
    assert [(r.key, r.amount, r.previous, r.change) for r in view.rows] == [
        ("222222222222", Decimal("7.25"), Decimal(0), Decimal("7.25"))]


def test_a_drilled_view_holds_only_the_clicked_keys(loaded):
    state = explorer.ExplorerState(preset="custom", start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31),
                                   group_by="account")
    state = explorer.drill_into(state, "111111111111")
    state = explorer.drill_into(state, "Amazon EC2")
    state = explorer.drill_into(state, "eu-west-1")
    view = explorer.get_view(loaded, actor=FINANCE, state=state, today=TODAY)
    assert state.group_by == "usage_type"
    assert [(r.key, r.amount) for r in view.rows] == [("BoxUsage:t3.micro", Decimal("1.75"))]


def test_the_dates_and_accounts_chosen_elsewhere_apply_to_a_bare_view_and_bad_ones_are_ignored():
    shared = {"preset": "custom", "start": "2026-01-01", "end": "2026-01-31", "accounts": ["111111111111"]}
    state = explorer.with_shared_filters(explorer.ExplorerState(), shared)
    assert state.date_range(TODAY) == (dt.date(2026, 1, 1), dt.date(2026, 1, 31))
    assert state.fixed() == {"account": ("111111111111",)}
    assert explorer.shared_filters(state) == shared
    assert explorer.with_shared_filters(explorer.ExplorerState(), {"preset": "custom", "start": "2026-02-01",
                                                                   "end": "2026-01-01"}) == explorer.ExplorerState()
    assert explorer.with_shared_filters(explorer.ExplorerState(), None) == explorer.ExplorerState()


def _monthly_by_service(session, top_n: int) -> queries.CostResult:  # type: ignore[no-untyped-def]
    return queries.query_costs(session, actor=FINANCE, query=queries.CostQuery.model_validate({
        "start": dt.date(2026, 1, 1), "end": dt.date(2026, 3, 31), "granularity": "month",
        "group_by": ("service",), "top_n": top_n}))


def test_the_keys_totals_come_from_the_chart_when_nothing_was_folded(loaded):
    derived = explorer.totals_by_key(_monthly_by_service(loaded, 10))
    asked = queries.query_costs(loaded, actor=FINANCE, query=queries.CostQuery.model_validate({
        "start": dt.date(2026, 1, 1), "end": dt.date(2026, 3, 31), "granularity": "total",
        "group_by": ("service",)}))
    assert derived is not None
    assert [(r.keys, r.amount) for r in derived.rows] == [(r.keys, r.amount) for r in asked.rows]
    assert derived.total == asked.total and all(r.period is None for r in derived.rows)


def test_the_keys_totals_are_asked_for_when_the_chart_folded_keys_into_other(loaded):
    assert explorer.totals_by_key(_monthly_by_service(loaded, 1)) is None


def test_a_folded_chart_still_lists_every_key_in_the_table(loaded, monkeypatch):
    monkeypatch.setattr(explorer, "CHART_TOP_N", 1)
    state = explorer.ExplorerState(preset="custom", start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31),
                                   group_by="service")
    folded = explorer.get_view(loaded, actor=FINANCE, state=state, today=TODAY)
    assert queries.OTHER in {k for _, k, _ in folded.series}
    assert sorted(r.key for r in folded.rows) == ["AWS Lambda", "Amazon EC2", "Amazon S3"]
