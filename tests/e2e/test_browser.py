"""In headless Chromium: sign in, enrol TOTP, read the overview, watch a job's progress, cancel one.

Runs against both stacks: the embedded demo, and gunicorn + Celery on PostgreSQL and Redis.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.stacks import Stack

pytestmark = pytest.mark.e2e


def sign_in(page, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    """Sign in (the first time per stack, through the forms); later tests reuse that session."""
    if stack.browser_state is not None:
        page.context.add_cookies(stack.browser_state["cookies"])
        page.goto(f"{stack.base_url}/")
        expect(page.locator("h1", has_text="Cost overview")).to_be_visible()
        return
    page.goto(f"{stack.base_url}/")
    expect(page).to_have_url(f"{stack.base_url}/auth/login?next=/")
    page.fill("#username", stack.username)
    page.fill("#password", stack.password)
    page.click("button[type=submit]")
    if "/auth/mfa/enrol" in page.url:
        stack.totp_secret = page.locator("#totp-secret").inner_text().strip()
        expect(page.locator("img[alt^='QR code']")).to_be_visible()
        page.fill("#code", stack.next_totp_code())
        page.click("button[type=submit]")
        expect(page.locator("#recovery-codes li")).to_have_count(10)
        page.click("text=I have saved them, continue")
    else:
        expect(page).to_have_url(f"{stack.base_url}/auth/mfa/verify")
        page.fill("#code", stack.next_totp_code())
        page.click("button[type=submit]")
    expect(page.locator("h1", has_text="Cost overview")).to_be_visible()
    stack.browser_state = page.context.storage_state()


def test_sign_in_enrol_and_see_the_overview(page, stack, tmp_path):
    sign_in(page, stack)
    mtd = page.locator("[data-kpi='Month to date']")
    expect(mtd).to_contain_text("$")
    api = page.request.get(f"{stack.base_url}/api/v1/overview/").json()
    shown = mtd.inner_text().replace("$", "").replace(",", "")
    assert abs(float(shown) - float(api["kpis"]["month_to_date"])) < 0.005
    expect(page.locator("#overview-trend .main-svg").first).to_be_visible()
    expect(page.locator("#overview-trend g.point")).not_to_have_count(0)
    expect(page.locator("#overview-services g.point")).to_have_count(11)  # top 10 and Other
    page.screenshot(path=str(tmp_path / f"overview-{stack.kind}.png"), full_page=True)
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


def _progress_values(page, *, until: str, timeout: float = 120) -> list[int]:  # type: ignore[no-untyped-def]
    bar = page.locator("#job-rebuild-progress .progress-bar")
    status = page.locator("#job-rebuild-status")
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = int(float(bar.get_attribute("aria-valuenow") or 0))
        if not seen or seen[-1] != value:
            seen.append(value)
        if until in status.inner_text():
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"status never said {until!r}; progress seen: {seen}")


def test_job_progress_bar_moves_to_the_end(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/admin")  # the rollup maintenance lives on the admins' page
    page.click("#job-rebuild-start")
    expect(page.locator("#job-rebuild-cancel")).to_be_enabled()
    seen = _progress_values(page, until="finished")
    assert any(0 < v < 100 for v in seen), f"no intermediate progress was shown: {seen}"
    expect(page.locator("#job-rebuild-status")).to_contain_text("Rebuilt")
    page.goto(f"{stack.base_url}/jobs")
    expect(page.locator("#job-history tbody tr").first).to_contain_text("succeeded")


def test_running_job_can_be_cancelled(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/admin")
    page.click("#job-rebuild-start")
    bar = page.locator("#job-rebuild-progress .progress-bar")
    expect(bar).not_to_have_attribute("aria-valuenow", "0", timeout=30_000)
    page.click("#job-rebuild-cancel")
    expect(page.locator("#job-rebuild-status")).to_have_text("Job cancelled.")
    expect(page.locator("#job-rebuild-start")).to_be_enabled()
    page.goto(f"{stack.base_url}/jobs")
    expect(page.locator("#job-history tbody tr").first).to_contain_text("cancelled")


def test_the_api_docs_page_lists_every_operation_and_tries_one(page, embedded_stack, tmp_path):
    sign_in(page, embedded_stack)
    document = page.request.get(f"{embedded_stack.base_url}/api/v1/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert operations >= 19
    page.goto(f"{embedded_stack.base_url}/api/v1/docs/")
    expect(page.locator(".opblock")).to_have_count(operations)
    tasks = page.locator(".opblock-get", has_text="/api/v1/tasks/").first
    tasks.locator(".opblock-summary").click()
    tasks.locator("button.try-out__btn").click()
    tasks.locator("button.execute").click()
    expect(tasks.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    for width in (1280, 820):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(tmp_path / f"api-docs-{width}.png"), full_page=False)
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors
