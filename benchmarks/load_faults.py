"""Load and faults: the production stack on loopback at a fixed request rate, then the same load with
PostgreSQL stopped for 20 s, Redis stopped for 20 s, and the job worker killed with jobs in flight.

The benchmark starts its own PostgreSQL cluster (initdb in a scratch folder, on a free port) and its
own Redis, so that the dependencies it stops are its alone. On them it runs the product as an operator
does: `db upgrade`, `seed-demo`, `create-admin`, then `serve --workers 4`, a job `worker`, a
`worker --interactive` and `beat`. A plain client sends requests at a fixed rate (open loop: a slow
answer does not slow the sender) to the JSON API and to the overview's Dash callback.

Printed per phase and target: requests, answers 2xx, errors by status (and connection failures),
p50 / p95 / p99 latency, the slowest failed answer (failing fast), and the share of 2xx in the
phase's last 20 s (recovered without a restart). At the end: jobs accepted, finished, lost and run
more than once, and whether `audit verify` finds the chain intact.

    python benchmarks/load_faults.py [--steady 120] [--fault-phase 60] [--api-rate 8] [--dash-rate 4]

Loopback only, bounded in time: every phase ends by itself and every process started is stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stacks import CLI, Stack, _spawn, free_port, http_session, production_env, stop, wait_for_http  # noqa: E402


def _as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Postgres:
    """A PostgreSQL cluster of the benchmark's own, in a scratch folder, stopped and started at will."""

    def __init__(self, folder: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        self.bin = Path(found[-1]).parent if found else Path(shutil.which("pg_ctl") or "pg_ctl").parent
        self.data, self.port = folder / "pgdata", free_port()
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                                     "--auth=trust", "-E", "UTF8"]), check=True, capture_output=True)
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
                                     "-l", str(self.data / "server.log"), "start"]), check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       check=False, capture_output=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


class Redis:
    """A Redis server of the benchmark's own on a free port."""

    def __init__(self) -> None:
        self.port, self.process = free_port(), None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              check=False).stdout.strip() == b"PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@dataclass
class Sample:
    at: float
    target: str
    status: int  # 0: no answer (connection refused, time-out)
    seconds: float


@dataclass
class Phase:
    name: str
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _overview_callback_body(start: str, end: str) -> dict[str, Any]:
    outputs = [("overview-message", "children"), ("overview-kpis", "children"), ("overview-total", "children"),
               ("overview-trend", "figure"), ("overview-services", "figure"), ("overview-accounts-chart", "figure")]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": "overview-range", "property": "start_date", "value": start},
                   {"id": "overview-range", "property": "end_date", "value": end},
                   {"id": "overview-accounts", "property": "value", "value": []},
                   {"id": "overview-metric", "property": "value", "value": "unblended_cost"}],
        "changedPropIds": ["overview-range.start_date"], "state": [],
    }


