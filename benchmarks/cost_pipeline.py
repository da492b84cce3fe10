"""Import and query speed of the cost pipeline, printed as figures (never asserted).

Generates resource-level daily line items for 12 months (accounts with their own services and
regions, usage types, resources and allocation tags), writes them as monthly FOCUS CSV exports
(gzip), imports each file through the importer (reading and validating every cell, facts and
rollups committed per billing period), then times the dashboard queries through the cost service
with the cache off and warm.

    python benchmarks/cost_pipeline.py --database postgresql --rows 10000000 --ingest-rows 1000000
    python benchmarks/cost_pipeline.py --database sqlite --rows 1000000

--ingest-rows adds a month made in Python and loaded straight through the ingest service, as the
Cost Explorer collector and the demo loader do.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import gzip
import json
import random
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

from dashapp.cli import migrate
from services import audit, crypto, database
from services.costs import cache, ingest, queries
from services.costs.ingest import FactRow
from services.crypto import Keyring
from services.identity.permissions import Actor
from services.imports import pipeline

SERVICES = [(f"Service {i:02d}", 1.0 / (i + 1) ** 1.1) for i in range(40)]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "global"]
TEAMS = ["platform", "data", "payments", "web", "ml", "security", ""]
ACTOR = Actor(user_id=None, username="bench", roles=frozenset({"finance"}))


ENVIRONMENTS = ["prod", "staging", "dev"]


def _estate(rng: random.Random, accounts: int) -> list[tuple[str, list[str], list[float], list[str], dict[str, str]]]:
    """Each account as organisations have them: its own handful of services (the big ones more
    often) in one to three regions, owned by one team, in one environment."""
    names = [name for name, _ in SERVICES]
    weights = [w for _, w in SERVICES]
    estate = []
    for i in range(accounts):
        chosen = sorted(set(rng.choices(range(len(names)), weights, k=rng.randrange(6, 18))))
        team = TEAMS[i % len(TEAMS)]
        tags = {"team": team, "cost-center": f"CC-{100 + TEAMS.index(team)}",
                "environment": ENVIRONMENTS[i % len(ENVIRONMENTS)]} if team else {}
        estate.append((f"{100000000000 + i}", [names[c] for c in chosen], [weights[c] for c in chosen],
                       rng.sample(REGIONS[:-1], rng.randrange(1, 4)) + ["global"], tags))
    return estate


def generate(*, rows: int, accounts: int, months: int, start: dt.date,
             seed: int = 7) -> Iterator[tuple[dt.date, Iterator[FactRow]]]:
    """Yield (billing period, its rows) with ``rows`` resource-level line items over the months."""
    rng = random.Random(seed)
    estate = _estate(rng, accounts)
    per_month = rows // months
    for m in range(months):
        period = dt.date(start.year + (start.month - 1 + m) // 12, (start.month - 1 + m) % 12 + 1, 1)
        days = ((period.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - period).days

        def month_rows(period: dt.date = period, days: int = days) -> Iterator[FactRow]:
            for i in range(per_month):
                account, services, weights, regions, tags = estate[rng.randrange(len(estate))]
                service = rng.choices(services, weights)[0]
                region = regions[rng.randrange(len(regions))]
                cost = Decimal(rng.randrange(1, 10_000_000)) / Decimal(100_000)
                resource = rng.randrange(60)
                yield FactRow(usage_date=period + dt.timedelta(days=i % days),
                              usage_account_id=account, service=service,
                              unblended_cost=cost, amortized_cost=cost, net_cost=cost, list_cost=cost,
                              payer_account_id="999999999999", region=region,
                              usage_type=f"{region[:2].upper()}-Usage-{resource % 12}",
                              resource_id=f"arn:aws:{service[-2:]}:{region}:{account}:resource/r-{resource:04d}",
                              tags=tags if rng.random() < 0.9 else {},
                              usage_quantity=Decimal(rng.randrange(1, 1000)), usage_unit="Hrs")

        yield period, month_rows()


FOCUS_COLUMNS = ["BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart", "ChargeCategory",
                 "ChargePeriodStart", "EffectiveCost", "ListCost", "ProviderName", "ServiceName", "SubAccountId",
                 "RegionId", "x_UsageType", "ResourceId", "Tags", "ConsumedQuantity", "ConsumedUnit"]


def write_focus_file(path: Path, period: dt.date, rows: Iterator[FactRow]) -> int:
    """Write one month as a FOCUS 1.0 CSV (gzip), the way an export arrives; return its rows."""
    billing_period = period.isoformat() + "T00:00:00Z"
    written = 0
    with gzip.open(path, "wt", newline="", encoding="utf-8", compresslevel=1) as fh:
        writer = csv.writer(fh)
        writer.writerow(FOCUS_COLUMNS)
        for row in rows:
            cost = str(row.unblended_cost)
            writer.writerow([cost, row.payer_account_id, "USD", billing_period, "Usage",
                             row.usage_date.isoformat() + "T00:00:00Z", cost, cost, "AWS", row.service,
                             row.usage_account_id, row.region, row.usage_type, row.resource_id,
                             json.dumps(row.tags) if row.tags else "", str(row.usage_quantity), row.usage_unit])
            written += 1
    return written


class Stopwatch:
    """Adds up the time spent inside an iterator (here: making the rows the import consumes)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, items: Iterator[FactRow]) -> Iterator[FactRow]:
        while True:
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                self.seconds += time.perf_counter() - started
            yield item


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)


