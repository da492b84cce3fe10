"""Links into the pages: the overview's date range from the address."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

import pytest

from callbacks.navigation import _linked_range

TODAY = dt.date(2026, 11, 27)


def test_a_link_sets_the_overview_range():
    assert _linked_range(parse_qs("start=2024-09-01&end=2024-10-31"), TODAY) == (dt.date(2024, 9, 1),
                                                                                 dt.date(2024, 10, 31))


@pytest.mark.parametrize("search", [
    "", "start=2024-09-01", "start=2024-10-01&end=2024-09-01", "start=x&end=y", "start=2020-01-01&end=2024-01-01",
    "start=2026-11-01&end=2026-12-31", "start=2024-09-01&end=2024-09-30%0A"])
def test_a_missing_or_wrong_range_falls_back_to_the_default(search):
    assert _linked_range(parse_qs(search), TODAY) is None