def run_load(stack: Stack, phase: Phase, *, seconds: float, api_rate: float, dash_rate: float,
             events: dict[float, Callable[[], None]]) -> None:
    """Send requests at fixed rates for `seconds`; run each event at its offset, in order."""
    http = http_session(stack)
    today = dt.date.today()
    start, end = (today - dt.timedelta(days=89)).isoformat(), today.isoformat()
    dash_body = _overview_callback_body(start, end)
    targets: dict[str, Callable[[], Any]] = {
        "api overview": lambda: http.get(f"{stack.base_url}/api/v1/overview/", params={"start": start, "end": end},
                                         timeout=10),
        "api costs": lambda: http.get(f"{stack.base_url}/api/v1/costs/", timeout=10, params={
            "start": start, "end": end, "granularity": "month", "group_by": "service"}),
        "dash overview": lambda: http.post(f"{stack.base_url}/_dash-update-component", json=dash_body, timeout=10),
    }
    schedule: list[tuple[float, str]] = []
    for name, rate in (("api overview", api_rate / 2), ("api costs", api_rate / 2), ("dash overview", dash_rate)):
        schedule += [(n / rate, name) for n in range(int(seconds * rate))]
    schedule.sort()

    def send(name: str, began: float) -> None:
        at = time.monotonic()
        try:
            status = targets[name]().status_code
        except Exception:  # noqa: BLE001 - any failure to get an answer is a sample with status 0
            status = 0
        with phase.lock:
            phase.samples.append(Sample(at - began, name, status, time.monotonic() - at))

    pending = sorted(events.items())
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=48) as pool:
        for offset, name in schedule:
            while pending and pending[0][0] <= offset:
                threading.Thread(target=pending.pop(0)[1], daemon=True).start()
            delay = began + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, name, began)
        for _offset, event in pending:
            event()


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def report(phase: Phase, seconds: float) -> None:
    print(f"\n== {phase.name}")
    print(f"{'target':<14} {'requests':>8} {'2xx':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'slowest fail ms':>15} {'last 20 s 2xx':>13}  errors")
    for target in sorted({s.target for s in phase.samples}):
        rows = [s for s in phase.samples if s.target == target]
        ok = [s for s in rows if 200 <= s.status < 300]
        failed = [s for s in rows if not 200 <= s.status < 300]
        tail = [s for s in rows if s.at >= seconds - 20]
        tail_ok = sum(1 for s in tail if 200 <= s.status < 300) / len(tail) if tail else float("nan")
        latencies = [s.seconds * 1000 for s in ok]
        errors = Counter(s.status for s in failed)
        print(f"{target:<14} {len(rows):>8} {len(ok):>6} {_quantile(latencies, 0.50):>8.1f} "
              f"{_quantile(latencies, 0.95):>8.1f} {_quantile(latencies, 0.99):>8.1f} "
              f"{max((s.seconds for s in failed), default=0) * 1000:>15.0f} {tail_ok:>13.1%}  "
              f"{dict(sorted(errors.items())) or '-'}")


