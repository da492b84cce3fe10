"""Bringing data in as jobs: a FOCUS upload through the API, and a collection from AWS (moto)."""

from __future__ import annotations

import io
from decimal import Decimal

import boto3
import pytest
from sqlalchemy import func, select

from models import CostFact, ImportBatch, Resource, Task
from services import database, jobs, profiles, validation
from services.permissions import Actor
from tests.factories import make_user
from tests.unit.test_importers import SAMPLE
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
    jobs.execute_task(task_id, owner="test")
    with database.session_scope() as s:
        task = s.get(Task, task_id)
        total = sum(s.scalars(select(CostFact.unblended_cost)), Decimal(0))
    assert task.status == "succeeded", task.error
    assert task.result_summary["rows"] == 1000 and task.result_summary["providers"] == ["AWS", "Microsoft", "Oracle"]
    assert _count(CostFact) == 1000 and total > 0
    assert not list((tmp_path / "uploads").iterdir())  # the upload is gone once imported


def test_malformed_upload_fails_its_job_with_row_and_column_and_changes_nothing(client, session):
    headers = _signed_in(client, session)
    broken = SAMPLE.read_text().splitlines()
    cells = broken[5].split(",")
    cells[1] = "12,5abc"
    broken[5] = ",".join(cells)
    response = client.post("/api/v1/imports/", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO("\n".join(broken).encode()), "bad.csv")})
    task_id = response.json["id"]
    jobs.execute_task(task_id, owner="test")
    with database.session_scope() as s:
        task = s.get(Task, task_id)
    assert task.status == "failed" and "row" in task.error and "column" in task.error
    assert _count(CostFact) == 0 and _count(ImportBatch) == 0


@pytest.mark.parametrize("name, message", [("costs.xlsx", ".csv, .csv.gz or .parquet"), ("empty.csv", "empty")])
def test_wrong_uploads_are_refused_before_any_job(client, session, name, message):
    headers = _signed_in(client, session)
    response = client.post("/api/v1/imports/", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"" if name == "empty.csv" else b"x"), name)})
    assert response.status_code == 422 and message in response.json["error"]
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
        view = jobs.submit_job(s, actor=owner, kind="collect.profile",
                               parameters={"profile_id": profile.id, "kinds": ["inventory"]})
    jobs.execute_task(view.id, owner="test")
    with database.session_scope() as s:
        task = s.get(Task, view.id)
        kinds = sorted(s.scalars(select(Resource.resource_type)))
    assert task.status == "succeeded", (task.error, task.log)
    profiles.configure(endpoint_url=None)
    assert kinds.count("ec2_instance") == 2 and "ebs_volume" in kinds
