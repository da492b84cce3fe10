"""The real aws-finops (and aws CLI) through the CLI runner, against a local moto server holding
three accounts: what the runner reads back equals what was seeded."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from services.aws.credentials import ProfileCredentials
from services.runner.aws_finops import FinopsProfileResult, run_aws_finops_per_profile
from services.runner.cli_runner import CliRunner, RunnerConfig, parse_aws_json
from services.runner.commands import (
    AwsBudgetsDescribeBudgets,
    AwsCeGetCostAndUsage,
    AwsEc2DescribeInstances,
    AwsEc2DescribeVolumes,
    AwsFinopsAudit,
    AwsFinopsCost,
    AwsFinopsTrend,
    AwsStsGetCallerIdentity,
)

pytestmark = pytest.mark.integration

MOTO_SERVER = Path(sys.prefix) / "bin" / "moto_server"
BASE_KEY, BASE_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGIONS = ["us-east-1", "eu-west-1"]
CENT = Decimal("0.01")
#: aws-finops checks PyPI for a newer version on every run: a closed local proxy makes that fail
#: at once, so the tests reach nothing but moto (plain http, which HTTPS_PROXY does not touch).
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}


@dataclass
class Account:
    """What one account holds in moto, and what aws-finops should report of it."""

    profile: str
    account_id: str
    #: region -> [(state, tagged)] of each instance
    instances: dict[str, list[tuple[str, bool]]]
    unused_volumes: dict[str, int]
    unused_eips: dict[str, int]
    associated_eips: int
    budgets: dict[str, Decimal]
    #: per service, one amount per day (the 30-day query is DAILY)
    current_daily: dict[str, list[Decimal]]
    previous_daily: dict[str, list[Decimal]]
    trend: list[tuple[str, Decimal]]
    assume_role_in_tool: bool = False
    seeded: dict[str, Any] = field(default_factory=dict)

    def by_service(self, daily: dict[str, list[Decimal]]) -> dict[str, Decimal]:
        return {service: sum(days, Decimal(0)) for service, days in daily.items()}


ACCOUNTS = [
    Account(profile="alpha", account_id="111111111111",
            instances={"us-east-1": [("running", True), ("running", False), ("stopped", False)],
                       "eu-west-1": [("running", True)]},
            unused_volumes={"us-east-1": 1}, unused_eips={"us-east-1": 1}, associated_eips=0,
            budgets={"alpha-monthly": Decimal("1000")},
            current_daily={"Amazon Elastic Compute Cloud - Compute": [Decimal("30.10"), Decimal("30.40")],
                           "Amazon Simple Storage Service": [Decimal("19.99"), Decimal("20.01")]},
            previous_daily={"Amazon Elastic Compute Cloud - Compute": [Decimal("50.25")],
                            "Amazon Simple Storage Service": [Decimal("30.00")]},
            trend=[("2025-01-01", Decimal("812.40")), ("2025-02-01", Decimal("799.95")),
                   ("2025-03-01", Decimal("905.10"))]),
    Account(profile="bravo", account_id="222222222222",
            instances={"eu-west-1": [("running", True), ("stopped", False), ("stopped", True)]},
            unused_volumes={"eu-west-1": 2}, unused_eips={}, associated_eips=1,
            budgets={"bravo-dev": Decimal("50"), "bravo-prod": Decimal("500")},
            current_daily={"Amazon Relational Database Service": [Decimal("6.17"), Decimal("6.17")],
                           "AWS Lambda": [Decimal("0.33"), Decimal("0.33")]},
            previous_daily={"Amazon Relational Database Service": [Decimal("11.11")]},
            trend=[("2025-02-01", Decimal("40.00")), ("2025-03-01", Decimal("41.50"))]),
    Account(profile="charlie", account_id="333333333333", instances={}, unused_volumes={},
            unused_eips={"us-east-1": 2}, associated_eips=0, budgets={},
            current_daily={"AmazonCloudWatch": [Decimal("5.00")]}, previous_daily={},
            trend=[("2025-03-01", Decimal("5.00"))], assume_role_in_tool=True),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free local port, for this module only."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "moto_server exited"
            try:
                if requests.get(f"{url}/moto-api/data.json", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _assumed(url: str, account_id: str) -> dict[str, str]:
    """Credentials in another account: moto's STS gives the account of the role ARN."""
    sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1", aws_access_key_id=BASE_KEY,
                       aws_secret_access_key=BASE_SECRET)
    return sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/seed", RoleSessionName="seed")["Credentials"]


