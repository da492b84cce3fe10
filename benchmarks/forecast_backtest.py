"""Backtest the month-end forecast on the demo organisation.

For each of the last 12 complete months, the forecast made on days 7, 14 and 21 (from the costs
up to the day before) against the month's actual total: the mean absolute error in per cent,
overall and per day, for the forecast and for the old seven-day linear run rate side by side.
Target: at most 5 %. Prints figures; asserts nothing.

    python benchmarks/forecast_backtest.py [--seed N] [--metric unblended_cost]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services import months  # noqa: E402
from services.costs import forecast  # noqa: E402
from services.demo import generator  # noqa: E402

DAYS = (7, 14, 21)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=generator.DEFAULT_SEED)
    parser.add_argument("--metric", default="unblended_cost",
                        choices=["unblended_cost", "amortized_cost", "net_cost"])
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.datetime.now(dt.UTC).date())
    args = parser.parse_args()

    daily: dict[dt.date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for _period, rows in generator.generate_facts(today=args.today, seed=args.seed):
        for row in rows:
            daily[row.usage_date][row.charge_category] += getattr(row, args.metric)
    this_month = months.month_start(args.today)
    tested = [months.add_months(this_month, -k) for k in range(12, 0, -1)]
    errors: dict[str, dict[int, list[float]]] = {"forecast": defaultdict(list), "linear": defaultdict(list)}
    print(f"demo organisation, seed {args.seed}, {args.metric}, months {tested[0]:%Y-%m} to {tested[-1]:%Y-%m}")
    print(f"{'month':8} {'actual':>14} " + " ".join(f"{'day ' + str(d):>16}" for d in DAYS))
    for month in tested:
        actual = sum((sum(v.values(), Decimal(0)) for d, v in daily.items()
                      if month <= d <= months.month_end(month)), Decimal(0))
        cells = []
        for day in DAYS:
            as_of = month.replace(day=day)
            known = {d: v for d, v in daily.items() if d < as_of}
            ours = forecast.forecast_month(known, as_of=as_of).amount
            old = forecast.linear_forecast(known, as_of=as_of)
            errors["forecast"][day].append(forecast.error_pct(ours, actual))
            errors["linear"][day].append(forecast.error_pct(old, actual))
            cells.append(f"{forecast.error_pct(ours, actual):6.2f}% / {forecast.error_pct(old, actual):6.1f}%")
        print(f"{month:%Y-%m}  {actual:>14,.2f} " + " ".join(f"{c:>16}" for c in cells))
    print("mean absolute error (forecast / old linear):")
    for day in DAYS:
        print(f"  made on day {day:2}: {forecast.mean(errors['forecast'][day]):6.2f}% / "
              f"{forecast.mean(errors['linear'][day]):6.2f}%")
    ours_all = [e for v in errors["forecast"].values() for e in v]
    old_all = [e for v in errors["linear"].values() for e in v]
    print(f"  overall:          {forecast.mean(ours_all):6.2f}% / {forecast.mean(old_all):6.2f}%"
          "  (target: at most 5 %)")


if __name__ == "__main__":
    main()
