"""The month-end forecast: fees booked once are not daily spend, expected charges land on their day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.costs import forecast

D = Decimal


def _month(days: range, *, year: int = 2026, month: int = 3, usage: str = "100", extra=None):  # type: ignore[no-untyped-def]
    out = {}
    for day in days:
        date = dt.date(year, month, day)
        out[date] = {"Usage": D(usage), **(extra or {}).get(day, {})}
    return out


def _history(**extra):  # type: ignore[no-untyped-def]
    # February: usage every day, tax and support on the 1st; March so far the same
    february = _month(range(1, 29), month=2, extra={1: {"Tax": D("500"), "Support": D("300")}})
    march = _month(range(1, 7), extra={1: {"Tax": D("510"), "Support": D("300")}, **extra})
    return {**february, **march}


def test_a_fee_booked_on_the_first_is_not_projected_as_daily_spend():
    result = forecast.forecast_month(_history(), as_of=dt.date(2026, 3, 7))
    # booked: 6 days of usage + 810 of one-offs; then 25 days at 100 a day
    assert result.booked == D("1410") and result.one_off_booked == D("810")
    assert result.daily_rate == D("100") and result.days_left == 25
    assert result.amount == D("3910.00")
    assert forecast.linear_forecast(_history(), as_of=dt.date(2026, 3, 7)) > D("6500")  # the old method: +74 %


def test_a_charge_last_month_booked_later_in_the_month_is_expected_on_its_day():
    history = _history()
    history[dt.date(2026, 2, 28)]["Tax"] = D("40")  # a month-end tax, as real CUR data books it
    history[dt.date(2026, 3, 1)].pop("Tax")  # so this month's tax is not booked yet
    result = forecast.forecast_month(history, as_of=dt.date(2026, 3, 7))
    assert [(e.day, e.category, e.amount) for e in result.one_off_expected] == [
        (dt.date(2026, 3, 28), "Tax", D("40"))]  # on its day of the month (February's 28th)
    assert result.amount == D("600") + D("300") + D("40") + D("2500")


def test_the_range_comes_from_the_weeks_before_and_holds_the_forecast():
    history = _history()
    for day in range(1, 8):
        history[dt.date(2026, 2, 20 + day)]["Usage"] = D("80")  # a cheaper week before
    result = forecast.forecast_month(history, as_of=dt.date(2026, 3, 7))
    assert result.low < result.amount <= result.high


def test_aws_forecast_travels_beside_ours_untouched():
    aws = forecast.AwsForecast(mean=D("5000"), low=D("4800"), high=D("5300"), generated_at=None)
    result = forecast.forecast_month(_history(), as_of=dt.date(2026, 3, 7), aws=aws)
    assert result.aws == aws and result.amount == D("3910.00")


def test_an_empty_month_and_a_short_history_still_forecast():
    empty = forecast.forecast_month({}, as_of=dt.date(2026, 3, 1))
    assert empty.amount == D("0.00") and empty.days_left == 31
    short = forecast.forecast_month(_month(range(1, 4)), as_of=dt.date(2026, 3, 4))
    assert short.daily_rate == D("100") and short.amount == D("3100.00")
