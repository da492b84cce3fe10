"""Audit writes of concurrent overview views: throughput and latency of N writer threads.

Each writer thread repeats what an overview view does to the audit trail: open a transaction,
read (one small query, standing in for the rollup reads), append the ``costs.view`` audit row
with ``services.audit.record`` exactly as ``services.costs.queries.get_overview`` calls it, and
commit. The figures are views per second over all threads and the latency of one view (median
and 95th percentile, in milliseconds), for several thread counts, on a PostgreSQL database of its
own (created and dropped here). At the end the chain is sealed and verified, and the number of
rows checked against the number of views written.

Run: .venv/bin/python benchmarks/audit_contention.py [--threads 1,8,32] [--seconds 5]
(PostgreSQL from BENCH_PG_ADMIN_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashapp.cli import migrate  # noqa: E402 - after the path set-up above
from services import audit, database  # noqa: E402
from services.identity.permissions import Actor  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
VIEWER = Actor(user_id=None, username="viewer", ip_address="10.0.0.1", user_agent="benchmark")
DETAILS = {"start": "2026-03-01", "end": "2026-03-31", "accounts": [], "metric": "unblended"}


def _view_kwargs() -> dict[str, object]:
    """The keywords the overview passes to record() (in the code this runs on)."""
    kwargs: dict[str, object] = {"actor": VIEWER, "action": "costs.view", "object_type": "overview",
                                 "details": DETAILS}
    if "defer_chain" in inspect.signature(audit.record).parameters:
        kwargs["defer_chain"] = True
    return kwargs


def _writer(stop: threading.Event, latencies: list[float], kwargs: dict[str, object]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        with database.session_scope() as session:
            session.execute(text("SELECT count(*) FROM aws_accounts"))
            audit.record(session, **kwargs)  # type: ignore[arg-type]  # keywords checked above
        latencies.append(time.perf_counter() - started)


def run(threads: int, seconds: float) -> tuple[float, float, float, int]:
    """Run `threads` writers for `seconds`; return views/s, median and p95 latency (ms), views."""
    stop = threading.Event()
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    kwargs = _view_kwargs()
    workers = [threading.Thread(target=_writer, args=(stop, per_thread[i], kwargs)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for lat in per_thread for x in lat)
    p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else 0.0
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p95 * 1000, len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,8,32", help="comma-separated writer thread counts")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each run lasts")
    args = parser.parse_args()
    name = f"finops_bench_audit_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url)
        counts = [int(n) for n in args.threads.split(",")]
        database.configure(url, pool_size=max(counts) + 2, max_overflow=0)
        audit.configure("benchmark-audit-key-0123456789")
        mode = "deferred chain" if "defer_chain" in _view_kwargs() else "chained under the head lock"
        print(f"audit rows of overview views ({mode}), {args.seconds:g} s per run")
        print(f"{'threads':>7} {'views/s':>9} {'median ms':>10} {'p95 ms':>8}")
        total = 0
        for count in counts:
            rate, median, p95, views = run(count, args.seconds)
            total += views
            print(f"{count:>7} {rate:>9.0f} {median:>10.2f} {p95:>8.2f}")
        seal = getattr(audit, "seal_pending", None)
        with database.session_scope() as session:
            if seal is not None:
                seal(session)
        with database.session_scope() as session:
            report = audit.verify_chain(session)
        print(f"chain: {report.rows} rows for {total} views, {'intact' if report.is_intact else 'TAMPERED'}")
    finally:
        database.get_engine().dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
