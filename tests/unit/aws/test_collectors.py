"""Collections against a real moto server: costs from Cost Explorer to the cent, incrementally and
at a flat request count; budgets, inventory, utilisation and accounts. The Cost Explorer APIs
moto lacks (forecast, anomalies, RI/SP reports, purchase and rightsizing advice) are tested with
botocore's Stubber in test_cost_explorer and test_commitments."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import boto3
import pytest
import requests
from botocore.client import BaseClient
from botocore.config import Config
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import func, select

from models import (
    AuditLog,
    AwsAccount,
    Budget,
    CollectionRun,
    CostDimensionDaily,
    CostFact,
    Resource,
    ResourceUtilisation,
)
from models.types import money_sum
from services import validation
from services.aws import collectors, profiles
from services.errors import InvalidInput, NotFound
from services.identity.permissions import Actor

ADMIN = Actor(user_id=None, username="root", roles=frozenset({"admin"}))
ENGINEER = Actor(user_id=999, username="eng", roles=frozenset({"engineering"}))
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
TODAY = dt.date(2025, 3, 10)
MARCH, FEBRUARY = dt.date(2025, 3, 1), dt.date(2025, 2, 1)
TEN = Decimal("1E-10")
IMAGE = "ami-0abcdef1234567890"  # moto launches any image id; listing its images takes seconds

#: What Cost Explorer answers per grouping, in the order the collector asks (LINKED_ACCOUNT first).
VALUES = {
    "SERVICE": ("Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service"),
    "REGION": ("eu-west-1", "NoRegion"),
    "USAGE_TYPE": ("EUW1-BoxUsage:m5.large", "EUW1-TimedStorage-ByteHrs"),
    "RECORD_TYPE": ("Usage", "Tax"),
    "TAG:team": ("team$platform", "team$"),
    "TAG:cost-center": ("cost-center$cc-100", "cost-center$"),
    "TAG:environment": ("environment$prod", "environment$"),
}
GROUPINGS = tuple(VALUES)
DIMENSIONS = {"REGION": "region", "USAGE_TYPE": "usage_type", "RECORD_TYPE": "charge_category",
              "TAG:team": "tag:team", "TAG:cost-center": "tag:cost-center", "TAG:environment": "tag:environment"}


# -- arranging: profiles, and Cost Explorer answers seeded in moto -------------------------------


def _source_profile(session) -> int:
    data = validation.parse(profiles.ProfileCreate, {"name": "source", "access_key_id": KEY_ID,
                                                   "secret_access_key": SECRET})
    return profiles.create_profile(session, actor=ADMIN, data=data).id  # type: ignore[arg-type]


def _role_profile(session, source_id: int, account: str, *, regions: tuple[str, ...] = ("us-east-1",),
                  **extra: object) -> int:
    data = validation.parse(profiles.ProfileCreate, {
        "name": f"acct-{account}", "auth_type": "assume_role", "role_arn": f"arn:aws:iam::{account}:role/FinOpsRead",
        "source_profile_id": source_id, "default_regions": list(regions), "is_payer": True, **extra})
    return profiles.create_profile(session, actor=ADMIN, data=data).id  # type: ignore[arg-type]


def _aws(moto: str, account: str, service: str, region: str = "eu-west-1"):  # type: ignore[no-untyped-def]
    """A boto3 client acting inside ``account`` of the moto server (to arrange what AWS holds)."""
    sts = boto3.client("sts", region_name=region, endpoint_url=moto, aws_access_key_id=KEY_ID,
                       aws_secret_access_key=SECRET)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/Setup", RoleSessionName="setup")["Credentials"]
    return boto3.client(service, region_name=region, endpoint_url=moto, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def _total(account: str, day: dt.date, scale: Decimal) -> Decimal:
    return ((Decimal(int(account[-4:]) % 89 + 3) * Decimal("1.0370370371") + day.day * Decimal("0.2500000001"))
            * scale).quantize(TEN)


def _metrics(amount: Decimal) -> dict[str, dict[str, str]]:
    return {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"},
            "AmortizedCost": {"Amount": str((amount * Decimal("0.9")).quantize(TEN)), "Unit": "USD"},
            "NetUnblendedCost": {"Amount": str((amount * Decimal("0.97")).quantize(TEN)), "Unit": "USD"},
            "UsageQuantity": {"Amount": str(amount * 3), "Unit": "N/A"}}


def _answer(grouping: str, start: dt.date, end: dt.date, accounts: list[str], *, estimated: bool,
            scale: Decimal = Decimal(1), pages: int = 1) -> list[dict]:
    """Cost Explorer's answer, as pages: every account-day's total split 70/30 over two values."""
    days = [start + dt.timedelta(days=n) for n in range((end - start).days)]
    by_day = []
    for day in days:
        groups = []
        for account in accounts:
            total = _total(account, day, scale)
            first = (total * Decimal("0.7")).quantize(TEN)
            for value, amount in zip(VALUES[grouping], (first, total - first), strict=True):
                groups.append({"Keys": [account, value], "Metrics": _metrics(amount)})
        by_day.append((day, groups))
    key_type = "TAG" if grouping.startswith("TAG:") else "DIMENSION"
    answers = []
    for page in range(pages):
        results = []
        for day, groups in by_day:
            size = -(-len(groups) // pages)
            results.append({"TimePeriod": {"Start": day.isoformat(), "End": (day + dt.timedelta(days=1)).isoformat()},
                            "Total": {}, "Groups": groups[page * size:(page + 1) * size],
                            "Estimated": estimated and day >= end - dt.timedelta(days=3)})
        answer = {"GroupDefinitions": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
                                       {"Type": key_type, "Key": grouping.removeprefix("TAG:")}],
                  "ResultsByTime": results,
                  "DimensionValueAttributes": [{"Value": a, "Attributes": {"description": f"name-{a}"}}
                                               for a in accounts]}
        if page < pages - 1:
            answer["NextPageToken"] = f"{grouping}-page-{page + 2}"
        answers.append(answer)
    return answers


def _seed(moto: str, account: str, answers: list[dict]) -> None:
    response = requests.post(f"{moto}/moto-api/static/ce/cost-and-usage-results",
                             json={"results": answers, "account_id": account}, timeout=60)
    assert response.status_code == 201


def _seed_months(moto: str, payer: str, accounts: list[str], months: list[tuple[dt.date, dt.date, bool]], *,
                 scale: Decimal = Decimal(1), pages: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """Seed every request of every month in the order the collector makes them; return them by grouping."""
    seeded: dict[str, list[dict]] = defaultdict(list)
    ordered = []
    for start, end, estimated in months:
        for grouping in GROUPINGS:
            answers = _answer(grouping, start, end, accounts, estimated=estimated, scale=scale,
                              pages=(pages or {}).get(grouping, 1))
            seeded[grouping] += answers
            ordered += answers
    _seed(moto, payer, ordered)
    return seeded


def _seeded_sums(answers: list[dict], metric: str, *, by_value: bool = False) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for answer in answers:
        for result in answer["ResultsByTime"]:
            for group in result["Groups"]:
                key = group["Keys"][1] if by_value else group["Keys"][0]
                sums[key] += Decimal(group["Metrics"][metric]["Amount"])
    return dict(sums)


def _fact_sums(session, payer: str, column: str = "unblended_cost") -> dict[str, Decimal]:
    return dict(session.execute(
        select(CostFact.usage_account_id, money_sum(getattr(CostFact, column)))
        .where(CostFact.payer_account_id == payer).group_by(CostFact.usage_account_id)).all())


def _collect(session, moto: str, profile_id: int, **kwargs: object) -> collectors.CollectionSummary:
    values: dict[str, object] = {"kinds": {"costs"}, "today": TODAY, "history_months": 2, **kwargs}
    return collectors.collect_profile(session, actor=ADMIN, profile_id=profile_id, endpoint_url=moto,
                                      **values)  # type: ignore[arg-type]


# -- costs against moto ----------------------------------------------------------------------------


def test_costs_of_three_payers_reproduce_what_cost_explorer_said_to_the_cent(session, moto):
    payers = {"111111111111": ["111111110001", "111111110002"], "222222222222": ["222222220001"],
              "333333333333": ["333333330001", "333333330002", "333333330003"]}
    months = [(MARCH, TODAY, True), (FEBRUARY, MARCH, False)]
    seeded = {payer: _seed_months(moto, payer, [payer, *linked], months) for payer, linked in payers.items()}
    source = _source_profile(session)
    ids = {payer: _role_profile(session, source, payer) for payer in payers}
    steps: list[tuple[int, str]] = []

    summaries = {payer: _collect(session, moto, ids[payer],
                                 on_progress=(lambda *step: steps.append(step)) if payer == "111111111111" else None)
                 for payer in payers}

    for payer, summary in summaries.items():
        assert (summary.status, summary.account_id, summary.errors) == ("succeeded", payer, {})
        assert (summary.ce_requests, summary.ce_pages, summary.ce_cost) == (14, 0, Decimal("0.14"))
        assert summary.periods_collected == (MARCH, FEBRUARY)
        for metric, column in (("UnblendedCost", "unblended_cost"), ("AmortizedCost", "amortized_cost"),
                               ("NetUnblendedCost", "net_cost"), ("UnblendedCost", "list_cost")):
            assert _fact_sums(session, payer, column) == _seeded_sums(seeded[payer]["SERVICE"], metric)
        for grouping, dimension in DIMENSIONS.items():
            stored = dict(session.execute(
                select(CostDimensionDaily.value, money_sum(CostDimensionDaily.unblended_cost))
                .where(CostDimensionDaily.payer_account_id == payer, CostDimensionDaily.dimension == dimension)
                .group_by(CostDimensionDaily.value)).all())
            expected = _seeded_sums(seeded[payer][grouping], "UnblendedCost", by_value=True)
            assert stored == {v.partition("$")[2] if grouping.startswith("TAG:") else v: s
                              for v, s in expected.items()}
    assert session.scalar(select(func.count()).select_from(CostFact)) == sum(
        len(a["Groups"]) for s in seeded.values() for answer in s["SERVICE"] for a in answer["ResultsByTime"])
    team_values = session.scalars(select(CostDimensionDaily.value).where(CostDimensionDaily.dimension == "tag:team"))
    assert set(team_values) == {"platform", ""}  # "team$" is untagged
    assert session.get(AwsAccount, "333333330002").name == "name-333333330002"
    run = session.get(CollectionRun, summaries["111111111111"].run_id)
    assert (run.status, run.ce_requests, run.ce_pages, run.ce_cost, run.rows_written) == (
        "succeeded", 14, 0, Decimal("0.14"), summaries["111111111111"].rows_written)
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "collection.run")) == 3
    assert steps == [(0, "Signing in to AWS"), (0, "Costs of March 2025"), (50, "Costs of February 2025"),
                     (100, "Finished")]


def test_a_second_run_the_same_day_asks_only_for_the_open_month_and_duplicates_nothing(session, moto):
    payer = "444444444444"
    seeded = _seed_months(moto, payer, [payer, "444444440001"], [(MARCH, TODAY, True), (FEBRUARY, MARCH, False)])
    profile_id = _role_profile(session, _source_profile(session), payer)
    first = _collect(session, moto, profile_id)
    facts = session.scalar(select(func.count()).select_from(CostFact))
    dimension_rows = session.scalar(select(func.count()).select_from(CostDimensionDaily))

    again = _collect(session, moto, profile_id)

    assert (first.ce_requests, again.ce_requests, again.ce_cost) == (14, 7, Decimal("0.07"))
    assert (again.periods_collected, again.periods_skipped) == ((MARCH,), (FEBRUARY,))
    assert session.scalar(select(func.count()).select_from(CostFact)) == facts
    assert session.scalar(select(func.count()).select_from(CostDimensionDaily)) == dimension_rows
    assert _fact_sums(session, payer) == _seeded_sums(seeded["SERVICE"], "UnblendedCost")


def test_a_closed_month_is_collected_again_while_estimated_and_skipped_once_final(session, moto):
    payer = "555555555555"
    _seed_months(moto, payer, [payer], [(MARCH, TODAY, True), (FEBRUARY, MARCH, True)])
    profile_id = _role_profile(session, _source_profile(session), payer)
    estimated = [_collect(session, moto, profile_id) for _ in range(2)]
    requests.post(f"{moto}/moto-api/reset", timeout=10)  # AWS finalises February, a little higher
    final = _seed_months(moto, payer, [payer], [(MARCH, TODAY, True), (FEBRUARY, MARCH, False)],
                         scale=Decimal("1.01"))

    finalised = _collect(session, moto, profile_id)
    later = _collect(session, moto, profile_id)

    assert [s.ce_requests for s in (*estimated, finalised, later)] == [14, 14, 14, 7]
    assert [s.periods_skipped for s in (*estimated, finalised, later)] == [(), (), (), (FEBRUARY,)]
    assert _fact_sums(session, payer) == _seeded_sums(final["SERVICE"], "UnblendedCost")


def test_a_collection_stopped_midway_keeps_the_finished_months_and_the_next_run_completes_it(session, moto):
    payer = "565656565656"
    broken = _seed_months(moto, payer, [payer], [(MARCH, TODAY, True)])
    garbled = _answer("SERVICE", FEBRUARY, MARCH, [payer], estimated=False)
    garbled[0]["ResultsByTime"][3]["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"] = "n/a"
    _seed(moto, payer, garbled)
    profile_id = _role_profile(session, _source_profile(session), payer)

    stopped = _collect(session, moto, profile_id)
    march_only = _fact_sums(session, payer)
    requests.post(f"{moto}/moto-api/reset", timeout=10)
    complete = _seed_months(moto, payer, [payer], [(MARCH, TODAY, True), (FEBRUARY, MARCH, False)])
    resumed = _collect(session, moto, profile_id)

    assert (stopped.status, stopped.periods_collected, stopped.ce_requests) == ("partial", (MARCH,), 14)
    assert stopped.errors["costs"].startswith("Costs: the collection failed unexpectedly (ValueError)")
    assert march_only == _seeded_sums(broken["SERVICE"], "UnblendedCost")
    assert (resumed.status, resumed.periods_collected) == ("succeeded", (MARCH, FEBRUARY))
    assert _fact_sums(session, payer) == _seeded_sums(complete["SERVICE"], "UnblendedCost")


def test_a_payer_of_200_accounts_needs_no_more_requests_than_one_of_3_pages_aside(session, moto):
    today = dt.date(2025, 3, 4)
    small, big = "666666666666", "777777777777"
    small_accounts = [small, "666666660001", "666666660002"]
    big_accounts = [big] + [f"7777777{n:05d}" for n in range(1, 200)]
    _seed_months(moto, small, small_accounts, [(MARCH, today, True)])
    seeded = _seed_months(moto, big, big_accounts, [(MARCH, today, True)], pages={"SERVICE": 3, "REGION": 2})
    source = _source_profile(session)
    small_id, big_id = _role_profile(session, source, small), _role_profile(session, source, big)

    few = _collect(session, moto, small_id, today=today, history_months=1)
    many = _collect(session, moto, big_id, today=today, history_months=1)

    assert (few.ce_requests, few.ce_pages, few.ce_cost) == (7, 0, Decimal("0.07"))
    assert (many.ce_requests, many.ce_pages, many.ce_cost) == (10, 3, Decimal("0.10"))
    assert many.ce_requests_without_pages == few.ce_requests_without_pages == 7
    assert len(_fact_sums(session, big)) == 200
    assert _fact_sums(session, big) == _seeded_sums(seeded["SERVICE"], "UnblendedCost")


def test_a_failing_kind_is_explained_and_the_kinds_that_worked_are_kept(session, moto):
    payer = "888888888888"
    seeded = _seed_months(moto, payer, [payer], [(MARCH, TODAY, True), (FEBRUARY, MARCH, False)])
    profile_id = _role_profile(session, _source_profile(session), payer)

    # moto has no GetCostForecast: it answers HTTP 500, which no retry cures (one attempt keeps it quick)
    summary = _collect(session, moto, profile_id, kinds={"costs", "forecast"},
                       client_config=Config(retries={"mode": "standard", "max_attempts": 1}))

    assert summary.status == "partial" and set(summary.errors) == {"forecast"}
    assert summary.errors["forecast"] == "Forecast: AWS could not answer GetCostForecast (HTTP 500). Try again later."
    assert _fact_sums(session, payer) == _seeded_sums(seeded["SERVICE"], "UnblendedCost")
    assert (summary.ce_requests, summary.rows_by_kind["costs"]) == (15, summary.rows_written)
    run = session.get(CollectionRun, summary.run_id)
    assert run.status == "partial" and run.error.startswith("Forecast:") and run.finished_at is not None
    event = session.scalar(select(AuditLog).where(AuditLog.action == "collection.run"))
    assert event.outcome == "failure" and event.details["failed_kinds"] == ["forecast"]


def test_the_jobs_soft_time_limit_inside_a_step_stops_the_collection(session, moto, monkeypatch):
    # Celery raises SoftTimeLimitExceeded wherever the job is at that moment: here, in a call to AWS.
    real_call = BaseClient._make_api_call
    operations: list[str] = []

    def call(client, operation, params):  # type: ignore[no-untyped-def]
        operations.append(operation)
        if operation == "DescribeBudgets":
            raise SoftTimeLimitExceeded()
        return real_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    profile_id = _role_profile(session, _source_profile(session), "777777777777")

    with pytest.raises(SoftTimeLimitExceeded):
        _collect(session, moto, profile_id, kinds={"budgets", "inventory"})

    assert "DescribeBudgets" in operations and "DescribeInstances" not in operations


def test_a_linked_profile_leaves_costs_to_its_payer_profile(session, moto):
    source = _source_profile(session)
    payer_id = _role_profile(session, source, "999999999999")
    linked_id = _role_profile(session, source, "999999990001", is_payer=False, payer_profile_id=payer_id)

    summary = _collect(session, moto, linked_id)

    assert (summary.status, summary.ce_requests) == ("succeeded", 0)
    assert "acct-999999999999" in summary.notes["costs"]


def test_wrong_input_and_profiles_out_of_reach_are_refused(session):
    profile_id = _source_profile(session)
    with pytest.raises(InvalidInput, match="kinds"):
        collectors.collect_profile(session, actor=ADMIN, profile_id=profile_id, kinds={"costs", "bills"}, today=TODAY)
    with pytest.raises(InvalidInput, match="history_months"):
        collectors.collect_profile(session, actor=ADMIN, profile_id=profile_id, kinds={"costs"}, today=TODAY,
                                   history_months=15)
    with pytest.raises(NotFound):
        collectors.collect_profile(session, actor=ENGINEER, profile_id=profile_id, kinds={"costs"}, today=TODAY)
    assert session.scalar(select(func.count()).select_from(CollectionRun)) == 0


# -- budgets, inventory, utilisation, accounts against moto -----------------------------------------


def test_budgets_and_organisation_accounts_are_upserted(session, moto):
    payer = "121212121212"
    budgets = _aws(moto, payer, "budgets", "us-east-1")
    budgets.create_budget(AccountId=payer, Budget={
        "BudgetName": "Platform monthly", "BudgetLimit": {"Amount": "1500.25", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST",
        "CostFilters": {"LinkedAccount": ["121212120001"], "TagKeyValue": ["user:team$platform"]}})
    budgets.create_budget(AccountId=payer, Budget={
        "BudgetName": "Organisation", "BudgetLimit": {"Amount": "90000", "Unit": "USD"}, "TimeUnit": "ANNUALLY",
        "BudgetType": "COST"})
    budgets.create_budget(AccountId=payer, Budget={
        "BudgetName": "Daily guard", "BudgetLimit": {"Amount": "50", "Unit": "USD"}, "TimeUnit": "DAILY",
        "BudgetType": "COST"})
    organizations = _aws(moto, payer, "organizations", "us-east-1")
    organizations.create_organization(FeatureSet="ALL")
    organizations.create_account(AccountName="data-platform", Email="data@example.com")
    profile_id = _role_profile(session, _source_profile(session), payer)

    first = _collect(session, moto, profile_id, kinds={"budgets", "accounts"})
    assert session.scalar(select(Budget.scope).where(Budget.name == "Platform monthly")) == {
        "usage_account_id": ["121212120001"], "team": ["platform"]}
    budgets.delete_budget(AccountId=payer, BudgetName="Platform monthly")  # moto has no UpdateBudget
    budgets.create_budget(AccountId=payer, Budget={
        "BudgetName": "Platform monthly", "BudgetLimit": {"Amount": "1750", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST", "CostFilters": {"LinkedAccount": ["121212120001"]}})
    again = _collect(session, moto, profile_id, kinds={"budgets"})

    assert (first.status, first.ce_requests, again.status) == ("succeeded", 0, "succeeded")
    rows = {b.name: b for b in session.scalars(select(Budget))}
    assert sorted(rows) == ["Organisation", "Platform monthly"] and "Daily guard" in first.notes["budgets"]
    assert (rows["Platform monthly"].amount, rows["Platform monthly"].period, rows["Platform monthly"].source) == (
        Decimal("1750"), "monthly", "aws")
    assert rows["Platform monthly"].scope == {"usage_account_id": ["121212120001"]}
    assert (rows["Organisation"].period, rows["Organisation"].ends_on) == ("annual", None)
    assert rows["Organisation"].scope == {"payer_account_id": [payer]}
    names = {a.name: a for a in session.scalars(select(AwsAccount))}
    assert names["data-platform"].email == "data@example.com" and names["data-platform"].payer_account_id == payer


def test_inventory_and_cpu_utilisation_come_from_ec2_rds_elb_and_cloudwatch(session, moto):
    account, today = "343434343434", dt.datetime.now(dt.UTC).date()
    ec2, cloudwatch = _aws(moto, account, "ec2"), _aws(moto, account, "cloudwatch")
    web = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=IMAGE, MinCount=2, MaxCount=2, InstanceType="m5.large",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}])["Instances"]]
    east = _aws(moto, account, "ec2", "us-east-1")
    east_id = east.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    volume = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=50, VolumeType="gp3")["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    _aws(moto, account, "rds").create_db_instance(
        DBInstanceIdentifier="orders-db", DBInstanceClass="db.r6g.large", Engine="postgres", MasterUsername="app",
        MasterUserPassword="secret-password", AllocatedStorage=100)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    balancer = _aws(moto, account, "elbv2").create_load_balancer(Name="web-alb", Subnets=subnets)
    for days_ago in (1, 2, 3):
        stamp = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(12), dt.UTC)
        for target, dimension, namespace, low in ((web[0], "InstanceId", "AWS/EC2", 10),
                                                  ("orders-db", "DBInstanceIdentifier", "AWS/RDS", 50)):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=[
                {"MetricName": "CPUUtilization", "Dimensions": [{"Name": dimension, "Value": target}],
                 "Timestamp": stamp + dt.timedelta(minutes=m), "Value": low + days_ago + spread}
                for m, spread in ((0, 0), (5, 20))])
    profile_id = _role_profile(session, _source_profile(session), account, regions=("eu-west-1", "us-east-1"))

    first = _collect(session, moto, profile_id, kinds={"inventory", "utilisation"}, today=today)
    ec2.terminate_instances(InstanceIds=[web[1]])
    ec2.delete_volume(VolumeId=volume)
    ec2.release_address(AllocationId=address)
    again = _collect(session, moto, profile_id, kinds={"inventory"}, today=today)

    assert (first.status, again.status, first.ce_requests) == ("succeeded", "succeeded", 0)
    rows = {r.resource_id: r for r in session.scalars(select(Resource))}
    by_type = defaultdict(set)
    for row in rows.values():
        by_type[row.resource_type].add(row.resource_id)
    assert by_type["ec2_instance"] == {*web, east_id["InstanceId"]}
    assert by_type["ebs_snapshot"] == {snapshot}  # not the AMIs' snapshots moto also lists
    assert by_type["elastic_ip"] == {address} and by_type["rds_instance"] == {"orders-db"}
    assert by_type["load_balancer"] == {balancer["LoadBalancers"][0]["LoadBalancerArn"]}
    assert volume in by_type["ebs_volume"]
    assert (rows[web[0]].name, rows[web[0]].size, rows[web[0]].region) == ("web", "m5.large", "eu-west-1")
    assert rows[east_id["InstanceId"]].region == "us-east-1"
    assert (rows[web[1]].state, rows[volume].state, rows[address].state) == ("terminated", "deleted", "deleted")
    assert rows["orders-db"].size == "db.r6g.large" and rows[volume].attributes["size_gib"] == 50
    usage = {(u.resource_pk, u.usage_date): (u.cpu_avg, u.cpu_max)
             for u in session.scalars(select(ResourceUtilisation))}
    for resource, low in ((web[0], 10), ("orders-db", 50)):
        for days_ago in (1, 2, 3):
            assert usage[(rows[resource].id, today - dt.timedelta(days=days_ago))] == (
                Decimal(low + days_ago + 10), Decimal(low + days_ago + 20))
    assert len(usage) == 6 and first.rows_by_kind["utilisation"] == 6