class Jobs:
    """Jobs submitted through the API during the run, and what became of them."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.accepted, self.refused = stack, [], Counter()

    def submit(self, count: int, *, steps: int = 8, seconds_per_step: float = 0.25) -> None:
        http = http_session(self.stack)
        for _ in range(count):
            try:
                response = http.post(f"{self.stack.base_url}/api/v1/tasks/", timeout=10, json={
                    "kind": "test.steps", "parameters": {"steps": steps, "seconds_per_step": seconds_per_step}})
            except Exception:  # noqa: BLE001 - a refused submission is counted, not lost
                self.refused[0] += 1
                continue
            if response.status_code == 201:
                self.accepted.append(response.json()["id"])
            else:
                self.refused[response.status_code] += 1

    def settle(self, database_url: str, timeout: float) -> None:
        from sqlalchemy import create_engine, func, select

        from models import Task, TaskResult

        engine = create_engine(database_url)
        deadline = time.monotonic() + timeout
        while True:
            with engine.connect() as conn:
                states = dict(conn.execute(select(Task.id, Task.status).where(Task.id.in_(self.accepted))).all())
            done = {i: s for i, s in states.items() if s in ("succeeded", "failed", "cancelled")}
            if len(done) == len(self.accepted) or time.monotonic() > deadline:
                break
            time.sleep(1)
        with engine.connect() as conn:
            results = dict(conn.execute(select(TaskResult.task_id, func.count()).where(
                TaskResult.task_id.in_(self.accepted)).group_by(TaskResult.task_id)).all())
            retried = conn.scalar(select(func.count()).select_from(Task).where(
                Task.id.in_(self.accepted), Task.attempts > 1))
        engine.dispose()
        succeeded = sum(1 for s in states.values() if s == "succeeded")
        lost = len(self.accepted) - succeeded
        twice = sum(1 for n in results.values() if n > 1)
        print(f"\n== jobs: {len(self.accepted)} accepted, {dict(self.refused) or 'none'} refused at submit "
              f"(status: count), {succeeded} succeeded, {lost} lost or unfinished, {twice} with more than one "
              f"result, {retried} taken again after a lost worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steady", type=float, default=120, help="seconds of load with everything up")
    parser.add_argument("--fault-phase", type=float, default=60, help="seconds of each fault phase")
    parser.add_argument("--outage", type=float, default=20, help="seconds a dependency stays down")
    parser.add_argument("--api-rate", type=float, default=8, help="API requests per second")
    parser.add_argument("--dash-rate", type=float, default=4, help="Dash callback requests per second")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="finops-load-"))
    if os.geteuid() == 0:
        os.chmod(scratch, 0o755)  # noqa: S103 - the postgres user must reach its data folder inside
    postgres, redis = Postgres(scratch / "pg"), Redis()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(_as_postgres([str(postgres.bin / "createdb"), "-h", "127.0.0.1", "-p", str(postgres.port),
                                     "-U", "postgres", "finops"]), check=True, capture_output=True)
        env = production_env(scratch, postgres.url("finops"), 0)
        env.update({"CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
                    "REDIS_URL": f"redis://127.0.0.1:{redis.port}/1",
                    "RATE_LIMIT_API": "1000000/hour", "LOG_LEVEL": "ERROR"})
        for argv in ([CLI, "db", "upgrade"], [CLI, "seed-demo"]):
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=900)
        created = subprocess.run([CLI, "create-admin", "--username", "admin"], env=env, check=True,
                                 capture_output=True, text=True, timeout=120)
        password = created.stdout.split("Password (shown once): ", 1)[1].split()[0]
        port = free_port()
        logs = {name: scratch / f"{name}.log" for name in ("worker", "interactive", "beat", "web")}
        worker = _spawn([CLI, "worker", "--concurrency", "2", "--loglevel", "WARNING"], env, logs["worker"])
        processes += [worker,
                      _spawn([CLI, "worker", "--interactive", "--loglevel", "WARNING"], env, logs["interactive"]),
                      _spawn([CLI, "beat", "--loglevel", "WARNING"], env, logs["beat"]),
                      _spawn([CLI, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "4", "--threads", "4"], env,
                             logs["web"])]
        stack = Stack(base_url=f"http://127.0.0.1:{port}", username="admin", password=password,
                      database_url=postgres.url("finops"), kind="production", processes=processes, env=env)
        wait_for_http(f"{stack.base_url}/health/live/", timeout=120, process=processes[-1], log=logs["web"])
        wait_for_http(f"{stack.base_url}/health/", timeout=120, process=worker, log=logs["worker"])
        http_session(stack)
        jobs = Jobs(stack)
        print(f"stack: serve --workers 4 --threads 4, worker --concurrency 2, worker --interactive, beat; "
              f"PostgreSQL and Redis of its own; {args.api_rate:g} API and {args.dash_rate:g} Dash requests/s")

        steady = Phase("steady: everything up")
        run_load(stack, steady, seconds=args.steady, api_rate=args.api_rate, dash_rate=args.dash_rate,
                 events={5.0: lambda: jobs.submit(4)})
        report(steady, args.steady)

        out = args.outage
        pg = Phase(f"PostgreSQL stopped from 10 s to {10 + out:g} s")
        run_load(stack, pg, seconds=args.fault_phase, api_rate=args.api_rate, dash_rate=args.dash_rate,
                 events={10.0: postgres.stop, 12.0: lambda: jobs.submit(2), 10.0 + out: postgres.start,
                         15.0 + out: lambda: jobs.submit(2)})
        report(pg, args.fault_phase)

        rd = Phase(f"Redis stopped from 10 s to {10 + out:g} s")
        run_load(stack, rd, seconds=args.fault_phase, api_rate=args.api_rate, dash_rate=args.dash_rate,
                 events={10.0: redis.stop, 12.0: lambda: jobs.submit(2), 10.0 + out: redis.start,
                         15.0 + out: lambda: jobs.submit(2)})
        report(rd, args.fault_phase)

        def kill_worker() -> None:
            os.killpg(processes[0].pid, signal.SIGKILL)
            processes[0].wait(10)

        def restart_worker() -> None:
            processes[0] = _spawn([CLI, "worker", "--concurrency", "2", "--loglevel", "WARNING"], env, logs["worker"])

        kill = Phase("job worker killed (SIGKILL to its process group) at 8 s, a new one at 18 s")
        run_load(stack, kill, seconds=args.fault_phase, api_rate=args.api_rate, dash_rate=args.dash_rate,
                 events={1.0: lambda: jobs.submit(16), 8.0: kill_worker, 18.0: restart_worker})
        report(kill, args.fault_phase)

        jobs.settle(stack.database_url, timeout=240)
        verify = subprocess.run([CLI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=300,
                                check=False)
        print(f"\n== audit verify: exit {verify.returncode}: {(verify.stdout + verify.stderr).strip()[-300:]}")
    finally:
        for process in reversed(processes):
            stop(process)
        redis.stop()
        postgres.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
