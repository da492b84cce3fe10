"""The cost explorer in a browser: a drill from the total to one usage type, each level's total
equal to the API's; a link that reopens a view, back and forward; the layout at 820 px."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from services.costs import explorer
from tests.e2e.test_browser import sign_in

pytestmark = pytest.mark.e2e


def _api_total(page, stack, state: explorer.ExplorerState) -> Decimal:  # type: ignore[no-untyped-def]
    """The API's total for what a state shows (every key, the whole range)."""
    import datetime as dt

    start, end = state.date_range(dt.datetime.now(dt.UTC).date())
    params: list[tuple[str, str]] = [("start", start.isoformat()), ("end", end.isoformat()),
                                     ("granularity", "total"), ("group_by", state.group_by),
                                     ("metric", state.metric)]
    for dimension, values in state.fixed().items():
        params += [(f"filter.{dimension}", v) for v in values]
    response = page.request.get(f"{stack.base_url}/api/v1/costs/?{urlencode(params)}")
    assert response.ok, response.text()
    return Decimal(response.json()["total"])


def _shown(page):  # type: ignore[no-untyped-def]
    """The state the page's address holds, and the total the page shows."""
    state = explorer.parse_state(urlsplit(page.url).query)
    total = page.locator("[data-total]").get_attribute("data-total")
    return state, Decimal(total or "NaN")


def test_drill_from_the_total_to_one_usage_type(page, stack):
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/explorer?preset=last_month&group_by=account")
    crumbs = page.locator("#explorer-crumbs li")
    expect(crumbs).to_have_count(2)  # "All costs", "by Account"
    state, total = _shown(page)
    assert total == _api_total(page, stack, state) and total > 0
    for level, dimension in enumerate(("account", "service", "region", "usage_type"), start=1):
        assert state.group_by == dimension
        page.locator("#explorer-graph g.point path").first.click(force=True)
        expect(crumbs).to_have_count(level + 2)
        state, total = _shown(page)
        assert len(state.drill) == level
        assert [s.dimension for s in state.drill][-1] == dimension
        assert total == _api_total(page, stack, state), f"level {level} ({dimension})"
    assert state.group_by == "charge_category" and len(state.fixed()["usage_type"]) == 1
    # the table's total line equals the chart's total
    expect(page.locator("#explorer-table-total")).to_contain_text(page.locator("[data-total]").inner_text())
    # a breadcrumb climbs back to the account level
    page.locator("#explorer-crumbs a", has_text="Account:").click()
    expect(crumbs).to_have_count(3)
    state, total = _shown(page)
    assert state.group_by == "service" and total == _api_total(page, stack, state)
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


def test_a_link_reopens_the_same_view_and_back_and_forward_work(page, embedded_stack):
    stack = embedded_stack
    sign_in(page, stack)
    link = "/explorer?preset=last_6_months&metric=amortized_cost&group_by=region&chart=line&sort=key"
    page.goto(f"{stack.base_url}{link}")
    expect(page.locator("#explorer-group")).to_contain_text("Region")
    expect(page.locator("#explorer-chart")).to_contain_text("Lines")
    expect(page.locator("#explorer-metric")).to_contain_text("Amortised")
    state, total = _shown(page)
    assert state.group_by == "region" and state.chart == "line" and state.sort == "key"
    assert total == _api_total(page, stack, state)
    page.locator("#explorer-graph g.points path.point").first.click(force=True)
    # a click on a line's point drills as a bar does
    expect(page.locator("#explorer-crumbs li")).to_have_count(3)
    drilled = page.url
    page.go_back()
    expect(page.locator("#explorer-crumbs li")).to_have_count(2)
    expect(page.locator("#explorer-group")).to_contain_text("Region")
    page.go_forward()
    expect(page.locator("#explorer-crumbs li")).to_have_count(3)
    assert page.url == drilled
    # the same link in a fresh page shows the same total
    other = page.context.new_page()
    other.goto(f"{stack.base_url}{link}")
    expect(other.locator("[data-total]")).to_have_attribute("data-total", str(total))


def test_the_explorer_reads_at_820_pixels(page, embedded_stack, tmp_path):
    sign_in(page, embedded_stack)
    page.set_viewport_size({"width": 820, "height": 1000})
    page.goto(f"{embedded_stack.base_url}/explorer")
    chart = page.locator("#explorer-graph .main-svg").first
    expect(chart).to_be_visible()
    expect(page.locator("#explorer-graph g.point")).not_to_have_count(0)
    box = chart.bounding_box()
    assert box is not None and box["height"] > 300, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 820
    page.screenshot(path=str(tmp_path / "explorer-820.png"), full_page=True)


def test_the_chart_toolbar_downloads_a_png_and_offers_no_outside_service(page, embedded_stack):
    sign_in(page, embedded_stack)
    page.goto(f"{embedded_stack.base_url}/explorer")
    expect(page.locator("#explorer-graph g.point")).not_to_have_count(0)
    page.locator("#explorer-graph").hover()
    buttons = page.locator("#explorer-graph .modebar-btn")
    expect(buttons.first).to_be_attached()
    titles = [b.get_attribute("data-title") or "" for b in buttons.all()]
    assert not [t for t in titles if "Chart Studio" in t or "Share" in t or "plotly" in t.lower()], titles
    with page.expect_download() as download:
        page.locator("#explorer-graph .modebar-btn[data-title^='Download plot']").click()
    path = download.value.path()
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [e for e in page.console_errors if "Content Security Policy" in e or "img-src" in e], \
        page.console_errors
