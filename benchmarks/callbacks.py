"""Server-side speed of the interactive callbacks (explorer and overview), printed as figures.

Builds (or reuses) the data set of ``benchmarks/cost_pipeline.py`` in its own PostgreSQL database,
runs the Flask app with production-like settings (PostgreSQL, the query cache in Redis), signs a
user in through the test client and posts real Dash callback requests to /_dash-update-component.
Each state is timed cold (cache flushed and a new data version) and warm, beside the same cost
queries run through SQLAlchemy without the app; the slowest cold and warm cases are profiled.

    python benchmarks/callbacks.py --rows 10000000 --redis-url redis://127.0.0.1:6379/11
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cost_pipeline import ACTOR, generate, write_focus_file  # noqa: E402
from dashapp.cli import migrate  # noqa: E402
from services import audit, crypto, database  # noqa: E402
from services.costs import explorer, ingest, queries  # noqa: E402
from services.crypto import Keyring  # noqa: E402
from services.imports import pipeline  # noqa: E402

TODAY = dt.date(2026, 1, 15)  # the data set covers 2025; ranges are fixed dates, so this only names the day
STATES: dict[str, str] = {
    "default view (12 months by account)": "?preset=custom&start=2025-01-01&end=2025-12-31",
    "group by account, one month": "?preset=custom&start=2025-06-01&end=2025-06-30&group_by=account",
    "group by usage type": "?preset=custom&start=2025-01-01&end=2025-12-31&group_by=usage_type",
    "3-level drill": "?preset=custom&start=2025-01-01&end=2025-12-31&group_by=usage_type"
                     "&drill=account%3D100000000001&drill=service%3DService+00&drill=region%3Dglobal",
    "daily grain over 3 months": "?preset=custom&start=2025-09-01&end=2025-11-30&granularity=day"
                                 "&group_by=service",
    "tag key (tag:team)": "?preset=custom&start=2025-01-01&end=2025-12-31&group_by=tag%3Ateam",
    "treemap by service": "?preset=custom&start=2025-01-01&end=2025-12-31&group_by=service&chart=treemap",
}


def p95(samples: list[float]) -> float:
    """Return the 95th percentile (the maximum under 20 samples)."""
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 20 else max(samples)


def build(url: str, admin_url: str, *, rows: int, rebuild: bool) -> None:
    """Create and fill the database unless it already holds cost facts."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if exists and rebuild:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        if not exists or rebuild:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    migrate(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        held = conn.execute(text("SELECT count(*) FROM cost_monthly_rollups")).scalar_one()
    engine.dispose()
    if held:
        print(f"reusing {name}")
        return
    folder, started = Path(tempfile.mkdtemp()), time.perf_counter()
    for period, items in generate(rows=rows, accounts=200, months=12, start=dt.date(2025, 1, 1)):
        path = folder / f"focus-{period:%Y-%m}.csv.gz"
        write_focus_file(path, period, items)
        with database.session_scope() as session:
            pipeline.import_file(session, path=path)
        path.unlink()
    with database.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"built {name}: {rows:,} rows in {time.perf_counter() - started:.0f} s")


