"""aws-finops as a job, the way a user starts it: our profiles, per-profile progress, kept results."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import AuditLog, CostFact, Task, TaskMetrics, TaskResult
from services import database, validation
from services.aws import profiles
from services.costs import queries
from services.identity.permissions import Actor
from services.jobs import cli_kinds, lifecycle
from services.runner.cli_runner import CliRunner, RunnerConfig
from services.runner.commands import AwsFinopsCost
from tests.factories import make_profiles
from tests.integration.test_aws_finops import ACCOUNTS, BASE_KEY, BASE_SECRET, OFFLINE, REGIONS, _seed
from tests.moto_server import GET_COST_AND_USAGE, counted_requests, start_counting

pytestmark = pytest.mark.integration
ADMIN = Actor(user_id=None, username="ops", roles=frozenset({"admin"}))


@pytest.fixture()
def finops_profiles(db_url, moto, tmp_path):
    cli_kinds.configure(RunnerConfig(endpoint_url=moto, timeout_seconds=120, output_root=tmp_path / "runs",
                                    scratch_root=tmp_path, extra_env=OFFLINE), results_root=tmp_path / "results")
    (tmp_path / "runs").mkdir()
    ids = {}
    with database.session_scope() as session:
        base = profiles.create_profile(session, actor=ADMIN, data=validation.parse(profiles.ProfileCreate, {
            "name": "base", "access_key_id": BASE_KEY, "secret_access_key": BASE_SECRET}))
        for account in ACCOUNTS:
            creds = _seed(moto, account)
            if account.assume_role_in_tool:
                values = {"name": account.profile, "auth_type": "assume_role", "role_arn": creds.role_arn,
                          "source_profile_id": base.id, "external_id": creds.external_id}
            else:
                values = {"name": account.profile, "access_key_id": creds.access_key_id,
                          "secret_access_key": creds.secret_access_key, "session_token": creds.session_token}
            values["default_regions"] = REGIONS
            ids[account.profile] = profiles.create_profile(
                session, actor=ADMIN, data=validation.parse(profiles.ProfileCreate, values)).id
    yield ids
    cli_kinds.configure(RunnerConfig(), results_root=tmp_path / "results")


def test_cost_job_runs_each_profile_and_keeps_parsed_results_and_files(finops_profiles, tmp_path):
    with database.session_scope() as session:
        view = lifecycle.submit_job(session, actor=ADMIN, kind="aws_finops.cost", parameters={
            "profile_ids": list(finops_profiles.values()), "regions": REGIONS, "time_range_days": 30,
            "report_types": ["csv", "json"]})
    assert view.status == "queued"
    lifecycle.execute_task(view.id, owner="test-worker")
    with database.session_scope() as session:
        task = session.get(Task, view.id)
        results = {r.name: r for r in session.scalars(select(TaskResult).where(TaskResult.task_id == view.id))}
        metrics = session.get(TaskMetrics, view.id)
        uses = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "credential.use"))
    assert task.status == "succeeded", (task.error, task.log[-3000:])
    assert task.progress == 100 and "profile charlie" in task.log
    for account in ACCOUNTS:
        parsed = results[f"{account.profile}-cost.parsed.json"].data
        assert parsed["status"] == "succeeded" and parsed["account_id"] == account.account_id
        seeded = {s: sum(days, Decimal(0)) for s, days in account.current_daily.items()}
        shown = {s: Decimal(v).quantize(Decimal("0.01")) for s, v in parsed["report"]["current_by_service"].items()}
        assert shown == seeded
        files = [r for name, r in results.items() if name.startswith(f"{account.profile}-") and r.storage_path]
        assert sorted(Path(r.storage_path).suffix for r in files) == [".csv", ".json"]
        assert all(Path(r.storage_path).is_file() and str(tmp_path) in r.storage_path for r in files)
    assert metrics.cpu_seconds > 0 and metrics.peak_memory_bytes > 0
    assert uses == 3


def _finops_facts() -> dict[tuple[str, dt.date, str], Decimal]:
    with database.session_scope() as session:
        rows = session.execute(
            select(CostFact.usage_account_id, CostFact.usage_date, CostFact.service, CostFact.unblended_cost)
            .where(CostFact.source == "aws_finops")).all()
    facts = {(account, day, service): amount for account, day, service, amount in rows}
    assert len(facts) == len(rows), "a line is there twice"
    return facts


def test_a_cost_run_of_whole_months_becomes_the_aws_finops_snapshot_of_each_account(finops_profiles):
    this_month = dt.datetime.now(dt.UTC).date().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    expected = {}
    for account in ACCOUNTS:
        for period, daily in ((this_month, account.current_daily), (last_month, account.previous_daily)):
            for service, amount in account.by_service(daily).items():
                expected[(account.account_id, period, service)] = amount

    for _run in (1, 2):  # a second run replaces the first one's snapshot (moto answers it the same)
        with database.session_scope() as session:
            view = lifecycle.submit_job(session, actor=ADMIN, kind="aws_finops.cost", parameters={
                "profile_ids": list(finops_profiles.values()), "regions": REGIONS})
        lifecycle.execute_task(view.id, owner="test-worker")
        with database.session_scope() as session:
            task = session.get(Task, view.id)
        assert task.status == "succeeded", (task.error, task.log[-3000:])
        facts = _finops_facts()
        assert {k: v.quantize(Decimal("0.01")) for k, v in facts.items()} == expected
    assert "cost lines kept as the aws_finops source" in task.log

    # The cost service reads it like any source: this month by account.
    with database.session_scope() as session:
        shown = queries.query_costs(session, actor=ADMIN, query=queries.parse_query({
            "start": this_month.isoformat(), "end": dt.datetime.now(dt.UTC).date().isoformat(),
            "group_by": ["account"], "granularity": "total"}))
    by_account = {row.keys[0]: row.amount.quantize(Decimal("0.01")) for row in shown.rows}
    assert by_account == {a.account_id: sum(a.by_service(a.current_daily).values(), Decimal(0)) for a in ACCOUNTS}


def test_costs_of_a_day_range_or_a_tag_filter_stay_results_only(finops_profiles):
    with database.session_scope() as session:
        view = lifecycle.submit_job(session, actor=ADMIN, kind="aws_finops.cost", parameters={
            "profile_ids": [finops_profiles["alpha"]], "regions": REGIONS, "time_range_days": 7})
    lifecycle.execute_task(view.id, owner="test-worker")
    with database.session_scope() as session:
        task = session.get(Task, view.id)
    assert task.status == "succeeded" and "kept as results only" in task.log
    assert _finops_facts() == {}


def test_a_failing_profile_fails_the_job_with_its_reason_and_keeps_the_others(finops_profiles):
    with database.session_scope() as session:
        broken = profiles.create_profile(session, actor=ADMIN, data=validation.parse(profiles.ProfileCreate, {
            "name": "broken", "auth_type": "assume_role", "role_arn": "arn:aws:iam::444444444444:role/none",
            "source_profile_id": finops_profiles["alpha"], "default_regions": ["us-east-1"]}))
        view = lifecycle.submit_job(session, actor=ADMIN, kind="aws_finops.audit", parameters={
            "profile_ids": [finops_profiles["bravo"], broken.id], "regions": REGIONS})
    cli_kinds.configure(RunnerConfig(endpoint_url="http://127.0.0.1:9", timeout_seconds=60, extra_env=OFFLINE),
                       results_root=Path(cli_kinds._results_root))  # noqa: SLF001 - keep the test's folder
    lifecycle.execute_task(view.id, owner="test-worker")
    with database.session_scope() as session:
        task = session.get(Task, view.id)
        names = set(session.scalars(select(TaskResult.name).where(TaskResult.task_id == view.id)))
    assert task.status == "failed" and "2 of 2 profiles failed" in task.error
    assert {"bravo-audit.parsed.json", "broken-audit.parsed.json"} <= names


def test_job_parameters_never_accept_a_name_a_command_or_a_flag(db_url):
    for bad in ({"profile_ids": [1], "profiles": ["alpha"]}, {"profile_ids": [1], "regions": ["us-east-1; id"]},
                {"profile_ids": ["--endpoint-url"]}, {"profile_ids": [1], "report_name": "../../etc/x"}):
        with database.session_scope() as session, pytest.raises(Exception, match="profile|region|report_name"):
            lifecycle.submit_job(session, actor=ADMIN, kind="aws_finops.cost", parameters=bad)


def test_cost_jobs_over_many_profiles_wait_for_approval(db_url):
    with database.session_scope() as session:
        view = lifecycle.submit_job(session, actor=ADMIN, kind="aws_finops.cost",
                               parameters={"profile_ids": make_profiles(session, 15)},
                               policy=lifecycle.ApprovalPolicy(max_ce_cost_usd=Decimal("0.50"), max_profiles=50))
    assert view.status == "awaiting_approval" and "$0.60" in view.step  # 4 x 15 requests, no table-title query
    assert json.dumps(view.parameters)


def _profile_credentials(ids: dict[str, int]) -> list:
    with database.session_scope() as session:
        return [profiles.get_credentials(session, actor=ADMIN, profile_id=ids[a.profile], purpose="test")
                for a in ACCOUNTS]


def _run_job(kind: str, parameters: dict) -> tuple[Task, TaskMetrics, dict[str, dict]]:
    with database.session_scope() as session:
        view = lifecycle.submit_job(session, actor=ADMIN, kind=kind, parameters=parameters)
    assert view.status == "queued"
    lifecycle.execute_task(view.id, owner="test-worker")
    with database.session_scope() as session:
        task = session.get(Task, view.id)
        metrics = session.get(TaskMetrics, view.id)
        parsed = {r.name: r.data for r in session.scalars(select(TaskResult).where(TaskResult.task_id == view.id))
                  if r.name.endswith(".parsed.json")}
    assert task.status == "succeeded", (task.error, task.log[-3000:])
    return task, metrics, parsed


def test_a_cost_job_makes_no_more_cost_explorer_requests_than_the_tool_run_by_hand(finops_profiles, moto, tmp_path):
    names = [a.profile for a in ACCOUNTS]
    by_hand = CliRunner(RunnerConfig(endpoint_url=moto, timeout_seconds=120, output_root=tmp_path / "runs",
                                     scratch_root=tmp_path, extra_env=OFFLINE))
    start_counting(moto)
    run = by_hand.run(AwsFinopsCost(profiles=names, regions=REGIONS), profiles=_profile_credentials(finops_profiles))
    hand_requests = counted_requests(moto)[GET_COST_AND_USAGE]
    [export] = [f for f in run.files if f.suffix == ".json"]
    hand = {entry["profile"]: entry for entry in json.loads(export.read_text(), parse_float=Decimal)}
    assert hand_requests == 4 + 4 * len(names)  # the tool's own count: its table title asks once more

    start_counting(moto)
    _task, _metrics, parsed = _run_job("aws_finops.cost", {"profile_ids": list(finops_profiles.values()),
                                                           "regions": REGIONS})
    job_requests = counted_requests(moto)[GET_COST_AND_USAGE]

    assert job_requests <= hand_requests
    for name in names:  # the same figures (moto answers a repeated request the same)
        report = parsed[f"{name}-cost.parsed.json"]["report"]
        assert {k: Decimal(v) for k, v in report["current_by_service"].items()} == dict(hand[name]["service_costs"])
        assert {k: Decimal(v) for k, v in report["previous_by_service"].items()} == \
            dict(hand[name]["previous_service_costs"])
        assert (Decimal(report["current_total"]), Decimal(report["previous_total"])) == \
            (hand[name]["current_month"], hand[name]["last_month"])


@pytest.mark.parametrize("kind, extra, concurrency", [
    ("aws_finops.cost", {"regions": REGIONS}, None),
    ("aws_finops.cost", {"regions": REGIONS, "time_range_days": 30}, 2),
    ("aws_finops.cost", {"regions": REGIONS, "report_types": ["csv", "json", "pdf"]}, None),
    ("aws_finops.trend", {}, 2),
    ("aws_finops.audit", {"regions": REGIONS}, 1),
], ids=["cost", "cost-grouped", "cost-pdf", "trend", "audit"])
def test_the_approval_estimate_is_the_count_of_cost_explorer_requests_the_job_makes(
        finops_profiles, moto, tmp_path, kind, extra, concurrency):
    if concurrency is not None:
        cli_kinds.configure(RunnerConfig(endpoint_url=moto, timeout_seconds=120, output_root=tmp_path / "runs",
                                         scratch_root=tmp_path, extra_env=OFFLINE, concurrency=concurrency),
                            results_root=tmp_path / "results")
    parameters = {"profile_ids": list(finops_profiles.values()), **extra}
    estimate = lifecycle.get_kind(kind).estimate_ce_requests(
        validation.parse(lifecycle.get_kind(kind).parameters, parameters))

    start_counting(moto)
    _task, metrics, _parsed = _run_job(kind, parameters)
    counted = counted_requests(moto)

    assert estimate == counted[GET_COST_AND_USAGE]
    assert metrics.aws_requests == sum(counted.values()) > 0  # every AWS request of the job, STS and EC2 too
