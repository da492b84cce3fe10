"""In headless Chromium: axe-core finds no serious or critical accessibility violation on any page.

axe-core comes from npm (tests/e2e/package.json, installed by `npm ci` in tests/e2e). The app's
CSP forbids inline scripts, so these pages are opened in a context that bypasses the CSP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.stacks import Stack

pytestmark = pytest.mark.e2e

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = frozenset({"serious", "critical"})
#: The signed-in pages, each with what shows once it has rendered; None: may not exist yet.
PAGES: list[tuple[str, str | None]] = [
    ("/", "Cost overview"), ("/explorer", None), ("/jobs", "Jobs"), ("/data", "Data sources"),
    ("/admin", "Administration"),
]


#: Violations inside third-party components that our markup cannot reach, each with why; every node
#: of a violation must match one of these for it to be let through, so a new one still fails.
KNOWN_THIRD_PARTY: tuple[tuple[str, str, str], ...] = (
    ("aria-hidden-focus", ".dash-dropdown-focus-target",
     "Dash 4's Dropdown keeps a readonly aria-hidden input that takes focus for its keyboard handling"),
    ("aria-allowed-attr", "-range-wrapper",
     "Dash 4's DatePickerRange sets an ARIA attribute its wrapper's role does not allow"),
    ("color-contrast", ".opblock", "Swagger UI's own stylesheet (the API docs page)"),
    ("color-contrast", ".version-stamp", "Swagger UI's own stylesheet (the API docs page)"),
    ("color-contrast", ".url", "Swagger UI's own stylesheet (the API docs page)"),
    ("color-contrast", ".btn > span", "Swagger UI's own stylesheet (the API docs page)"),
    ("color-contrast", ".json-schema-2020-12", "Swagger UI's own stylesheet (the API docs page)"),
    ("nested-interactive", ".opblock-summary-control", "Swagger UI's operation headers"),
    ("button-name", "-page", "DataTable's pager buttons are icons without text"),
    ("color-contrast", ".dash-filter", "DataTable's filter row (its case toggle and placeholder)"),
)


def _is_known(violation: dict[str, Any]) -> bool:
    targets = [" ".join(node["target"]) for node in violation["nodes"]]
    return all(any(rule == violation["id"] and part in target for rule, part, _why in KNOWN_THIRD_PARTY)
               for target in targets)


def _violations(page: Any) -> list[dict[str, Any]]:
    """Run axe on the page and return its serious and critical violations (but the known ones of
    third-party components)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run()")
    return [v for v in result["violations"] if v["impact"] in FAILING_IMPACTS and not _is_known(v)]


def _report(where: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{where}: {len(violations)} serious or critical accessibility violation(s)"]
    for v in violations:
        targets = ", ".join(" ".join(node["target"]) for node in v["nodes"])
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} at {targets}")
    return "\n".join(lines)


@pytest.fixture()
def axe_page(browser):  # type: ignore[no-untyped-def]
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `npm ci --no-audit --no-fund` in tests/e2e")
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.mark.xfail(strict=True, reason=(
    "open violations still to fix: /data (the source profile dropdown has no name, the upload's file "
    "input has no label), /admin (the rebuild progress bar has no accessible name: dbc.Progress takes no "
    "aria-label). Strict: the test reports when they are fixed"))
def test_every_page_has_no_serious_accessibility_violation(axe_page, embedded_stack: Stack):
    # One stack is enough: both serve the same pages.
    stack = embedded_stack
    page, base, failures = axe_page, stack.base_url, []
    page.goto(f"{base}/auth/login?next=/")
    expect(page.locator("#username")).to_be_visible()
    failures += _violations_of(page, "sign-in page")
    page.fill("#username", stack.username)
    page.fill("#password", stack.password)
    page.click("button[type=submit]")
    expect(page.locator("#code")).to_be_visible()
    failures += _violations_of(page, "TOTP page")
    if "/auth/mfa/enrol" in page.url:
        stack.totp_secret = page.locator("#totp-secret").inner_text().strip()
        page.fill("#code", stack.next_totp_code())
        page.click("button[type=submit]")
        expect(page.locator("#recovery-codes li")).to_have_count(10)
        failures += _violations_of(page, "recovery codes page")
        page.click("text=I have saved them, continue")
    else:
        page.fill("#code", stack.next_totp_code())
        page.click("button[type=submit]")
    expect(page.locator("h1", has_text="Cost overview")).to_be_visible()
    for path, ready in PAGES:
        page.goto(f"{base}{path}")
        if ready is None:
            expect(page.locator("h1").first).to_be_visible()
            if page.locator("h1", has_text="Page not found").count():
                continue  # checked once the page exists
        else:
            expect(page.locator("h1", has_text=ready)).to_be_visible()
        failures += _violations_of(page, path)
    page.goto(f"{base}/jobs")
    expect(page.locator("h1", has_text="Jobs")).to_be_visible()
    job_link = page.locator("a[href^='/jobs/']").first
    if job_link.count():
        job_link.click()
        expect(page.locator("h1", has_text="Job #")).to_be_visible()
        failures += _violations_of(page, "a job's page")
    page.goto(f"{base}/api/v1/docs/")
    page.wait_for_load_state("networkidle")
    failures += _violations_of(page, "/api/v1/docs/")
    assert not failures, "\n".join(failures)


def _violations_of(page: Any, where: str) -> list[str]:
    found = _violations(page)
    return [_report(where, found)] if found else []