def _money(amount: Decimal) -> dict[str, Any]:
    return {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}


def _ce_total(amount: Decimal) -> dict[str, Any]:
    """One period's total, as aws-finops asks for it (MONTHLY, no grouping)."""
    return {"ResultsByTime": [{"TimePeriod": {"Start": "2025-01-01", "End": "2025-02-01"}, "Total": _money(amount),
                               "Groups": [], "Estimated": False}]}


def _ce_daily(daily: dict[str, list[Decimal]]) -> dict[str, Any]:
    """Cost by service, one result per day."""
    days = max((len(amounts) for amounts in daily.values()), default=1)
    return {"ResultsByTime": [
        {"TimePeriod": {"Start": f"2025-01-{d + 1:02d}", "End": f"2025-01-{d + 2:02d}"}, "Total": {},
         "Groups": [{"Keys": [service], "Metrics": _money(amounts[d])}
                    for service, amounts in daily.items() if d < len(amounts)], "Estimated": False}
        for d in range(days)]}


def _ce_months(months: list[tuple[str, Decimal]]) -> dict[str, Any]:
    return {"ResultsByTime": [{"TimePeriod": {"Start": start, "End": start}, "Total": _money(amount), "Groups": [],
                               "Estimated": False} for start, amount in months]}


def _seed(url: str, account: Account) -> ProfileCredentials:
    creds = _assumed(url, account.account_id)
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"])
    seeded: dict[str, Any] = {"stopped": {}, "untagged": {}, "volumes": {}, "eips": {}}
    for region in REGIONS:
        ec2 = session.client("ec2", region_name=region, endpoint_url=url)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        for state, tagged in account.instances.get(region, []):
            tags = [{"ResourceType": "instance", "Tags": [{"Key": "Team", "Value": "FinOps"}]}] if tagged else []
            instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                         TagSpecifications=tags)["Instances"][0]["InstanceId"]
            if state == "stopped":
                ec2.stop_instances(InstanceIds=[instance])
                seeded["stopped"].setdefault(region, []).append(instance)
            if not tagged:
                seeded["untagged"].setdefault(region, []).append(instance)
            if state == "running" and account.associated_eips and region == "eu-west-1":
                allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
                ec2.associate_address(InstanceId=instance, AllocationId=allocation)
        for _ in range(account.unused_volumes.get(region, 0)):
            volume = ec2.create_volume(Size=10, AvailabilityZone=f"{region}a")["VolumeId"]
            seeded["volumes"].setdefault(region, []).append(volume)
        for _ in range(account.unused_eips.get(region, 0)):
            seeded["eips"].setdefault(region, []).append(ec2.allocate_address(Domain="vpc")["PublicIp"])
    budgets = session.client("budgets", region_name="us-east-1", endpoint_url=url)
    for name, limit in account.budgets.items():
        budgets.create_budget(AccountId=account.account_id, Budget={
            "BudgetName": name, "BudgetLimit": {"Amount": str(limit), "Unit": "USD"}, "TimeUnit": "MONTHLY",
            "BudgetType": "COST"})
    current, previous = account.by_service(account.current_daily), account.by_service(account.previous_daily)
    # aws-finops asks, in this order: current total, previous total, current and previous by
    # service (asked again identically, so answered the same), then the six-month trend.
    results = [_ce_total(sum(current.values(), Decimal(0))), _ce_total(sum(previous.values(), Decimal(0))),
               _ce_daily(account.current_daily), _ce_daily(account.previous_daily), _ce_months(account.trend)]
    response = requests.post(f"{url}/moto-api/static/ce/cost-and-usage-results", timeout=10,
                             json={"results": results, "account_id": account.account_id})
    assert response.status_code == 201, response.text
    account.seeded = seeded
    if account.assume_role_in_tool:
        return ProfileCredentials(name=account.profile, access_key_id=BASE_KEY, secret_access_key=BASE_SECRET,
                                  role_arn=f"arn:aws:iam::{account.account_id}:role/finops-reader",
                                  external_id="finops-ext-1")
    return ProfileCredentials(name=account.profile, access_key_id=creds["AccessKeyId"],
                              secret_access_key=creds["SecretAccessKey"], session_token=creds["SessionToken"])


@pytest.fixture(scope="module")
def profiles(moto_url: str) -> dict[str, ProfileCredentials]:
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    return {account.profile: _seed(moto_url, account) for account in ACCOUNTS}


