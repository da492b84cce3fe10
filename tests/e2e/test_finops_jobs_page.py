"""aws-finops and approvals in a browser: an audit over several profiles watched profile by profile,
and a gated job released by another administrator.

The stacks' CLI runner reaches the session's moto server (AWS_ENDPOINT_URL), where each profile is
a role assumed into its own account.
"""

from __future__ import annotations

import re
import uuid

import boto3
import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import sign_in
from tests.e2e.test_jobs_page import submit_and_watch
from tests.integration.test_aws_finops import BASE_KEY, BASE_SECRET, _assumed
from tests.stacks import http_session

pytestmark = pytest.mark.e2e

AUDITED = {"delta": "444444444441", "echo": "555555555552", "foxtrot": "666666666663"}


def _seed_unused_volume(moto: str, account_id: str) -> str:
    creds = _assumed(moto, account_id)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto, aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    return str(ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"])


def _profiles(stack, suffix: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A base profile and one assume-role profile per audited account, through the API."""
    http = http_session(stack)
    url = f"{stack.base_url}/api/v1/profiles/"
    base = http.post(url, json={"name": f"base-{suffix}", "access_key_id": BASE_KEY,
                                "secret_access_key": BASE_SECRET}, timeout=30)
    assert base.status_code == 201, base.text
    made = {}
    for name, account in AUDITED.items():
        created = http.post(url, timeout=30, json={
            "name": f"{name}-{suffix}", "auth_type": "assume_role", "source_profile_id": base.json()["id"],
            "role_arn": f"arn:aws:iam::{account}:role/finops-audit", "default_regions": ["us-east-1"]})
        assert created.status_code == 201, created.text
        made[f"{name}-{suffix}"] = created.json()["id"]
    return made


def test_an_audit_over_three_profiles_shows_each_profile_progress_to_the_end(page, stack, moto):
    volumes = {account: _seed_unused_volume(moto, account) for account in AUDITED.values()}
    suffix = uuid.uuid4().hex[:4]
    names = list(_profiles(stack, suffix))
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/jobs")
    page.locator("#jobs-kind").click()
    page.get_by_role("option", name="AWS FinOps: audit (untagged, idle, unused)").click()
    profiles_field = page.locator("button[id*='\"name\":\"profile_ids\"']")
    for name in names:
        option = page.get_by_role("option", name=name, exact=True)
        if not option.is_visible():
            profiles_field.click()
        option.click()
    page.keyboard.press("Escape")
    expect(profiles_field).to_contain_text("3 selected")
    job_id = submit_and_watch(page)

    # Live: the step names the profiles as they run and the bar moves. A profile can finish
    # between two updates of the page, so the whole sequence is read from the log at the end.
    steps: list[str] = []
    values: set[int] = set()
    status = page.locator("#job-detail-status")
    bar = page.locator("#job-detail-progress .progress-bar")
    for _ in range(1800):
        step = page.locator("#job-detail-step").inner_text()
        if step and (not steps or steps[-1] != step):
            steps.append(step)
        values.add(int(float(bar.get_attribute("aria-valuenow") or 0)))
        if re.search("succeeded|failed|cancelled", status.inner_text()):
            break
        page.wait_for_timeout(100)
    expect(status).to_contain_text("succeeded", timeout=5_000)
    seen = {name for name in names if any(f"profile {name}" in s for s in steps)}
    assert len(seen) >= 2 and any(0 < v < 100 for v in values), (steps, values)
    expect(page.locator("#job-detail-log")).to_contain_text(f"profile {names[-1]}: succeeded")
    log = page.request.get(f"{stack.base_url}/api/v1/tasks/{job_id}/logs/").text()  # the whole log
    marks = [log.index(f"profile {name} ({i}/3)") for i, name in enumerate(names, start=1)]
    marks += [log.index(f"profile {names[-1]}: succeeded")]
    assert marks == sorted(marks), log
    assert all(f"profile {name}: succeeded" in log for name in names), log

    links = page.locator("#job-detail-results a")
    for name, account in zip(names, AUDITED.values(), strict=True):
        link = links.filter(has_text=f"{name}-audit.parsed.json")
        expect(link).to_have_count(1)
        parsed = page.request.get(f"{stack.base_url}{link.get_attribute('href')}").json()
        assert parsed["status"] == "succeeded" and parsed["account_id"] == account
        assert volumes[account] in str(parsed["report"]["unused_volumes"])


def test_an_approver_releases_a_gated_job_and_the_requester_sees_it_run(page, browser, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/jobs")
    page.locator("#jobs-kind").click()
    page.get_by_role("option", name="Count steps (tests)").click()
    page.locator("[id*='\"name\":\"steps\"']").fill("10")
    page.locator("[id*='\"name\":\"ce_requests\"']").fill("250")  # USD 2.50 of Cost Explorer: over the USD 1 rule
    page.click("#jobs-submit")
    alert = page.locator("#jobs-submit-message .alert")
    expect(alert).to_contain_text("is waiting for approval")
    expect(alert).to_contain_text("Cost Explorer charges of $2.50")
    job_id = re.search(r"Job #(\d+)", alert.inner_text()).group(1)
    alert.get_by_role("link", name="Watch it").click()
    expect(page.locator("#job-detail-status")).to_contain_text("awaiting approval")
    expect(page.locator("#job-approve")).to_have_count(0)  # nobody approves their own job

    approver = stack.add_admin(f"approver{uuid.uuid4().hex[:6]}")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = context.new_page()
        sign_in(other, approver)
        other.goto(f"{stack.base_url}/jobs/{job_id}")
        expect(other.locator("#job-detail-status")).to_contain_text("awaiting approval")
        other.click("#job-approve")
        expect(other.locator("#job-detail-message")).to_contain_text("comment")
        other.fill("#job-approval-comment", "Within this month's Cost Explorer allowance.")
        other.click("#job-approve")
        expect(other.locator("#job-detail-message")).to_contain_text("Approved")
    finally:
        context.close()

    expect(page.locator("#job-detail-status")).to_contain_text("succeeded", timeout=90_000)
    expect(page.locator("#job-detail-log")).to_contain_text(
        f"approved by {approver.username}: Within this month's Cost Explorer allowance.")
    audit = http_session(stack).get(f"{stack.base_url}/api/v1/tasks/{job_id}/", timeout=30).json()
    assert audit["approval_comment"] == "Within this month's Cost Explorer allowance."
