"""The data page in a browser: add a profile, test it against AWS (moto), collect its costs (moto),
import a FOCUS file by upload and from S3 (moto)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import re
import uuid
from decimal import Decimal

import boto3
import pytest
from playwright.sync_api import expect

from services.aws import collectors, cost_explorer
from tests.e2e.test_browser import sign_in
from tests.integration.test_aws_finops import BASE_KEY, BASE_SECRET
from tests.stacks import http_session
from tests.unit.aws.test_collectors import _seed_months, _seeded_sums
from tests.unit.imports.test_importers import SAMPLE

pytestmark = pytest.mark.e2e


def _field(page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f"[id*='\"name\":\"{name}\"']").first


def test_add_a_profile_and_test_its_connection(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/data")
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    _field(page, "name").fill(name)
    _field(page, "access_key_id").fill("AKIAIOSFODNN7EXAMPLE")
    _field(page, "secret_access_key").fill("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    page.click("#profile-save")
    expect(page.locator("#profile-message")).to_contain_text(f"Profile '{name}' saved")
    page.goto(f"{stack.base_url}/data")
    expect(page.locator("#profiles-table")).to_contain_text("AKIA…MPLE")
    expect(page.locator("#profiles-table")).not_to_contain_text("wJalrXUtnFEMI")
    page.locator("#profile-select").click()
    page.get_by_role("option", name=name).click()
    page.click("#profile-test")
    expect(page.locator("#profile-action-message")).to_contain_text("Connected to account 123456789012")


def test_bad_profile_input_is_explained(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/data")
    _field(page, "name").fill("bad")
    _field(page, "access_key_id").fill("not-a-key")
    _field(page, "secret_access_key").fill("x" * 40)
    page.click("#profile-save")
    expect(page.locator("#profile-message .alert-danger")).to_contain_text("access_key_id")


def test_collect_a_profile_and_see_what_cost_explorer_said_on_the_overview(page, stack, moto):
    # What Cost Explorer (moto) answers for the months a first collection asks for, newest first:
    # a payer and two linked accounts.
    today = dt.datetime.now(dt.UTC).date()
    periods, _ = cost_explorer.plan_cost_periods(today=today, history_months=collectors.MAX_HISTORY_MONTHS, states={},
                                              dimensions=())
    payer = "123456789012"  # the account of the stack's base credentials in moto
    accounts = [payer, "123456780001", "123456780002"]
    seeded = _seed_months(moto, payer, accounts,
                          [(p.start, p.end, p.is_open) for p in periods])
    name = f"payer-{uuid.uuid4().hex[:6]}"
    created = http_session(stack).post(f"{stack.base_url}/api/v1/profiles/", timeout=30, json={
        "name": name, "access_key_id": BASE_KEY, "secret_access_key": BASE_SECRET,
        "default_regions": ["us-east-1"], "is_payer": True})
    assert created.status_code == 201, created.text

    sign_in(page, stack)
    page.goto(f"{stack.base_url}/data")
    page.locator("#profile-select").click()
    page.get_by_role("option", name=name).click()
    page.click("#profile-collect")
    message = page.locator("#profile-action-message .alert")
    expect(message).to_contain_text("started as job #")
    message.get_by_role("link", name="Watch it").click()
    # Forecasts, anomalies, commitments and rightsizing are not in moto: those kinds are explained
    # in the log and the rest is kept.
    expect(page.locator("#job-detail-status")).to_contain_text("succeeded", timeout=120_000)
    log = page.locator("#job-detail-log")
    # Every request a month of costs needs (seven groupings), and one each for the four kinds that
    # moto does not answer, which count as asked.
    requests = len(periods) * len(cost_explorer.cost_groupings(collectors.DEFAULT_TAG_KEYS)) + 4
    expect(log).to_contain_text(f"Cost Explorer: {requests} billable request(s), 0 of them follow-up pages: "
                                f"USD {Decimal(requests) / 100:.2f}")
    expect(log).to_contain_text("forecast: Forecast: AWS could not answer GetCostForecast")

    # The last closed month of these accounts on the overview, to the cent (the embedded stack
    # also holds demo data).
    month = periods[1].start
    end = periods[1].end - dt.timedelta(days=1)
    answers = [a for a in seeded["SERVICE"]
               if a["ResultsByTime"][0]["TimePeriod"]["Start"].startswith(f"{month:%Y-%m}")]
    total = sum(_seeded_sums(answers, "UnblendedCost").values(), Decimal(0))
    page.goto(f"{stack.base_url}/?start={month.isoformat()}&end={end.isoformat()}")
    page.locator("#overview-accounts").click()
    for account in accounts:  # the list stays open while several are chosen
        page.get_by_role("option", name=re.compile(account)).click()
    expect(page.locator("#overview-total")).to_contain_text(
        f"${total:,.2f} from {month:%d %b %Y} to {end:%d %b %Y}")


def test_upload_a_focus_file_and_watch_its_import(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/data")
    page.locator("#import-upload input[type=file]").set_input_files(str(SAMPLE))
    message = page.locator("#import-message .alert")
    expect(message).to_contain_text("started as job #")
    job_id = re.search(r"job #(\d+)", message.inner_text()).group(1)
    message.get_by_role("link", name="Watch it").click()
    expect(page.locator("h1")).to_contain_text(f"Job #{job_id}")
    expect(page.locator("#job-detail-status")).to_contain_text("succeeded", timeout=90_000)
    expect(page.locator("#job-detail-step")).to_contain_text("Imported 1,000 rows")

    # And there it is on the overview, linked to the file's months: every provider, to the cent.
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        total = sum((Decimal(r["BilledCost"]) for r in csv.DictReader(fh)), Decimal(0))
    page.goto(f"{stack.base_url}/?start=2024-09-01&end=2024-10-31")
    expect(page.locator("#overview-total")).to_contain_text(f"${total:,.2f} from 01 Sep 2024 to 31 Oct 2024")


def test_import_an_export_from_s3_and_watch_it(page, stack, moto):
    bucket = "e2e-cost-exports"
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto, aws_access_key_id=BASE_KEY,
                      aws_secret_access_key=BASE_SECRET)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="focus/data/BILLING_PERIOD=2024-09/part-00001.csv.gz",
                  Body=gzip.compress(SAMPLE.read_bytes()))
    name = f"billing-{uuid.uuid4().hex[:6]}"
    created = http_session(stack).post(f"{stack.base_url}/api/v1/profiles/", timeout=30, json={
        "name": name, "access_key_id": BASE_KEY, "secret_access_key": BASE_SECRET})
    assert created.status_code == 201, created.text
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/data")
    page.locator("#import-s3-profile").click()
    page.get_by_role("option", name=name).click()
    page.fill("#import-s3-bucket", "Not A Bucket")
    page.fill("#import-s3-path", "focus/data/")
    page.click("#import-s3-start")
    expect(page.locator("#import-message .alert-danger")).to_contain_text("bucket: a bucket name")
    page.fill("#import-s3-bucket", bucket)
    page.click("#import-s3-start")
    message = page.locator("#import-message .alert-success")
    expect(message).to_contain_text("started as job #")
    message.get_by_role("link", name="Watch it").click()
    expect(page.locator("#job-detail-status")).to_contain_text("succeeded", timeout=90_000)
    expect(page.locator("#job-detail-step")).to_contain_text("Imported 1,000 rows")
    size = len(gzip.compress(SAMPLE.read_bytes()))
    expect(page.locator("#job-detail-log")).to_contain_text(f"1 file(s), {size:,} bytes")