@pytest.fixture(scope="module")
def runner(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    base = tmp_path_factory.mktemp("runner")
    return CliRunner(RunnerConfig(endpoint_url=moto_url, timeout_seconds=120, scratch_root=base,
                                  output_root=base, extra_env=OFFLINE))


@pytest.fixture(scope="module")
def finops(runner: CliRunner, profiles: dict[str, ProfileCredentials]) -> dict[str, Any]:
    """Cost, then trend, then audit for every profile: in this order, as moto's Cost Explorer queue expects."""
    names = [a.profile for a in ACCOUNTS]
    progress: list[tuple[int, str]] = []
    cost = list(run_aws_finops_per_profile(
        runner=runner, command=AwsFinopsCost(profiles=names, regions=REGIONS, time_range_days=30,
                                             report_types=["csv", "json"]),
        profiles=list(profiles.values()), on_progress=lambda pct, step: progress.append((pct, step))))
    trend = list(run_aws_finops_per_profile(runner=runner, command=AwsFinopsTrend(profiles=names),
                                            profiles=list(profiles.values())))
    audit = list(run_aws_finops_per_profile(runner=runner, command=AwsFinopsAudit(profiles=names, regions=REGIONS),
                                            profiles=list(profiles.values())))
    return {"cost": cost, "trend": trend, "audit": audit, "progress": progress}


def _by_profile(results: list[FinopsProfileResult]) -> dict[str, FinopsProfileResult]:
    assert all(r.status == "succeeded" for r in results), [(r.profile, r.reason, r.run.stdout) for r in results]
    return {r.profile: r for r in results}


def _cents(amounts: dict[str, Decimal]) -> dict[str, Decimal]:
    """aws-finops adds amounts as floats: compare to the cent."""
    return {key: value.quantize(CENT) for key, value in amounts.items()}


@pytest.mark.parametrize("account", ACCOUNTS, ids=lambda a: a.profile)
def test_cost_per_profile_equals_the_seeded_costs(finops, account):
    result = _by_profile(finops["cost"])[account.profile]
    report = result.report
    assert result.account_id == report.account_id == account.account_id
    current, previous = account.by_service(account.current_daily), account.by_service(account.previous_daily)
    assert _cents(report.current_by_service) == current
    assert _cents(report.previous_by_service) == previous
    assert report.current_total.quantize(CENT) == sum(current.values(), Decimal(0))
    assert report.previous_total.quantize(CENT) == sum(previous.values(), Decimal(0))
    assert report.current_period_name == "Current 30 days cost"
    instances = [state for per_region in account.instances.values() for state, _ in per_region]
    assert report.ec2_instances_by_state == {"running": instances.count("running"),
                                             "stopped": instances.count("stopped")}
    budget_names = {line.split(" limit:")[0] for line in report.budget_lines if " limit:" in line}
    assert budget_names == set(account.budgets)
    assert sorted(f.suffix for f in result.files) == [".csv", ".json"]
    assert result.errors == ()


def test_profiles_ran_in_groups_led_by_the_keyless_profile_each_in_its_own_output_dir_with_progress(finops):
    cost = finops["cost"]
    assert len({r.run.output_dir for r in cost}) == 3  # 3 profiles, up to 4 at once: a group each
    assert [r.run.argv[r.run.argv.index("--profiles") + 1:][:3] for r in cost] == \
        [("_sample", "alpha", "--regions"), ("_sample", "bravo", "--regions"), ("_sample", "charlie", "--regions")]
    assert all(r.run.argv[r.run.argv.index("--regions") + 1:][:2] == tuple(REGIONS) for r in cost)
    steps = finops["progress"]
    assert steps[0] == (0, "profile alpha (1/3)") and steps[-1] == (100, "profile charlie: succeeded")
    assert [pct for pct, _ in steps] == sorted(pct for pct, _ in steps)


@pytest.mark.parametrize("account", ACCOUNTS, ids=lambda a: a.profile)
def test_trend_per_profile_equals_the_seeded_months(finops, account):
    report = _by_profile(finops["trend"])[account.profile].report
    assert report.account_id == account.account_id
    assert list(report.monthly_costs) == [(dt.date.fromisoformat(start).strftime("%b %Y"), amount)
                                          for start, amount in account.trend]


@pytest.mark.parametrize("account", ACCOUNTS, ids=lambda a: a.profile)
def test_audit_per_profile_lists_the_seeded_resources(finops, account):
    report = _by_profile(finops["audit"])[account.profile].report
    seeded = account.seeded
    assert report.account_id == account.account_id
    assert report.stopped_instances == {r: tuple(ids) for r, ids in seeded["stopped"].items()}
    assert report.untagged_resources == {"EC2": {r: tuple(ids) for r, ids in seeded["untagged"].items()},
                                         "RDS": {}, "Lambda": {}, "ELBv2": {}}
    assert {r: sorted(ids) for r, ids in report.unused_volumes.items()} == \
        {r: sorted(ids) for r, ids in seeded["volumes"].items()}
    assert {r: sorted(ips) for r, ips in report.unused_eips.items()} == \
        {r: sorted(ips) for r, ips in seeded["eips"].items()}
    assert {b.name: b.limit for b in report.budgets} == account.budgets
    assert report.budget_alerts == ()


def test_a_run_whose_aws_calls_all_fail_exits_0_and_is_judged_failed(profiles, tmp_path):
    unreachable = CliRunner(RunnerConfig(endpoint_url=f"http://127.0.0.1:{_free_port()}", timeout_seconds=120,
                                         scratch_root=tmp_path, output_root=tmp_path,
                                         extra_env={**OFFLINE, "AWS_MAX_ATTEMPTS": "1"}))
    [result] = run_aws_finops_per_profile(runner=unreachable, command=AwsFinopsCost(profiles=["alpha"]),
                                          profiles=[profiles["alpha"]])
    assert (result.run.status, result.run.exit_code) == ("succeeded", 0)
    assert result.status == "failed"
    assert result.reason.startswith("aws-finops could not identify the account")
    assert result.report.account_id == "Unknown"
    assert any(e.startswith("Error getting current period cost") for e in result.errors)


# --- the curated aws CLI commands -----------------------------------------------------------


@pytest.fixture(scope="module")
def aws_runner(runner: CliRunner) -> CliRunner:
    if runner.available_programs()["aws"] is None:
        pytest.skip("the aws CLI is not installed (pip install 'awscli>=1.46,<2')")
    return runner


@pytest.mark.parametrize("account", ACCOUNTS, ids=lambda a: a.profile)
def test_aws_cli_identifies_each_seeded_account(aws_runner, profiles, account):
    result = aws_runner.run(AwsStsGetCallerIdentity(profile=account.profile), profiles=[profiles[account.profile]])
    assert parse_aws_json(result)["Account"] == account.account_id


def test_aws_cli_lists_the_seeded_instances_volumes_and_budgets(aws_runner, profiles):
    bravo = next(a for a in ACCOUNTS if a.profile == "bravo")
    supplied = [profiles["bravo"]]
    stopped = parse_aws_json(aws_runner.run(
        AwsEc2DescribeInstances(profile="bravo", region="eu-west-1", states=["stopped"]), profiles=supplied))
    assert sorted(i["InstanceId"] for r in stopped["Reservations"] for i in r["Instances"]) == \
        sorted(bravo.seeded["stopped"]["eu-west-1"])
    volumes = parse_aws_json(aws_runner.run(
        AwsEc2DescribeVolumes(profile="bravo", region="eu-west-1", statuses=["available"]), profiles=supplied))
    assert sorted(v["VolumeId"] for v in volumes["Volumes"]) == sorted(bravo.seeded["volumes"]["eu-west-1"])
    budgets = parse_aws_json(aws_runner.run(
        AwsBudgetsDescribeBudgets(profile="bravo", account_id=bravo.account_id), profiles=supplied))
    assert {b["BudgetName"]: Decimal(b["BudgetLimit"]["Amount"]) for b in budgets["Budgets"]} == bravo.budgets


def test_aws_cli_cost_and_usage_returns_the_seeded_result(aws_runner, moto_url):
    creds = _assumed(moto_url, "444444444444")  # its own account: its own Cost Explorer queue
    seeded = _ce_daily({"Amazon EC2": [Decimal("1.25"), Decimal("2.50")]})
    requests.post(f"{moto_url}/moto-api/static/ce/cost-and-usage-results", timeout=10,
                  json={"results": [seeded], "account_id": "444444444444"}).raise_for_status()
    profile = ProfileCredentials(name="delta", access_key_id=creds["AccessKeyId"],
                                 secret_access_key=creds["SecretAccessKey"], session_token=creds["SessionToken"])
    result = aws_runner.run(AwsCeGetCostAndUsage(profile="delta", start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 3),
                                                 granularity="DAILY", group_by="SERVICE"), profiles=[profile])
    body = parse_aws_json(result)
    assert [[(g["Keys"][0], g["Metrics"]["UnblendedCost"]["Amount"]) for g in day["Groups"]]
            for day in body["ResultsByTime"]] == [[("Amazon EC2", "1.25")], [("Amazon EC2", "2.50")]]