def explorer_payload(current: str, today: dt.date) -> dict[str, object]:
    """The request Dash's front end sends when the explorer's page opens showing ``current``."""
    from callbacks import explorer as cb
    from layouts import ids

    state = explorer.parse_state(current)
    start, end = state.date_range(today)
    controls = {"explorer-preset.value": state.preset, "explorer-range.start_date": start.isoformat(),
                "explorer-range.end_date": end.isoformat(), "explorer-grain.value": state.granularity,
                "explorer-metric.value": state.metric, "explorer-group.value": state.group_by,
                "explorer-chart.value": state.chart, "explorer-compare.value": state.compare,
                "explorer-search.value": state.search}
    inputs = [(ids.EXPLORER_URL, "search", current), (ids.EXPLORER_STATE, "data", current),
              *((c, p, controls[f"{c}.{p}"]) for c, p in cb.CONTROLS),
              (ids.EXPLORER_GRAPH, "clickData", None), (ids.EXPLORER_GRAPH, "restyleData", None),
              (ids.EXPLORER_TABLE, "sort_by", []), (ids.EXPLORER_TABLE, "page_current", 0),
              (ids.EXPLORER_TABLE, "active_cell", None), (ids.EXPLORER_FILTER_ADD, "n_clicks", None)]
    states = [(ids.EXPLORER_URL, "pathname", "/explorer"), (ids.EXPLORER_KEYS, "data", None),
              (ids.EXPLORER_FILTER_DIMENSION, "value", None), (ids.EXPLORER_FILTER_VALUES, "value", None),
              (ids.EXPLORER_TABLE, "data", [])]
    outputs = [*cb.CONTROLS, (ids.EXPLORER_GRAPH, "figure"), (ids.EXPLORER_KEYS, "data"),
               (ids.EXPLORER_TABLE, "data"), (ids.EXPLORER_TABLE, "page_count"),
               (ids.EXPLORER_TABLE, "page_current"), (ids.EXPLORER_TABLE, "sort_by"),
               (ids.EXPLORER_TABLE, "columns"), (ids.EXPLORER_TABLE_TOTAL, "children"),
               (ids.EXPLORER_SUMMARY, "children"), (ids.EXPLORER_CRUMBS, "children"),
               (ids.EXPLORER_FILTERS, "children"), (ids.EXPLORER_CSV, "href"), (ids.EXPLORER_PDF, "href"),
               (ids.EXPLORER_STATE, "data"), (ids.EXPLORER_URL, "search"), (ids.EXPLORER_MESSAGE, "children"),
               (ids.SHARED_FILTERS, "data")]
    return {"output": ".." + "...".join(f"{c}.{p}" for c, p in outputs) + "..",
            "outputs": [{"id": c, "property": p} for c, p in outputs],
            "inputs": [{"id": c, "property": p, "value": v} for c, p, v in inputs],
            "state": [{"id": c, "property": p, "value": v} for c, p, v in states],
            "changedPropIds": [f"{ids.EXPLORER_URL}.search"]}


def overview_payload(start: str, end: str) -> dict[str, object]:
    """The request the overview page sends when its range changes."""
    outputs = [("overview-message", "children"), ("overview-kpis", "children"), ("overview-total", "children"),
               ("overview-trend", "figure"), ("overview-services", "figure"), ("overview-accounts-chart", "figure")]
    return {"output": ".." + "...".join(f"{c}.{p}" for c, p in outputs) + "..",
            "outputs": [{"id": c, "property": p} for c, p in outputs],
            "inputs": [{"id": "overview-range", "property": "start_date", "value": start},
                       {"id": "overview-range", "property": "end_date", "value": end},
                       {"id": "overview-accounts", "property": "value", "value": []},
                       {"id": "overview-metric", "property": "value", "value": "unblended_cost"}],
            "changedPropIds": ["overview-range.start_date"], "state": []}


def cost_queries(current: str) -> list[queries.CostQuery]:
    """The cost queries the explorer's service asks for a state (the plain-query baseline)."""
    state = explorer.parse_state(current)
    start, end = state.date_range(TODAY)
    base = {"start": start, "end": end, "metric": state.metric, "group_by": (state.group_by,),
            "filters": state.fixed()}
    asked = [queries.CostQuery.model_validate({**base, "granularity": state.granularity,
                                               "top_n": explorer.CHART_TOP_N}),
             queries.CostQuery.model_validate({**base, "granularity": "total"})]
    if state.compare:
        prev_start, prev_end = explorer.previous_period(start, end)
        asked.append(queries.CostQuery.model_validate({**base, "granularity": "total", "start": prev_start,
                                                       "end": prev_end}))
    return asked


_FLUSH: list[Callable[[], Any]] = []


def go_cold() -> None:
    """Flush the query cache and move to a new data version, as after an import."""
    for flush in _FLUSH:
        flush()
    with database.session_scope() as session:
        ingest.bump_data_version(session)


