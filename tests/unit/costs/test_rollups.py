"""Rollups summed in memory as facts load are exactly those the SQL rebuild makes from the stored facts."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import select

from models import CostFact
from services.costs import ingest, rollups
from services.costs.ingest import FactRow

PERIOD = dt.date(2026, 2, 1)


def _varied_rows(count: int, *, seed: int = 11) -> list[FactRow]:
    """Rows over every rollup key: payers, providers, accounts, services, regions, usage types,
    charge categories, currencies, allocation tags (and none), credits below zero."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        payer = rng.choice(["999999999999", "888888888888"])
        provider, currency = ("Microsoft", "EUR") if payer == "888888888888" and rng.random() < 0.3 else ("AWS", "USD")
        tags = rng.choice([{}, {"team": "web"}, {"Team": "data", "CostCenter": "CC-1", "env": "prod"},
                           {"owner_team": "ml", "cost-center": "CC-2", "Environment": "dev"}])
        units = rng.randrange(-5 * 10**11, 10**15)  # in 1e-11: money at its full scale, credits too

        def money(factor: int, units: int = units) -> Decimal:
            return Decimal(units * factor).scaleb(-11)

        rows.append(FactRow(
            usage_date=PERIOD + dt.timedelta(days=rng.randrange(28)),
            usage_account_id=str(100000000000 + rng.randrange(6)), payer_account_id=payer, provider=provider,
            service=rng.choice(["Amazon EC2", "Amazon S3", "AWS Lambda", "Virtual Machines"]),
            region=rng.choice(["us-east-1", "eu-west-1", ""]), usage_type=f"Usage-{rng.randrange(5)}",
            charge_category=rng.choice(["Usage", "Usage", "Tax", "Credit"]), tags=tags, currency=currency,
            unblended_cost=money(1), amortized_cost=money(2), net_cost=money(3), list_cost=money(4),
            usage_quantity=Decimal(rng.randrange(1, 100)),
        ))
    return rows


def _rollup_contents(session) -> dict[str, list[tuple[object, ...]]]:
    contents = {}
    for rollup in rollups.ROLLUPS:
        model = rollup.model
        columns = [c for c in model.__table__.columns if c.name != "id"]
        contents[model.__tablename__] = sorted(
            tuple(row) for row in session.execute(select(*columns).where(model.billing_period == PERIOD)))
    return contents


@pytest.fixture()
def summed_in_memory(monkeypatch):
    """Count the loads whose rollups were summed in memory; small chunks and folds, so that both happen often."""
    calls = []
    write = rollups.PeriodSums.write

    def counting_write(self, session, *, billing_period, **given):
        calls.append(billing_period)
        write(self, session, billing_period=billing_period, **given)

    monkeypatch.setattr(rollups.PeriodSums, "write", counting_write)
    monkeypatch.setattr(rollups.PeriodSums, "FOLD_ROWS", 700)
    monkeypatch.setattr(ingest, "CHUNK_SIZE", 300)
    monkeypatch.setattr(ingest, "COPY_CHUNK_SIZE", 300)
    return calls


def test_rollups_summed_on_the_way_in_equal_the_sql_rebuild(session, summed_in_memory):
    ingest.replace_period(session, source="focus", billing_period=PERIOD, rows=_varied_rows(3_000))
    assert summed_in_memory == [PERIOD]
    in_memory = _rollup_contents(session)
    assert all(in_memory.values())

    rollups.rebuild_period(session, billing_period=PERIOD)

    assert _rollup_contents(session) == in_memory
    # Re-importing the month (the open month, every day) takes the same path and changes nothing.
    ingest.replace_period(session, source="focus", billing_period=PERIOD, rows=_varied_rows(3_000))
    assert summed_in_memory == [PERIOD, PERIOD] and _rollup_contents(session) == in_memory


def test_a_month_shared_with_another_source_is_rebuilt_from_the_stored_facts(session, summed_in_memory):
    ingest.replace_period(session, source="cost_explorer", billing_period=PERIOD, rows=_varied_rows(200, seed=1))
    ingest.replace_period(session, source="focus", billing_period=PERIOD, rows=_varied_rows(500, seed=2))
    # The second load is not alone in its month: its rollups come from the SQL rebuild, which
    # counts FOCUS (more detailed) and not Cost Explorer for the same payers.
    assert summed_in_memory == [PERIOD]
    in_sql = _rollup_contents(session)
    ingest.replace_period(session, source="cost_explorer", billing_period=PERIOD, rows=[])
    ingest.replace_period(session, source="focus", billing_period=PERIOD, rows=_varied_rows(500, seed=2))
    assert _rollup_contents(session) == in_sql


def test_money_finer_than_the_column_is_rounded_as_postgresql_stores_it_on_every_database(
        session, summed_in_memory):
    rows = _varied_rows(50)
    finer = {7: ("0.123456789025", "0.12345678903"), 8: ("-0.123456789025", "-0.12345678903"),
             9: ("2.000000000004999", "2.00000000000")}
    for at, (given, _) in finer.items():
        rows[at] = FactRow(**{**{f: getattr(rows[at], f) for f in FactRow.__dataclass_fields__},
                              "unblended_cost": Decimal(given), "usage_quantity": Decimal("1.0000000000000005")})
    ingest.replace_period(session, source="focus", billing_period=PERIOD, rows=rows)
    assert summed_in_memory == [PERIOD]
    lines = {str(v): q for v, q in session.execute(select(CostFact.unblended_cost, CostFact.usage_quantity))}
    for given, rounded in finer.values():
        assert rounded in lines and given not in lines
        if session.bind.dialect.name == "postgresql":  # SQLite keeps quantities as floats
            assert lines[rounded] == Decimal("1.000000000000001")
    in_memory = _rollup_contents(session)
    rollups.rebuild_period(session, billing_period=PERIOD)
    assert _rollup_contents(session) == in_memory
