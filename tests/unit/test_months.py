"""Month arithmetic: first and last days, and whole months forwards and back across years."""

from __future__ import annotations

import datetime as dt

import pytest

from services.months import add_months, month_end, month_start


@pytest.mark.parametrize(("day", "first", "last"), [
    (dt.date(2025, 3, 10), dt.date(2025, 3, 1), dt.date(2025, 3, 31)),
    (dt.date(2025, 2, 1), dt.date(2025, 2, 1), dt.date(2025, 2, 28)),
    (dt.date(2024, 2, 29), dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
    (dt.date(2025, 4, 30), dt.date(2025, 4, 1), dt.date(2025, 4, 30)),
    (dt.date(2025, 12, 31), dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
])
def test_a_month_starts_on_its_first_and_ends_on_its_last_day(day, first, last):
    assert (month_start(day), month_end(day)) == (first, last)


@pytest.mark.parametrize(("day", "count", "expected"), [
    (dt.date(2025, 3, 1), 0, dt.date(2025, 3, 1)),
    (dt.date(2025, 3, 31), 1, dt.date(2025, 4, 1)),
    (dt.date(2025, 3, 10), -1, dt.date(2025, 2, 1)),
    (dt.date(2025, 1, 15), -1, dt.date(2024, 12, 1)),
    (dt.date(2025, 12, 1), 1, dt.date(2026, 1, 1)),
    (dt.date(2025, 3, 1), -13, dt.date(2024, 2, 1)),
    (dt.date(2025, 3, 1), -26, dt.date(2023, 1, 1)),
    (dt.date(2025, 11, 30), 14, dt.date(2027, 1, 1)),
])
def test_adding_months_lands_on_the_first_of_the_month_across_years(day, count, expected):
    assert add_months(day, count) == expected


def test_adding_and_taking_away_the_same_months_is_the_month_start():
    day = dt.date(2024, 8, 17)
    assert all(add_months(add_months(day, n), -n) == month_start(day) for n in range(-30, 31))
