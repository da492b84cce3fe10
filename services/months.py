"""Calendar months: a month's first and last day, and moving by whole months."""

from __future__ import annotations

import calendar
import datetime as dt


def month_start(day: dt.date) -> dt.date:
    """Return the first day of the day's month."""
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    """Return the last day of the day's month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(day: dt.date, count: int) -> dt.date:
    """Return the first day of the month ``count`` months after the day's (before it when negative)."""
    index = day.year * 12 + day.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)