def time_query(values: dict[str, object], *, repeats: int) -> float:
    query = queries.parse_query(values)
    samples = []
    for _ in range(repeats):
        with database.session_scope() as session:
            started = time.perf_counter()
            queries.query_costs(session, actor=ACTOR, query=query)
            samples.append((time.perf_counter() - started) * 1000)
    return p95(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="sqlite")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-database", action="store_true", help="Leave the database for a closer look.")
    parser.add_argument("--ingest-rows", type=int, default=0,
                        help="Also load this many rows made in Python straight through the ingest service "
                             "(one more month), as the collectors do.")
    args = parser.parse_args()

    if args.database == "postgresql":
        name = f"finops_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    try:
        migrate(url)
        database.configure(url)
        crypto.configure(Keyring.generate_spec())
        audit.configure("benchmark-audit-key-0123")
        start = dt.date(2025, 1, 1)
        print(f"database: {args.database}; rows: {args.rows:,}; accounts: {args.accounts}; months: {args.months}")

        folder = Path(tempfile.mkdtemp())
        started = time.perf_counter()
        files = []
        for period, rows in generate(rows=args.rows, accounts=args.accounts, months=args.months, start=start):
            path = folder / f"focus-{period:%Y-%m}.csv.gz"
            files.append((path, write_focus_file(path, period, rows)))
        size = sum(path.stat().st_size for path, _ in files) / 2**20
        print(f"writing {len(files)} monthly FOCUS files (CSV, gzip; not timed below): "
              f"{time.perf_counter() - started:.1f} s, {size:,.0f} MiB")

        imported, started = 0, time.perf_counter()
        for path, _ in files:
            with database.session_scope() as session:
                imported += pipeline.import_file(session, path=path).rows
            path.unlink()
        seconds = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"import to queryable (read, validate, facts and rollups committed, month by month): {imported:,} rows "
              f"in {seconds:.1f} s = {imported / seconds:,.0f} rows/s; process peak memory {peak_mib:,.0f} MiB")

        if args.ingest_rows:
            generating = Stopwatch()
            period, rows = next(generate(rows=args.ingest_rows, accounts=args.accounts, months=1,
                                         start=dt.date(2026, 1, 1), seed=8))
            started = time.perf_counter()
            with database.session_scope() as session:
                loaded = ingest.replace_period(session, source="benchmark", billing_period=period,
                                               rows=generating.timed(rows)).row_count
            seconds = time.perf_counter() - started
            print(f"rows made in Python straight into the ingest service (as the collectors load): {loaded:,} rows "
                  f"in {seconds:.1f} s = {loaded / seconds:,.0f} rows/s, of which {generating.seconds:.1f} s "
                  f"making the rows")
        if args.database == "postgresql":
            # What autovacuum would do soon after a big load anyway; done now, so that it does not
            # run during (and distort) the query timings.
            with database.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))

        end = dt.date(2025, 12, 31)
        accounts = [f"{100000000000 + i}" for i in range(20)]
        queries = {
            "12-month monthly trend, 20 accounts": {
                "start": start, "end": end, "granularity": "month", "filters": {"account": accounts}},
            "top-10 services of a month": {
                "start": dt.date(2025, 6, 1), "end": dt.date(2025, 6, 30), "granularity": "total",
                "group_by": ["service"], "top_n": 10},
            "90-day daily series of one service by team": {
                "start": dt.date(2025, 9, 1), "end": dt.date(2025, 11, 29), "granularity": "day",
                "group_by": ["team"], "filters": {"service": ["Service 03"]}},
            "one-month account > service > usage type (top-N + Other)": {
                "start": dt.date(2025, 6, 1), "end": dt.date(2025, 6, 30), "granularity": "total",
                "group_by": ["account", "service", "usage_type"], "top_n": 10},
        }
        gc.freeze()  # as each web worker does once it has built the app (dashapp.cli)
        cache.configure(None, enabled=False)
        for label, values in queries.items():
            print(f"query p95, cache off: {time_query(values, repeats=args.repeats):7.2f} ms  {label}")
        cache.configure(None)
        for label, values in queries.items():
            time_query(values, repeats=1)
            print(f"query p95, cache warm: {time_query(values, repeats=args.repeats):6.2f} ms  {label}")
    finally:
        database.get_engine().dispose()
        if args.keep_database:
            print(f"database kept: {url}")
        elif args.database == "postgresql":
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
