"""The cost service's figures equal sums computed independently from the facts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from models import AwsProfile, CostDailyRollup, CostFact, ProfileGrant
from models.types import money_sum
from services.costs import ingest, queries
from services.errors import InvalidInput
from services.identity.permissions import Actor
from tests.factories import fact, make_user

TODAY = dt.date(2026, 3, 18)
FINANCE = Actor(user_id=None, username="fin", roles=frozenset({"finance"}))


def _load(session, rows_by_period):
    for period, rows in rows_by_period.items():
        ingest.replace_period(session, source="test", billing_period=period, rows=rows)


@pytest.fixture()
def loaded(session):
    feb = [fact(dt.date(2026, 2, d), acct, svc, f"{d}.{acct[-1]}1234567891")
           for d in range(1, 29) for acct in ("111111111111", "222222222222")
           for svc in ("Amazon EC2", "Amazon S3")]
    mar = [fact(dt.date(2026, 3, d), acct, svc, f"{2 * d}.00000000001")
           for d in range(1, 19) for acct in ("111111111111", "222222222222")
           for svc in ("Amazon EC2", "Amazon S3", "AWS Lambda")]
    _load(session, {dt.date(2026, 2, 1): feb, dt.date(2026, 3, 1): mar})
    session.commit()
    return session


def _facts_sum(session, *, start, end, accounts=None, metric="unblended_cost"):
    values = session.scalars(
        select(getattr(CostFact, metric)).where(CostFact.usage_date >= start, CostFact.usage_date <= end)
        .where(CostFact.usage_account_id.in_(accounts) if accounts else True)
    ).all()
    return sum(values, Decimal(0))


@pytest.mark.parametrize("metric", ["unblended_cost", "amortized_cost", "net_cost"])
def test_overview_totals_equal_the_facts_to_the_last_decimal(loaded, metric):
    f = queries.parse_filter(start="2026-02-10", end="2026-03-18", metric=metric)
    data = queries.get_overview(loaded, actor=FINANCE, cost_filter=f, today=TODAY)
    expected = _facts_sum(loaded, start=f.start, end=f.end, metric=metric)
    assert data.total == expected
    assert sum(v for _, v in data.top_services) == expected
    assert sum(v for *_, v in data.by_account) == expected


def test_kpis_match_independent_sums(loaded):
    f = queries.parse_filter(start="2026-03-01", end="2026-03-18")
    kpis = queries.get_overview(loaded, actor=FINANCE, cost_filter=f, today=TODAY).kpis
    assert kpis.month_to_date == _facts_sum(loaded, start=dt.date(2026, 3, 1), end=TODAY)
    assert kpis.last_month_total == _facts_sum(loaded, start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28))
    same = _facts_sum(loaded, start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 18))
    assert kpis.last_month_same_days == same
    # booked up to yesterday (today's costs are still arriving), then the last week's daily rate
    # over today and the 13 days after it (this data holds usage only, no one-off charges)
    booked = _facts_sum(loaded, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 17))
    recent = _facts_sum(loaded, start=dt.date(2026, 3, 11), end=dt.date(2026, 3, 17))
    expected_forecast = booked + recent / 7 * 14
    assert abs(kpis.forecast_month_end - expected_forecast) < Decimal("0.01")
    assert kpis.forecast is not None and kpis.forecast.low <= kpis.forecast_month_end <= kpis.forecast.high


def test_account_filter_narrows_every_figure(loaded):
    f = queries.parse_filter(start="2026-02-01", end="2026-03-18", account_ids=("222222222222",))
    data = queries.get_overview(loaded, actor=FINANCE, cost_filter=f, today=TODAY)
    assert [a for a, *_ in data.by_account] == ["222222222222"]
    assert data.total == _facts_sum(loaded, start=f.start, end=f.end, accounts=["222222222222"])


def test_reimporting_a_period_replaces_it(loaded):
    rows = [fact(dt.date(2026, 3, 1), "111111111111", "Amazon EC2", "5")]
    ingest.replace_period(loaded, source="test", billing_period=dt.date(2026, 3, 1), rows=rows)
    total = loaded.scalar(select(money_sum(CostDailyRollup.unblended_cost))
                          .where(CostDailyRollup.billing_period == dt.date(2026, 3, 1)))
    assert total == Decimal("5")


def test_money_survives_the_database_exactly(session):
    amount = "0.00000080000"
    ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1),
                          rows=[fact(dt.date(2026, 1, 5), "1", "S", amount)] * 3)
    stored = session.scalar(select(money_sum(CostFact.unblended_cost)))
    assert stored == Decimal("0.00000240000")


def test_row_outside_its_billing_period_is_refused(session):
    with pytest.raises(ValueError, match="does not belong"):
        ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1),
                              rows=[fact(dt.date(2026, 2, 1), "1", "S", "1")])


def test_engineer_sees_only_granted_accounts(loaded):
    user = make_user(loaded, roles=("engineering",))
    profile = AwsProfile(name="team-a", account_id="111111111111")
    loaded.add(profile)
    loaded.flush()
    loaded.add(ProfileGrant(user_id=user.id, profile_id=profile.id))
    loaded.flush()
    engineer = Actor(user_id=user.id, username=user.username, roles=frozenset({"engineering"}))
    f = queries.parse_filter(start="2026-02-01", end="2026-03-18", account_ids=("222222222222",))
    data = queries.get_overview(loaded, actor=engineer, cost_filter=f, today=TODAY)
    assert data.total == 0 and data.by_account == []
    everything = queries.get_overview(loaded, actor=engineer, cost_filter=queries.parse_filter(
        start="2026-02-01", end="2026-03-18"), today=TODAY)
    assert [a for a, *_ in everything.by_account] == ["111111111111"]


@pytest.mark.parametrize("values, message", [
    ({"start": "2026-03-10", "end": "2026-03-01"}, "before the start"),
    ({"start": "not a date", "end": "2026-03-01"}, "start"),
    ({"start": "2020-01-01", "end": "2026-03-01"}, "three years"),
    ({"start": "2026-03-01", "end": "2026-03-02", "metric": "drop table"}, "metric"),
])
def test_bad_filter_is_refused_with_a_clear_message(values, message):
    with pytest.raises(InvalidInput, match=message):
        queries.parse_filter(**values)


def test_top_n_keeps_the_rest_as_other():
    rows = [(f"s{i}", Decimal(i)) for i in range(1, 15)]
    top = queries.top_n(rows, 10)
    assert len(top) == 11 and top[-1] == ("Other", Decimal(1 + 2 + 3 + 4))
    assert sum(v for _, v in top) == sum(v for _, v in rows)


def test_every_overview_view_is_audited_with_its_filter(loaded):
    from models import AuditLog

    f = queries.parse_filter(start="2026-03-01", end="2026-03-18", account_ids=("111111111111",))
    queries.get_overview(loaded, actor=FINANCE, cost_filter=f, today=TODAY)
    row = loaded.scalars(select(AuditLog).where(AuditLog.action == "costs.view")).one()
    assert row.actor_name == "fin" and row.details["accounts"] == ["111111111111"]


def test_an_accounts_month_counts_from_its_most_detailed_source_only(session):
    from services.costs import rollups

    day = dt.date(2026, 3, 2)
    ingest.replace_period(session, source="cost_explorer", billing_period=dt.date(2026, 3, 1),
                          rows=[fact(day, "111111111111", "Amazon EC2", "100")])
    ingest.replace_period(session, source="focus", billing_period=dt.date(2026, 3, 1),
                          rows=[fact(day, "111111111111", "Amazon EC2", "98.5")])
    ingest.replace_period(session, source="demo", billing_period=dt.date(2026, 3, 1),
                          rows=[fact(day, "222222222222", "Amazon S3", "7", payer_account_id="555555555555")])
    total = session.scalar(select(money_sum(CostDailyRollup.unblended_cost)))
    assert total == Decimal("105.5")  # FOCUS for account 111..., demo for 222...: never both of one account
    assert rollups.counted_sources(session, billing_period=dt.date(2026, 3, 1)) == {
        "111111111111": {"focus"}, "222222222222": {"demo"}}


def test_awkward_text_survives_the_bulk_load_unchanged(session):
    awkward = {"team": "a\tb", "note": "line1\nline2", "path": "C:\\temp\\x", "quote": "it's \"x\"", "nul": "\\N"}
    row = fact(dt.date(2026, 1, 2), "111111111111", "Amazon EC2", "1.5", tags=awkward,
               resource_id="arn:aws:ec2:x\\y\tz", usage_type="", usage_quantity=None)
    ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1), rows=[row])
    stored = session.scalars(select(CostFact)).one()
    assert stored.tags == awkward and stored.resource_id == "arn:aws:ec2:x\\y\tz"
    assert stored.usage_quantity is None and stored.usage_type == "" and stored.team == "a\tb"
