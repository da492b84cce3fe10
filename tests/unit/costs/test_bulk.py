"""Bulk writes (exact values, refused when they do not fit, on both databases) and the prefetching
thread: items in order, its errors raised to the consumer, stopped on leaving."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import CostSummaryRollup
from models.types import MONEY_PRECISION, MONEY_SCALE
from services.costs import bulk
from services.costs.rollups import MONEY_COLUMNS


def test_items_come_in_order_made_in_another_thread():
    made_in = []

    def items():
        for i in range(10):
            made_in.append(threading.current_thread().name)
            yield i

    with bulk.Prefetched(items()) as prefetched:
        assert list(prefetched) == list(range(10))
    assert set(made_in) == {"bulk-prefetch"}


def test_an_error_while_making_items_is_raised_to_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        raise ValueError("bad row 2")

    seen = []
    with pytest.raises(ValueError, match="bad row 2"), bulk.Prefetched(items()) as prefetched:
        seen.extend(prefetched)
    assert seen == [1]


def test_leaving_early_stops_the_thread_and_closes_the_items():
    closed = threading.Event()

    def items():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with bulk.Prefetched(items(), depth=2) as prefetched:
        for item in prefetched:
            if item == 3:
                break
    assert closed.is_set()
    assert "bulk-prefetch" not in {thread.name for thread in threading.enumerate()}


def test_the_thread_starts_making_items_before_the_consumer_asks():
    started = threading.Event()

    def items():
        started.set()
        yield 1

    with bulk.Prefetched(items()) as prefetched:
        assert started.wait(timeout=10)  # the consumer may do other work meanwhile
        assert list(prefetched) == [1]


def _summary_rows(**money):
    import pyarrow as pa

    count = len(next(iter(money.values())))
    return pa.table({
        "billing_period": pa.array([dt.date(2026, 3, 1)] * count, type=pa.date32()),
        "provider": ["AWS"] * count, "usage_account_id": [f"1000000000{i:02d}" for i in range(count)],
        "service": ["Amazon EC2"] * count, "service_category": ["Compute"] * count, "currency": ["USD"] * count,
        **money,
        "line_count": pa.array(range(count), type=pa.int64()),
    })


def test_a_bulk_write_stores_every_value_exactly_on_both_databases(session):
    import pyarrow as pa

    values = [Decimal("-0.00000000001"), Decimal("0"), Decimal("-123456789012345678901234567.12345678901"),
              Decimal("99999999999999999999999999.99999999999"), Decimal("-10000.5"), Decimal("1E+20")]
    money = pa.array(values, type=pa.decimal128(MONEY_PRECISION, MONEY_SCALE))
    table = _summary_rows(**{c: money for c in MONEY_COLUMNS})
    bulk.write_table(session.connection(), CostSummaryRollup.__tablename__, table)
    stored = session.execute(select(CostSummaryRollup.usage_account_id, CostSummaryRollup.list_cost,
                                    CostSummaryRollup.line_count, CostSummaryRollup.billing_period)
                             .order_by(CostSummaryRollup.usage_account_id)).all()
    assert [(row[1], row[2]) for row in stored] == list(zip(values, range(len(values)), strict=True))
    assert {row[3] for row in stored} == {dt.date(2026, 3, 1)}


def test_a_value_finer_than_its_column_is_refused_and_nothing_is_written(session):
    import pyarrow as pa

    finer = pa.array([Decimal("1.5"), Decimal("0.123456789012")], type=pa.decimal128(MONEY_PRECISION, 12))
    table = _summary_rows(**{c: finer for c in MONEY_COLUMNS})
    with pytest.raises(pa.ArrowInvalid):
        bulk.write_table(session.connection(), CostSummaryRollup.__tablename__, table)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(CostSummaryRollup)) == 0


def test_columns_other_than_the_copy_names_are_refused(session):
    if session.bind.dialect.name != "postgresql":
        pytest.skip("a COPY is PostgreSQL's")
    with bulk.copy_writer(session.connection(), CostSummaryRollup.__tablename__, ["provider", "service"]) as write:
        import pyarrow as pa

        with pytest.raises(ValueError, match="columns"):
            write(pa.table({"service": ["S3"], "provider": ["AWS"]}))
        write(pa.table({"provider": ["AWS"], "service": ["S3"]}).slice(0, 0))


def test_a_column_type_with_no_bulk_form_is_named():
    with pytest.raises(TypeError, match="no binary COPY form"):
        bulk.arrow_schema("users", ["created_at"])
