"""aws-finops over 20 profiles: the CLI run by hand against the product's cost job, side by side.

Starts its own moto server holding 20 accounts (an instance, a budget and Cost Explorer answers
each), then, in one run:

- runs ``aws-finops --profiles p01 ... p20`` by hand (one process, the way its README shows),
  with an AWS config and credentials file of its own;
- runs the product's ``aws_finops.cost`` job over the same 20 profiles (a temporary SQLite
  database, ``lifecycle.submit_job`` and ``execute_task`` as a worker runs it), at each
  concurrency in CONCURRENCIES (4 is RUNNER_CONCURRENCY's default);

ROUNDS times, alternating, since this machine's speed swings from minute to minute: each round
is printed, then the median wall time of each.

Cost Explorer requests are counted by moto itself: its request recorder
(``/moto-api/recorder/``) records every request it answers, and a request whose ``X-Amz-Target``
is ``AWSInsightsIndexService.GetCostAndUsage`` is one Cost Explorer request (USD 0.01). The job's
own count (``TaskMetrics.aws_requests``, from the runner's request counter in each child) and
its approval estimate are printed next to it. Figures are compared per profile: current and
previous totals and costs by service.

Run: .venv/bin/python benchmarks/finops_jobs.py
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import requests
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashapp.cli import migrate  # noqa: E402 - after the path set-up above
from models import Task, TaskMetrics, TaskResult  # noqa: E402
from services import audit, crypto, database, validation  # noqa: E402
from services.aws import profiles  # noqa: E402
from services.crypto import Keyring  # noqa: E402
from services.identity.permissions import Actor  # noqa: E402
from services.jobs import cli_kinds, lifecycle  # noqa: E402
from services.runner.cli_runner import RunnerConfig  # noqa: E402

PROFILES = 20
CONCURRENCIES = (4, 2)
ROUNDS = 3
REGIONS = ["us-east-1", "eu-west-1"]
ADMIN = Actor(user_id=None, username="benchmark", roles=frozenset({"admin"}))
KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GET_COST_AND_USAGE = "AWSInsightsIndexService.GetCostAndUsage"
#: aws-finops asks PyPI for a newer version on every run: a closed local proxy makes that fail at
#: once, for both sides (moto is plain http, which HTTPS_PROXY does not touch).
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
BIN = Path(sys.executable).parent


def start_moto(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto_server on a free local port, its recorder writing into folder."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(folder / "recording.jsonl")}
    process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],  # noqa: S603 - our own argv
                               stdout=(folder / "moto.log").open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):  # noqa: S310 - a local URL
                return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("moto_server did not start")


class CpuClock:
    """CPU seconds of this process's children (aws-finops) and of the moto server, from now on."""

    def __init__(self, moto_pid: int) -> None:
        self.moto_pid = moto_pid
        self.start = self._read()

    def _read(self) -> tuple[float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        fields = Path(f"/proc/{self.moto_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return children.ru_utime + children.ru_stime, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def spent(self) -> tuple[float, float]:
        now = self._read()
        return now[0] - self.start[0], now[1] - self.start[1]


MOTO_PID = 0


def start_counting(moto: str) -> None:
    requests.post(f"{moto}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()
    requests.post(f"{moto}/moto-api/recorder/start-recording", timeout=10).raise_for_status()


def counted(moto: str) -> Counter[str]:
    """Requests moto answered since start_counting: Cost Explorer ones, and all."""
    requests.post(f"{moto}/moto-api/recorder/stop-recording", timeout=10).raise_for_status()
    lines = requests.get(f"{moto}/moto-api/recorder/download-recording", timeout=60).text.splitlines()
    counts: Counter[str] = Counter()
    for line in filter(str.strip, lines):
        headers = {k.lower(): v for k, v in json.loads(line)["headers"].items()}
        counts["ce" if headers.get("x-amz-target") == GET_COST_AND_USAGE else "other"] += 1
    return counts


def _money(amount: Decimal) -> dict[str, Any]:
    return {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}


def seed(moto: str, number: int) -> dict[str, str]:
    """One account: an instance, a budget, and the four Cost Explorer answers of a cost run."""
    account = f"{100000000000 + number:012d}"
    sts = boto3.client("sts", endpoint_url=moto, region_name="us-east-1", aws_access_key_id=KEY_ID,
                       aws_secret_access_key=SECRET)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="seed")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name="us-east-1")
    ec2 = session.client("ec2", endpoint_url=moto)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    session.client("budgets", endpoint_url=moto).create_budget(AccountId=account, Budget={
        "BudgetName": f"monthly-{number}", "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
        "TimeUnit": "MONTHLY", "BudgetType": "COST"})
    services = {"Amazon Elastic Compute Cloud - Compute": Decimal(number) * Decimal("10.25"),
                "Amazon Simple Storage Service": Decimal(number) + Decimal("0.33")}
    previous = {name: amount * 2 for name, amount in services.items()}

    def total(amounts: dict[str, Decimal]) -> dict[str, Any]:
        return {"ResultsByTime": [{"Total": _money(sum(amounts.values(), Decimal(0))), "Groups": [],
                                   "Estimated": False}]}

    def by_service(amounts: dict[str, Decimal]) -> dict[str, Any]:
        return {"ResultsByTime": [{"Total": {}, "Estimated": False, "Groups": [
            {"Keys": [name], "Metrics": _money(amount)} for name, amount in amounts.items()]}]}

    requests.post(f"{moto}/moto-api/static/ce/cost-and-usage-results", timeout=30, json={
        "account_id": account,
        "results": [total(services), total(previous), by_service(services), by_service(previous)]}).raise_for_status()
    return {"name": f"p{number:02d}", "access_key_id": creds["AccessKeyId"],
            "secret_access_key": creds["SecretAccessKey"], "session_token": creds["SessionToken"]}


def figures(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry["account_id"], Decimal(str(entry["current"])), Decimal(str(entry["previous"])),
            {k: Decimal(str(v)) for k, v in entry["current_by_service"].items()},
            {k: Decimal(str(v)) for k, v in entry["previous_by_service"].items()})


def run_by_hand(moto: str, folder: Path, accounts: list[dict[str, str]]) -> dict[str, Any]:
    """aws-finops over every profile in one process, as a person runs it."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=folder))
    (home / ".aws").mkdir()
    config = [line for a in accounts for line in (f"[profile {a['name']}]", "region = us-east-1", "")]
    credentials = [line for a in accounts for line in (
        f"[{a['name']}]", f"aws_access_key_id = {a['access_key_id']}",
        f"aws_secret_access_key = {a['secret_access_key']}", f"aws_session_token = {a['session_token']}", "")]
    (home / ".aws" / "config").write_text("\n".join(config))
    (home / ".aws" / "credentials").write_text("\n".join(credentials))
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
           "COLUMNS": "200", "AWS_ENDPOINT_URL": moto, "AWS_EC2_METADATA_DISABLED": "true", **OFFLINE}
    out = Path(tempfile.mkdtemp(prefix="by-hand-", dir=folder))
    argv = [str(BIN / "aws-finops"), "--profiles", *(a["name"] for a in accounts), "--regions", *REGIONS,
            "--report-name", "by-hand", "--report-type", "json", "--dir", str(out)]
    start_counting(moto)
    cpu, clock = CpuClock(MOTO_PID), time.perf_counter()
    subprocess.run(argv, env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,  # noqa: S603 - our own argv
                   check=True)
    seconds, spent = time.perf_counter() - clock, cpu.spent()
    counts = counted(moto)
    [export] = out.glob("*.json")
    shown = {e["profile"]: figures({
        "account_id": e["account_id"], "current": e["current_month"], "previous": e["last_month"],
        "current_by_service": dict(e["service_costs"]), "previous_by_service": dict(e["previous_service_costs"])})
        for e in json.loads(export.read_text())}
    return {"seconds": seconds, "counts": counts, "shown": shown, "cpu": spent}


def run_job(moto: str, folder: Path, profile_ids: list[int], concurrency: int) -> dict[str, Any]:
    """The product's cost job over the profiles, as a worker runs it."""
    runs = Path(tempfile.mkdtemp(prefix=f"runs-{concurrency}-", dir=folder))
    cli_kinds.configure(RunnerConfig(endpoint_url=moto, output_root=runs, scratch_root=runs, extra_env=OFFLINE,
                                     concurrency=concurrency), results_root=runs / "results")
    parameters = {"profile_ids": profile_ids, "regions": REGIONS}
    kind = lifecycle.get_kind("aws_finops.cost")
    estimate = kind.estimate_ce_requests(validation.parse(kind.parameters, parameters))
    with database.session_scope() as session:
        view = lifecycle.submit_job(session, actor=ADMIN, kind="aws_finops.cost", parameters=parameters,
                                    policy=lifecycle.ApprovalPolicy(max_ce_cost_usd=Decimal(100), max_profiles=100))
    start_counting(moto)
    cpu, clock, own = CpuClock(MOTO_PID), time.perf_counter(), time.process_time()
    lifecycle.execute_task(view.id, owner="benchmark")
    seconds, spent, own = time.perf_counter() - clock, cpu.spent(), time.process_time() - own
    counts = counted(moto)
    with database.session_scope() as session:
        task = session.get(Task, view.id)
        assert task is not None and task.status == "succeeded", (task and task.error)
        metrics = session.get(TaskMetrics, view.id)
        recorded = metrics.aws_requests if metrics else 0
        shown = {}
        for result in session.scalars(select(TaskResult).where(TaskResult.task_id == view.id)):
            if result.name.endswith("-cost.parsed.json") and result.data:
                report = result.data["report"]
                shown[result.name.removesuffix("-cost.parsed.json")] = figures({
                    "account_id": result.data["account_id"], "current": report["current_total"],
                    "previous": report["previous_total"], "current_by_service": report["current_by_service"],
                    "previous_by_service": report["previous_by_service"]})
    return {"seconds": seconds, "counts": counts, "shown": shown, "estimate": estimate, "recorded": recorded,
            "cpu": spent, "own": own}


def main() -> None:
    global MOTO_PID
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        process, moto = start_moto(folder)
        MOTO_PID = process.pid
        try:
            url = f"sqlite:///{folder / 'bench.db'}"
            migrate(url)
            database.configure(url)
            crypto.configure(Keyring.generate_spec())
            audit.configure("benchmark-audit-key-0123456789")
            accounts = [seed(moto, n) for n in range(1, PROFILES + 1)]
            with database.session_scope() as session:
                profile_ids = [profiles.create_profile(session, actor=ADMIN, data=validation.parse(  # type: ignore[arg-type]
                    profiles.ProfileCreate, {**a, "default_regions": REGIONS})).id for a in accounts]
            rounds = []
            for _round in range(ROUNDS):
                hand = run_by_hand(moto, folder, accounts)
                rounds.append((hand, {c: run_job(moto, folder, profile_ids, c) for c in CONCURRENCIES}))
        finally:
            process.terminate()
            process.wait(10)
    print(f"aws-finops cost over {PROFILES} profiles against moto, regions {' '.join(REGIONS)}; requests counted "
          f"by moto's request recorder; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("CPU s: aws-finops processes / moto server / the job's own (worker) process")
    print(f"{'round':>5} {'run':<30} {'CE req':>6} {'USD':>5} {'all req':>7} {'wall s':>7} {'vs CLI':>6} "
          f"{'CPU s':>16} {'estimate':>8} {'recorded':>8} {'figures':>9}")
    for number, (hand, jobs) in enumerate(rounds, start=1):
        cpu = f"{hand['cpu'][0]:.1f} / {hand['cpu'][1]:.1f} / -"
        print(f"{number:>5} {'aws-finops by hand, 1 process':<30} {hand['counts']['ce']:>6} "
              f"{hand['counts']['ce'] / 100:>5.2f} {sum(hand['counts'].values()):>7} {hand['seconds']:>7.2f} "
              f"{'1.00x':>6} {cpu:>16} {'':>8} {'':>8} {'':>9}")
        for concurrency, job in jobs.items():
            same = "identical" if job["shown"] == hand["shown"] else "DIFFER"
            cpu = f"{job['cpu'][0]:.1f} / {job['cpu'][1]:.1f} / {job['own']:.1f}"
            print(f"{number:>5} {f'job, RUNNER_CONCURRENCY={concurrency}':<30} {job['counts']['ce']:>6} "
                  f"{job['counts']['ce'] / 100:>5.2f} {sum(job['counts'].values()):>7} {job['seconds']:>7.2f} "
                  f"{hand['seconds'] / job['seconds']:>5.2f}x {cpu:>16} {job['estimate']:>8} {job['recorded']:>8} "
                  f"{same:>9}")
    hand_median = statistics.median(hand["seconds"] for hand, _ in rounds)
    print(f"median wall time: aws-finops by hand {hand_median:.2f} s", end="")
    for concurrency in CONCURRENCIES:
        median = statistics.median(jobs[concurrency]["seconds"] for _, jobs in rounds)
        print(f"; job at RUNNER_CONCURRENCY={concurrency} {median:.2f} s ({hand_median / median:.2f}x)", end="")
    print()


if __name__ == "__main__":
    main()
