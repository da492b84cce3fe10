"""Bringing data in as jobs: a FOCUS upload through the API, an export in S3 (moto), a collection from AWS (moto)."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
from decimal import Decimal

import boto3
import pytest
from sqlalchemy import func, select

from models import CostFact, ImportBatch, Resource, Task
from models.types import money_sum
from services import database, validation
from services.aws import profiles
from services.errors import InvalidInput
from services.identity.permissions import Actor
from services.jobs import data_kinds, kinds, lifecycle
from tests.factories import make_user
from tests.unit.imports.test_importers import SAMPLE
from tests.web import dash_headers, sign_in_and_enrol

pytestmark = pytest.mark.integration


def _signed_in(client, session, roles=("finance",)):
    make_user(session, username="importer", roles=roles)
    session.commit()
    sign_in_and_enrol(client, "importer")
    return dash_headers(client)


def _count(model) -> int:
    with database.session_scope() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_uploaded_focus_file_is_imported_by_a_job(client, session, tmp_path):
    headers = _signed_in(client, session)
    with SAMPLE.open("rb") as fh:
        response = client.post("/api/v1/imports/", headers=headers,
                               data={"file": (fh, "focus-1.0-sample.csv")}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    task_id = response.json["id"]
    lifecycle.execute_task(task_id, owner="test")
    with database.session_scope() as s:
        task = s.get(Task, task_id)
        total = sum(s.scalars(select(CostFact.unblended_cost)), Decimal(0))
    assert task.status == "succeeded", task.error
    assert task.result_summary["rows"] == 1000 and task.result_summary["providers"] == ["AWS", "Microsoft", "Oracle"]
    assert _count(CostFact) == 1000 and total > 0
    assert not list((tmp_path / "uploads").iterdir())  # the upload is gone once imported


def test_an_import_job_shows_its_progress_as_rows_land_where_the_database_allows(client, session, monkeypatch):
    from services.costs import ingest
    from services.imports import _reading

    monkeypatch.setattr(_reading, "LOAD_BLOCK_BYTES", 16_384)
    monkeypatch.setattr(ingest, "COPY_CHUNK_SIZE", 100)
    monkeypatch.setattr(ingest, "CHUNK_SIZE", 100)
    shown = []
    progress = kinds.JobContext.progress

    def recording(self, pct, step):
        shown.append((pct, step))
        progress(self, pct, step)

    monkeypatch.setattr(kinds.JobContext, "progress", recording)
    headers = _signed_in(client, session)
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        header, *records = list(csv.reader(fh))
    kept = [r for r in records if r[header.index("BillingPeriodStart")].startswith("2024-09")]
    out = io.StringIO()
    csv.writer(out).writerows([header, *kept])
    september = out.getvalue()
    # September alone is read once (progress by the share of the file read); the whole sample
    # holds two months and is read again in two passes (progress by rows), the bar never going back.
    for name, content, rows in (("september.csv", september.encode(), len(kept)),
                                ("focus-1.0-sample.csv", SAMPLE.read_bytes(), 1000)):
        shown.clear()
        response = client.post("/api/v1/imports/", headers=headers, content_type="multipart/form-data",
                               data={"file": (io.BytesIO(content), name)})
        lifecycle.execute_task(response.json["id"], owner="test")
        during = [(pct, step) for pct, step in shown if step.startswith("Imported ") and pct < 100]
        if database.get_engine().dialect.name == "sqlite":
            assert during == []  # the import holds SQLite's write lock: stored only at the end
        else:
            assert len(during) >= 2 and [p for p, _ in during] == sorted({p for p, _ in during})
            assert 1 < during[0][0] < 99 and during[-1][0] == 99
        assert shown[-1] == (100, f"Imported {rows:,} rows (focus)")


def test_malformed_upload_fails_its_job_with_row_and_column_and_changes_nothing(client, session):
    headers = _signed_in(client, session)
    broken = SAMPLE.read_text().splitlines()
    cells = broken[5].split(",")
    cells[1] = "12,5abc"
    broken[5] = ",".join(cells)
    response = client.post("/api/v1/imports/", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO("\n".join(broken).encode()), "bad.csv")})
    task_id = response.json["id"]
    lifecycle.execute_task(task_id, owner="test")
    with database.session_scope() as s:
        task = s.get(Task, task_id)
    assert task.status == "failed" and "row" in task.error and "column" in task.error
    assert _count(CostFact) == 0 and _count(ImportBatch) == 0


@pytest.mark.parametrize("name, message", [("costs.xlsx", ".csv, .csv.gz or .parquet"), ("empty.csv", "empty")])
def test_wrong_uploads_are_refused_before_any_job(client, session, name, message):
    headers = _signed_in(client, session)
    response = client.post("/api/v1/imports/", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"" if name == "empty.csv" else b"x"), name)})
    assert response.status_code == 422 and message in response.json["detail"]
    assert _count(Task) == 0


def test_roles_that_may_not_import_cannot_even_upload(client, session, tmp_path):
    headers = _signed_in(client, session, roles=("engineering",))
    response = client.post("/api/v1/imports/", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")})
    assert response.status_code == 403
    assert not list((tmp_path / "uploads").iterdir())


def test_collect_job_brings_the_inventory_of_a_profile(db_url, moto, tmp_path):
    profiles.configure(endpoint_url=moto)
    ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=moto, aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                       aws_secret_access_key="x" * 40)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.small")
    ec2.create_volume(Size=20, AvailabilityZone="eu-west-1a")
    admin = Actor(user_id=None, username="ops", roles=frozenset({"admin"}))
    with database.session_scope() as s:
        user = make_user(s, username="collector", roles=("admin",))
        owner = Actor(user_id=user.id, username="collector", roles=frozenset({"admin"}))
        profile = profiles.create_profile(s, actor=admin, data=validation.parse(profiles.ProfileCreate, {
            "name": "main", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x" * 40,
            "default_regions": ["eu-west-1"]}))
        view = lifecycle.submit_job(s, actor=owner, kind="collect.profile",
                               parameters={"profile_id": profile.id, "kinds": ["inventory"]})
    lifecycle.execute_task(view.id, owner="test")
    with database.session_scope() as s:
        task = s.get(Task, view.id)
        kinds = sorted(s.scalars(select(Resource.resource_type)))
    assert task.status == "succeeded", (task.error, task.log)
    profiles.configure(endpoint_url=None)
    assert kinds.count("ec2_instance") == 2 and "ebs_volume" in kinds


# --- import from S3 (moto) -------------------------------------------------------------------------

BUCKET = "corp-cost-exports"
PERIOD_FOLDER = "finops/focus-daily/data/BILLING_PERIOD=2024-09"


@pytest.fixture()
def s3_export(db_url, moto, tmp_path):
    """The FOCUS sample as AWS Data Exports writes it: parts (some gzipped) under a billing-period
    folder, a manifest listing them, and a file that is not cost data; a profile that reads it."""
    profiles.configure(endpoint_url=moto)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto, aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                      aws_secret_access_key="x" * 40)
    s3.create_bucket(Bucket=BUCKET)
    header, *rows = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    keys = []
    for part, start in enumerate(range(0, len(rows), 400), start=1):
        body = (header + "".join(rows[start:start + 400])).encode()
        name = f"part-{part:05d}.csv" + (".gz" if part % 2 else "")
        keys.append(f"{PERIOD_FOLDER}/{name}")
        s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=gzip.compress(body) if part % 2 else body)
    s3.put_object(Bucket=BUCKET, Key=f"{PERIOD_FOLDER}/README.txt", Body=b"not cost data")
    manifest = "finops/focus-daily/metadata/BILLING_PERIOD=2024-09/focus-daily-Manifest.json"
    s3.put_object(Bucket=BUCKET, Key=manifest, Body=json.dumps({
        "version": "1.0", "exportName": "focus-daily", "billingPeriod": {"start": "2024-09-01T00:00:00.000Z"},
        "dataFiles": [f"s3://{BUCKET}/{k}" for k in keys]}).encode())
    with database.session_scope() as s:
        user = make_user(s, username="finance-lead", roles=("admin",))
        owner = Actor(user_id=user.id, username="finance-lead", roles=frozenset({"admin"}))
        profile = profiles.create_profile(s, actor=owner, data=validation.parse(profiles.ProfileCreate, {
            "name": "billing", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x" * 40,
            "default_regions": ["us-east-1"]}))
    data_kinds.configure(uploads_root=tmp_path)
    yield {"owner": owner, "profile_id": profile.id, "manifest": manifest, "s3": s3, "uploads": tmp_path}
    profiles.configure(endpoint_url=None)


def _run_s3_import(export, **location):
    with database.session_scope() as s:
        view = lifecycle.submit_job(s, actor=export["owner"], kind="import.s3",
                               parameters={"profile_id": export["profile_id"], "bucket": BUCKET, **location})
    lifecycle.execute_task(view.id, owner="test")
    with database.session_scope() as s:
        return s.get(Task, view.id)


def _money_totals() -> dict[str, Decimal]:
    with database.session_scope() as s:
        return {provider: total for provider, total in s.execute(
            select(CostFact.provider, money_sum(CostFact.unblended_cost)).group_by(CostFact.provider))}


def _sample_totals() -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        for record in csv.DictReader(fh):
            totals[record["ProviderName"]] = totals.get(record["ProviderName"], Decimal(0)) + Decimal(
                record["BilledCost"])
    return totals


def test_an_export_is_imported_from_s3_by_prefix_and_again_by_manifest_without_duplicates(s3_export):
    task = _run_s3_import(s3_export, prefix="finops/focus-daily/data/")
    assert task.status == "succeeded", (task.error, task.log)
    assert task.result_summary["files"] == 3 and task.result_summary["rows"] == 1000
    assert task.result_summary["billing_periods"] == ["2024-09-01", "2024-10-01"]
    assert _count(CostFact) == 1000 and _money_totals() == _sample_totals()

    again = _run_s3_import(s3_export, manifest_key=s3_export["manifest"])
    assert again.status == "succeeded", (again.error, again.log)
    assert _count(CostFact) == 1000 and _money_totals() == _sample_totals()  # replaced, not added
    assert not list(s3_export["uploads"].iterdir())  # downloads are removed
    with database.session_scope() as s:
        names = set(s.scalars(select(ImportBatch.file_name)))
    assert f"s3://{BUCKET}/{s3_export['manifest']}" in names


@pytest.mark.parametrize("location, message", [
    ({"bucket": "no-such-bucket-here", "prefix": "x/"}, "The bucket of s3://no-such-bucket-here/x/ does not exist"),
    ({"prefix": "finops/elsewhere/"}, "No .csv, .csv.gz or .parquet cost file was found"),
    ({"manifest_key": "finops/missing-Manifest.json"}, "does not exist"),
])
def test_a_wrong_s3_location_fails_the_job_in_words_and_writes_nothing(s3_export, location, message):
    task = _run_s3_import(s3_export, **location)
    assert task.status == "failed" and message in task.error, task.error
    assert _count(CostFact) == 0 and _count(ImportBatch) == 0


def test_one_malformed_part_in_s3_refuses_the_whole_export(s3_export):
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        header, first, second = list(itertools.islice(csv.reader(fh), 3))
    second[header.index("BilledCost")] = "12.5abc"
    body = io.StringIO()
    csv.writer(body).writerows([header, first, second])
    s3_export["s3"].put_object(Bucket=BUCKET, Key=f"{PERIOD_FOLDER}/part-00009.csv", Body=body.getvalue().encode())
    task = _run_s3_import(s3_export, prefix=PERIOD_FOLDER + "/")
    assert task.status == "failed", task.error
    assert f"{PERIOD_FOLDER}/part-00009.csv, row 2" in task.error and "BilledCost" in task.error, task.error
    assert _count(CostFact) == 0 and _count(ImportBatch) == 0


@pytest.mark.parametrize("location", [{"prefix": "a/", "manifest_key": "b.json"}, {}, {"manifest_key": "b.csv"},
                                      {"prefix": "a/\n"}, {"prefix": "a/", "bucket": "corp-cost-exports\n"},
                                      {"prefix": "a/", "bucket": "Upper_Case"}])
def test_an_s3_location_must_be_one_prefix_or_one_manifest(s3_export, location):
    with database.session_scope() as s, pytest.raises(InvalidInput):
        lifecycle.submit_job(s, actor=s3_export["owner"], kind="import.s3",
                        parameters={"profile_id": s3_export["profile_id"], "bucket": BUCKET, **location})
