"""The general cost query: every dimension, filter, grain and metric equals sums of the facts."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from services import database
from services.costs import cache, ingest, queries
from services.errors import InvalidInput
from services.identity.permissions import Actor
from tests.factories import fact

FINANCE = Actor(user_id=None, username="fin", roles=frozenset({"finance"}))
TEAMS = ["data", "web", ""]
ROWS = []
for month, day, account, service, region, team in itertools.product(
        (1, 2), (1, 9, 17), ("111111111111", "222222222222"), ("Amazon EC2", "Amazon S3", "AWS Lambda", "Tax"),
        ("us-east-1", "eu-west-1"), range(3)):
    amount = f"{month * day + len(service) + team}.{len(region)}000007"  # x0.9 and x0.97 stay within 11 places
    tags = {"team": TEAMS[team], "cost-center": f"CC-{team}"} if TEAMS[team] else {}
    ROWS.append(fact(dt.date(2026, month, day), account, service, amount, region=region,
                     usage_type=f"{region[:2].upper()}-{service[:3]}", tags=tags,
                     charge_category="Tax" if service == "Tax" else "Usage"))


@pytest.fixture()
def loaded(session):
    cache.configure(None)
    for month in (1, 2):
        ingest.replace_period(session, source="test", billing_period=dt.date(2026, month, 1),
                              rows=[r for r in ROWS if r.usage_date.month == month])
    session.commit()
    return session


ATTR = {"account": "usage_account_id", "service": "service", "region": "region", "usage_type": "usage_type",
        "charge_category": "charge_category", "provider": "provider"}


def _key(row, dimension):
    if dimension in ("team", "cost_center"):
        value = row.tags.get({"team": "team", "cost_center": "cost-center"}[dimension], "")
        return value or queries.UNTAGGED
    return getattr(row, ATTR[dimension])


def _expected(*, group_by, granularity, start, end, filters=None, metric="unblended_cost"):
    sums: dict = {}
    for row in ROWS:
        if not start <= row.usage_date <= end:
            continue
        if any(_key(row, d) not in v for d, v in (filters or {}).items()):
            continue
        period = {"day": row.usage_date, "month": row.usage_date.replace(day=1), "total": None}[granularity]
        key = (period, tuple(_key(row, d) for d in group_by))
        sums[key] = sums.get(key, Decimal(0)) + getattr(row, metric)
    return sums


@pytest.mark.parametrize("group_by, granularity, table", [
    (("service",), "month", "cost_summary_rollups"),
    (("account", "service"), "total", "cost_summary_rollups"),
    (("account", "region"), "day", "cost_daily_rollups"),
    (("team",), "total", "cost_team_daily_rollups"),
    (("account", "team"), "total", "cost_allocation_rollups"),
    (("usage_type", "charge_category"), "month", "cost_monthly_rollups"),
    (("usage_type",), "day", "cost_facts"),
    (("cost_center", "service"), "day", "cost_team_daily_rollups"),
    ((), "total", "cost_summary_rollups"),
    (("region",), "month", "cost_daily_rollups"),
])
def test_every_dimension_and_grain_equals_the_facts(loaded, group_by, granularity, table):
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-02-28", "group_by": group_by,
                               "granularity": granularity})
    result = queries.query_costs(loaded, actor=FINANCE, query=query)
    got = {(r.period, r.keys): r.amount for r in result.rows}
    assert got == _expected(group_by=group_by, granularity=granularity, start=query.start, end=query.end)
    assert result.table == table


def test_filters_narrow_and_untagged_is_an_explicit_bucket(loaded):
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-02-28", "group_by": ["team"],
                               "granularity": "total", "filters": {"account": ["222222222222"],
                                                                   "team": ["web", queries.UNTAGGED]}})
    got = {r.keys: r.amount for r in queries.query_costs(loaded, actor=FINANCE, query=query).rows}
    expected = _expected(group_by=("team",), granularity="total", start=query.start, end=query.end,
                         filters={"account": {"222222222222"}, "team": {"web", queries.UNTAGGED}})
    assert got == {k: v for (_, k), v in expected.items()} and (queries.UNTAGGED,) in got


def test_top_n_folds_the_rest_into_other_without_losing_a_cent(loaded):
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-01-31", "group_by": ["service"],
                               "granularity": "total", "top_n": 2, "metric": "amortized_cost"})
    result = queries.query_costs(loaded, actor=FINANCE, query=query)
    assert [r.keys[0] for r in result.rows][-1] == queries.OTHER and len(result.rows) == 3
    expected = _expected(group_by=(), granularity="total", start=query.start, end=query.end,
                         metric="amortized_cost")
    assert result.total == expected[(None, ())]


@pytest.mark.parametrize("granularity", ["total", "month"])
def test_top_n_applies_at_every_level_of_a_drill_down(loaded, granularity):
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-02-28", "granularity": granularity,
                               "group_by": ["account", "service", "usage_type"], "top_n": 1})
    result = queries.query_costs(loaded, actor=FINANCE, query=query)
    full = _expected(group_by=("account", "service", "usage_type"), granularity=granularity, start=query.start,
                     end=query.end)
    by_level: dict = {}
    for (_period, keys), amount in full.items():
        for level in (1, 2, 3):
            by_level[keys[:level]] = by_level.get(keys[:level], Decimal(0)) + amount

    def top(prefix):  # the largest child of a prefix over the whole range (ties: the first key)
        children = [k for k in by_level if len(k) == len(prefix) + 1 and k[:len(prefix)] == prefix]
        return min(children, key=lambda k: (-by_level[k], k))

    account = top(())
    service = top(account)
    usage_type = top(service)
    expected: dict = {}
    for (period, keys), amount in full.items():
        if keys[0] != account[0]:
            out = (queries.OTHER, "", "")
        elif keys[1] != service[1]:
            out = (account[0], queries.OTHER, "")
        elif keys[2] != usage_type[2]:
            out = (account[0], service[1], queries.OTHER)
        else:
            out = keys
        expected[(period, out)] = expected.get((period, out), Decimal(0)) + amount
    assert any(k[2] == queries.OTHER for _, k in expected) and any(k[0] == queries.OTHER for _, k in expected)
    assert {(r.period, r.keys): r.amount for r in result.rows} == expected
    assert result.total == sum(full.values())


def test_a_user_limited_to_some_accounts_never_reads_an_organisation_wide_rollup(loaded):
    from models import AwsProfile, ProfileGrant
    from tests.factories import make_user

    user = make_user(loaded, username="scoped", roles=("engineering",))
    profile = AwsProfile(name="web", account_id="222222222222", auth_type="keys", default_regions=["us-east-1"])
    loaded.add(profile)
    loaded.flush()
    loaded.add(ProfileGrant(user_id=user.id, profile_id=profile.id, can_run_jobs=False))
    loaded.commit()
    scoped = Actor(user_id=user.id, username="scoped", roles=frozenset({"engineering"}))
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-02-28", "group_by": ["team"],
                               "granularity": "total"})
    result = queries.query_costs(loaded, actor=scoped, query=query)
    assert result.table == "cost_allocation_rollups"
    expected = _expected(group_by=("team",), granularity="total", start=query.start, end=query.end,
                         filters={"account": {"222222222222"}})
    assert {r.keys: r.amount for r in result.rows} == {k: v for (_, k), v in expected.items()}


def test_partial_months_never_come_from_the_monthly_rollup(loaded):
    query = queries.parse_query({"start": "2026-01-05", "end": "2026-02-28", "group_by": ["usage_type"]})
    result = queries.query_costs(loaded, actor=FINANCE, query=query)
    assert result.table == "cost_facts"
    assert {(r.period, r.keys): r.amount for r in result.rows} == _expected(
        group_by=("usage_type",), granularity="month", start=query.start, end=query.end)


def test_cached_answers_are_replaced_after_an_import(loaded):
    cache.configure(None)
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-01-31", "granularity": "total"})
    first = queries.query_costs(loaded, actor=FINANCE, query=query)
    assert queries.query_costs(loaded, actor=FINANCE, query=query).total == first.total
    ingest.replace_period(loaded, source="test", billing_period=dt.date(2026, 1, 1),
                          rows=[fact(dt.date(2026, 1, 3), "111111111111", "Amazon EC2", "1")])
    assert queries.query_costs(loaded, actor=FINANCE, query=query).total == Decimal(1)


def test_a_cached_answer_takes_no_transaction_and_another_session_sees_an_import_once_committed(loaded):
    cache.configure(None)
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-01-31", "granularity": "total"})
    first = queries.query_costs(loaded, actor=FINANCE, query=query)
    loaded.commit()
    with database.session_scope() as reader:
        assert queries.query_costs(reader, actor=FINANCE, query=query).total == first.total
        # On PostgreSQL the data version is read in autocommit: the cached answer began nothing.
        assert reader.in_transaction() == (reader.get_bind().dialect.name != "postgresql")
    ingest.replace_period(loaded, source="test", billing_period=dt.date(2026, 1, 1),
                          rows=[fact(dt.date(2026, 1, 3), "111111111111", "Amazon EC2", "2")])
    with database.session_scope() as reader:
        assert queries.query_costs(reader, actor=FINANCE, query=query).total == first.total  # not committed yet
    loaded.commit()
    with database.session_scope() as reader:
        assert queries.query_costs(reader, actor=FINANCE, query=query).total == Decimal(2)


@pytest.mark.parametrize("values, field", [
    ({"start": "2026-01-01", "end": "2026-01-31", "group_by": ["color"]}, "group_by"),
    ({"start": "2026-01-01", "end": "2026-01-31", "group_by": ["service", "service"]}, "repeat"),
    ({"start": "2026-01-01", "end": "2026-01-31", "granularity": "hour"}, "granularity"),
    ({"start": "2026-01-01", "end": "2026-01-31", "top_n": 0}, "top_n"),
    ({"start": "2026-01-01", "end": "2026-01-31", "filters": {"service": ["x"] * 501}}, "500"),
])
def test_bad_queries_are_refused_naming_the_field(values, field):
    with pytest.raises(InvalidInput, match=field):
        queries.parse_query(values)


def test_a_large_load_refreshes_statistics_inside_its_transaction(session, monkeypatch):
    monkeypatch.setattr(ingest, "ANALYZE_AFTER_ROWS", 1)  # as if the month were a big one
    batch = ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1),
                                  rows=[r for r in ROWS if r.usage_date.month == 1])
    session.commit()
    query = queries.parse_query({"start": "2026-01-01", "end": "2026-01-31", "granularity": "total"})
    result = queries.query_costs(session, actor=FINANCE, query=query)
    assert batch.row_count == len(ROWS) // 2
    assert result.total == _expected(group_by=(), granularity="total", start=query.start, end=query.end)[(None, ())]