def sample(run: Callable[[], Any], *, repeats: int, cold: bool) -> list[float]:
    """Time ``run`` ``repeats`` times (ms), cold (before each run) or warm (after one run)."""
    if not cold:
        run()
    samples = []
    for _ in range(repeats):
        if cold:
            go_cold()
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def profile(label: str, run: Callable[[], Any], *, cold: bool) -> None:
    """Print the top functions (cumulative time) of one run."""
    if cold:
        go_cold()
    else:
        run()
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"(services|callbacks|layouts)/", 12)
    stats.sort_stats("tottime").print_stats(8)
    print(f"\n--- profile, {'cold' if cold else 'warm'}: {label}")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def main() -> None:
    """Build or reuse the data set, then print p50/p95 per state, cold and warm, and two profiles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database-name", default="bench_callbacks")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{args.database_name}"

    database.configure(url)
    crypto.configure(Keyring.generate_spec())
    audit.configure("benchmark-audit-key-0123")
    build(url, args.pg_admin_url, rows=args.rows, rebuild=args.rebuild)

    import redis

    from dashapp import create_app
    from dashapp.settings import Settings
    from tests.factories import make_user
    from tests.web import dash_headers, sign_in_and_enrol

    redis.Redis.from_url(args.redis_url).flushdb()
    settings = Settings(SECRET_KEY=secrets.token_hex(32), DATABASE_URL=url,  # type: ignore[call-arg]
                        ENCRYPTION_KEYS=Keyring.generate_spec(), AUDIT_HMAC_KEY="benchmark-audit-key-0123",
                        EMBEDDED=False, REDIS_URL=args.redis_url, CELERY_BROKER_URL=args.redis_url,
                        SESSION_COOKIE_SECURE=False,
                        INSTANCE_DIR=Path(tempfile.mkdtemp()), LOG_FORMAT="text", LOG_LEVEL="WARNING",
                        RATE_LIMIT_LOGIN="1000/m", RATE_LIMIT_API="100000/m")
    app = create_app(settings)
    client = app.test_client()
    username = f"bench{time.time_ns() % 10**8}"
    with database.session_scope() as session:
        make_user(session, username=username, roles=("finance",))
    sign_in_and_enrol(client, username)
    headers = dash_headers(client)
    _FLUSH.append(redis.Redis.from_url(args.redis_url).flushdb)

    def post(payload: dict[str, object]) -> Callable[[], Any]:
        def run() -> None:
            response = client.post("/_dash-update-component", json=payload, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return run

    def plain(asked: list[queries.CostQuery]) -> Callable[[], Any]:
        def run() -> None:
            with database.session_scope() as session:
                for query in asked:
                    queries.query_costs(session, actor=ACTOR, query=query)
        return run

    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]] = {
        label: (post(explorer_payload(state, explorer_today())), plain(cost_queries(state)))
        for label, state in STATES.items()}
    cases["overview (update_overview), 12 months"] = (post(overview_payload("2025-01-01", "2025-12-31")), None)
    print(f"{'case':44} {'cold p50':>9} {'cold p95':>9} {'warm p50':>9} {'warm p95':>9} {'query cold p95':>15}")
    worst: dict[bool, tuple[float, str]] = {True: (0.0, ""), False: (0.0, "")}
    for label, (run, baseline) in cases.items():
        cold = sample(run, repeats=args.repeats, cold=True)
        warm = sample(run, repeats=args.repeats, cold=False)
        base = f"{p95(sample(baseline, repeats=args.repeats, cold=True)):15.1f}" if baseline else f"{'-':>15}"
        print(f"{label:44} {statistics.median(cold):9.1f} {p95(cold):9.1f} {statistics.median(warm):9.1f} "
              f"{p95(warm):9.1f} {base}", flush=True)
        for is_cold, found in ((True, p95(cold)), (False, p95(warm))):
            if found > worst[is_cold][0]:
                worst[is_cold] = (found, label)
    for is_cold in (True, False):
        label = worst[is_cold][1]
        profile(label, cases[label][0], cold=is_cold)


def explorer_today() -> dt.date:
    """The day the app reads ranges against (fixed-date states do not depend on it)."""
    return dt.datetime.now(dt.UTC).date()


if __name__ == "__main__":
    main()
