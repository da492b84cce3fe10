"""The jobs page in a browser: start a job from the form, watch it live, cancel one, page the history."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import sign_in

pytestmark = pytest.mark.e2e


def _start(page, stack, kind_label: str, fields: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    page.goto(f"{stack.base_url}/jobs")
    page.locator(f"#{'jobs-kind'}").click()
    page.get_by_role("option", name=kind_label).click()
    for name, value in fields.items():
        page.locator(f"[id*='\"name\":\"{name}\"']").fill(value)
    return submit_and_watch(page)


def submit_and_watch(page) -> str:  # type: ignore[no-untyped-def]
    """Submit the jobs form, follow the queued job to its page; return its id."""
    page.click("#jobs-submit")
    alert = page.locator("#jobs-submit-message .alert")
    expect(alert).to_contain_text("is queued")
    job_id = re.search(r"Job #(\d+)", alert.inner_text()).group(1)
    alert.get_by_role("link", name="Watch it").click()
    expect(page.locator("h1")).to_contain_text(f"Job #{job_id}")
    return job_id


def test_start_a_job_from_the_form_and_watch_it_finish(page, stack):
    sign_in(page, stack)
    _start(page, stack, "Count steps (tests)", {"steps": "30", "seconds_per_step": "0.1"})
    bar = page.locator("#job-detail-progress .progress-bar")
    seen = set()
    for _ in range(300):
        seen.add(int(float(bar.get_attribute("aria-valuenow") or 0)))
        if "succeeded" in page.locator("#job-detail-status").inner_text():
            break
        page.wait_for_timeout(100)
    expect(page.locator("#job-detail-status")).to_contain_text("succeeded", timeout=60_000)
    assert any(0 < v < 100 for v in seen), seen
    expect(page.locator("#job-detail-log")).to_contain_text("step 30 of 30")
    expect(page.locator("#job-detail-results a")).to_contain_text("steps.json")


def test_cancel_a_running_job_from_its_page(page, stack):
    sign_in(page, stack)
    _start(page, stack, "Count steps (tests)", {"steps": "500", "seconds_per_step": "0.1"})
    expect(page.locator("#job-detail-status")).to_contain_text("running", timeout=60_000)
    page.click("#job-detail-cancel")
    expect(page.locator("#job-detail-status")).to_contain_text("cancelled", timeout=60_000)


def test_invalid_parameters_are_explained_and_nothing_starts(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/jobs")
    page.locator("#jobs-kind").click()
    page.get_by_role("option", name="Count steps (tests)").click()
    page.locator("[id*='\"name\":\"steps\"']").fill("0")
    page.click("#jobs-submit")
    expect(page.locator("#jobs-submit-message .alert-danger")).to_contain_text("steps")


def test_history_filters_by_status(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/jobs")
    page.locator("#jobs-filter-status").click()
    page.get_by_role("option", name="cancelled").click()
    rows = page.locator("#job-history tbody tr")
    expect(rows.first).to_contain_text("cancelled")
    # The table is redrawn by a callback: wait until no row of another status is left.
    expect(rows.filter(has_not_text="cancelled")).to_have_count(0)


def test_save_a_job_on_a_schedule_and_see_its_next_run(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/jobs")
    page.locator("#jobs-kind").click()
    page.get_by_role("option", name="Count steps (tests)").click()
    page.fill("#schedule-name", f"nightly {stack.kind}")
    page.fill("#schedule-cron", "every day")
    page.click("#schedule-save")
    expect(page.locator("#jobs-submit-message .alert-danger")).to_contain_text("cron")
    page.fill("#schedule-cron", "0 6 * * *")
    page.click("#schedule-save")
    expect(page.locator("#jobs-submit-message .alert-success")).to_contain_text("next run")
    expect(page.locator("#schedules-table")).to_contain_text(f"nightly {stack.kind}")
    expect(page.locator("#schedules-table")).to_contain_text("06:00 UTC")
