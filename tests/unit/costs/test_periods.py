"""One rule for which rows a date range holds (their charge date), on every query path."""

from __future__ import annotations

import datetime as dt
import typing
from decimal import Decimal

import pytest

from services.costs import cache, queries
from services.identity.permissions import Actor
from services.imports import pipeline
from tests.unit.imports.test_importers import SAMPLE

FINANCE = Actor(user_id=None, username="fin", roles=frozenset({"finance"}))
#: Whole months, a month and a half, the last fortnight, the boundary day, and October alone: the
#: sample has one row charged on 30 September and billed in October.
RANGES = [("2024-09-01", "2024-09-30"), ("2024-09-01", "2024-10-31"), ("2024-09-15", "2024-09-30"),
          ("2024-09-30", "2024-09-30"), ("2024-10-01", "2024-10-31"), ("2024-08-01", "2024-10-31")]
GROUPINGS = [((), granularity) for granularity in ("day", "month", "total")] + [
    ((dimension,), granularity) for dimension in typing.get_args(queries.Dimension)
    for granularity in ("month", "total")]


@pytest.fixture()
def focus_sample(session):
    cache.configure(None)
    pipeline.import_file(session, path=SAMPLE)
    session.commit()
    return session


def _total(session, start, end, group_by, granularity):
    query = queries.parse_query({"start": start, "end": end, "group_by": group_by, "granularity": granularity})
    return queries.query_costs(session, actor=FINANCE, query=query).total


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_every_grouping_of_a_range_sums_to_the_same_total(focus_sample, start, end):
    totals = {(group_by, granularity): _total(focus_sample, start, end, group_by, granularity)
              for group_by, granularity in GROUPINGS}
    assert len(set(totals.values())) == 1, totals


def test_september_holds_the_row_charged_on_its_last_day_in_every_view(focus_sample):
    f = queries.parse_filter(start="2024-09-01", end="2024-09-30")
    overview = queries.get_overview(focus_sample, actor=FINANCE, cost_filter=f, today=dt.date(2024, 11, 5))
    assert overview.total == Decimal("20.52022672899")
    assert sum(v for _, v in overview.top_services) == overview.total
    assert sum(v for _, _, v in overview.by_account) == overview.total
