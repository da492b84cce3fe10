"""The explorer's callback through Dash's endpoint: clicks, legend entries, table headers and the
address each move the view one step; bad input shows a message and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs

import pytest

from services import database
from services.costs import cache, ingest
from tests.factories import fact, make_user
from tests.web import dash_headers, sign_in_and_enrol

ROWS = [
    fact(dt.date(2026, 1, 5), "111111111111", "Amazon EC2", "10.5", region="us-east-1", usage_type="BoxUsage"),
    fact(dt.date(2026, 1, 6), "222222222222", "Amazon S3", "2.25", region="eu-west-1", usage_type="Storage"),
]
START = dict(preset="custom", start="2026-01-01", end="2026-01-31")


@pytest.fixture()
def signed_in(app, client):
    cache.configure(None)
    with database.session_scope() as session:
        ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1), rows=ROWS)
        make_user(session, username="fiona")
    sign_in_and_enrol(client, "fiona")
    return client


def _payload(current: str, changed: str, **values: object) -> dict[str, object]:
    """The request Dash's front end sends when ``changed`` (id.prop) fired, the page showing ``current``."""
    from callbacks import explorer as cb
    from layouts import ids

    controls = {"explorer-preset.value": "custom", "explorer-range.start_date": "2026-01-01",
                "explorer-range.end_date": "2026-01-31", "explorer-grain.value": "month",
                "explorer-metric.value": "unblended_cost", "explorer-group.value": "account",
                "explorer-chart.value": "bar", "explorer-compare.value": True, "explorer-search.value": ""}
    inputs = [("explorer-url", "search", current), (ids.EXPLORER_STATE, "data", current),
              *((c, p, controls[f"{c}.{p}"]) for c, p in cb.CONTROLS),
              (ids.EXPLORER_GRAPH, "clickData", None), (ids.EXPLORER_GRAPH, "restyleData", None),
              (ids.EXPLORER_TABLE, "sort_by", []), (ids.EXPLORER_TABLE, "page_current", 0),
              (ids.EXPLORER_TABLE, "active_cell", None), (ids.EXPLORER_FILTER_ADD, "n_clicks", None)]
    state = [(ids.EXPLORER_URL, "pathname", "/explorer"), (ids.EXPLORER_KEYS, "data", values.pop("keys", [])),
             (ids.EXPLORER_FILTER_DIMENSION, "value", values.pop("filter_dimension", None)),
             (ids.EXPLORER_FILTER_VALUES, "value", values.pop("filter_values", None)),
             (ids.EXPLORER_TABLE, "data", values.pop("table_rows", []))]
    inputs = [(c, p, values.get(f"{c}.{p}", v)) for c, p, v in inputs]
    outputs = [*cb.CONTROLS, *((ids.EXPLORER_GRAPH, "figure"), (ids.EXPLORER_KEYS, "data"),
                               (ids.EXPLORER_TABLE, "data"), (ids.EXPLORER_TABLE, "page_count"),
                               (ids.EXPLORER_TABLE, "page_current"), (ids.EXPLORER_TABLE, "sort_by"),
                               (ids.EXPLORER_TABLE, "columns"), (ids.EXPLORER_TABLE_TOTAL, "children"),
                               (ids.EXPLORER_SUMMARY, "children"), (ids.EXPLORER_CRUMBS, "children"),
                               (ids.EXPLORER_FILTERS, "children"), (ids.EXPLORER_CSV, "href"),
                               (ids.EXPLORER_PDF, "href"), (ids.EXPLORER_STATE, "data"),
                               (ids.EXPLORER_URL, "search"), (ids.EXPLORER_MESSAGE, "children"),
                               (ids.SHARED_FILTERS, "data"))]
    return {
        "output": "." + "...".join(f".{c}.{p}" for c, p in outputs).replace("....", "...") + "..",
        "outputs": [{"id": c, "property": p} for c, p in outputs],
        "inputs": [{"id": c, "property": p, "value": v} for c, p, v in inputs],
        "state": [{"id": c, "property": p, "value": v} for c, p, v in state],
        "changedPropIds": [changed],
    }


def _post(client, payload):  # type: ignore[no-untyped-def]
    response = client.post("/_dash-update-component", json=payload, headers=dash_headers(client))
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    return response.get_json()["response"] if response.status_code == 200 else {}


CURRENT = "?preset=custom&start=2026-01-01&end=2026-01-31&group_by=account"


def test_a_click_on_a_bar_drills_into_its_key(signed_in):
    click = {"points": [{"customdata": ["111111111111", "$10.50"]}]}
    shown = _post(signed_in, _payload(CURRENT, "explorer-graph.clickData", **{"explorer-graph.clickData": click}))
    query = parse_qs(shown["explorer-url"]["search"].lstrip("?"))
    assert query["drill"] == ["account=111111111111"] and shown["explorer-group"]["value"] == "service"
    assert "$10.50" in json.dumps(shown["explorer-summary"])


def test_a_click_on_a_legend_entry_drills_into_its_series(signed_in):
    shown = _post(signed_in, _payload(CURRENT, "explorer-graph.restyleData",
                                      **{"explorer-graph.restyleData": [{"visible": ["legendonly"]}, [1]]},
                                      keys=["111111111111", "222222222222"]))
    assert parse_qs(shown["explorer-url"]["search"].lstrip("?"))["drill"] == ["account=222222222222"]


def test_a_click_on_other_changes_nothing(signed_in):
    click = {"points": [{"customdata": ["Other", "$1.00"]}]}
    assert _post(signed_in, _payload(CURRENT, "explorer-graph.clickData", **{"explorer-graph.clickData": click})) == {}


def test_a_table_header_sorts_on_the_server(signed_in):
    shown = _post(signed_in, _payload(CURRENT, "explorer-table.sort_by", **{
        "explorer-table.sort_by": [{"column_id": "key", "direction": "asc"}]}))
    query = parse_qs(shown["explorer-url"]["search"].lstrip("?"))
    assert query["sort"] == ["key"] and query["descending"] == ["0"]
    assert [r["_key"] for r in shown["explorer-table"]["data"]] == ["111111111111", "222222222222"]


def test_a_filter_is_added_and_shown_with_a_link_that_removes_it(signed_in):
    shown = _post(signed_in, _payload(CURRENT, "explorer-filter-add.n_clicks", **{"explorer-filter-add.n_clicks": 1},
                                      filter_dimension="service", filter_values=["Amazon S3"]))
    assert parse_qs(shown["explorer-url"]["search"].lstrip("?"))["filter.service"] == ["Amazon S3"]
    chips = json.dumps(shown["explorer-filters"])
    assert "Service: Amazon S3" in chips and "filter.service" not in chips  # the chip's link drops it
    assert "$2.25" in json.dumps(shown["explorer-summary"])


def test_the_dates_and_accounts_follow_the_user_to_other_pages(signed_in):
    click = {"points": [{"customdata": ["111111111111", "$10.50"]}]}
    shown = _post(signed_in, _payload(CURRENT, "explorer-graph.clickData", **{"explorer-graph.clickData": click}))
    assert shown["shared-filters"]["data"] == {"preset": "custom", "start": "2026-01-01", "end": "2026-01-31",
                                              "accounts": ["111111111111"]}


def test_the_address_going_back_shows_its_view(signed_in):
    shown = _post(signed_in, _payload(CURRENT, "explorer-url.search",
                                      **{"explorer-url.search": "?preset=custom&start=2026-01-01&end=2026-01-31"}))
    assert shown["explorer-group"]["value"] == "service" and shown["explorer-state"]["data"] == \
        "?preset=custom&start=2026-01-01&end=2026-01-31"


@pytest.mark.parametrize("changed, values", [
    ("explorer-range.start_date", {"explorer-range.start_date": "2026-02-10", "explorer-range.end_date": "2026-01-31"}),
    ("explorer-url.search", {"explorer-url.search": "?group_by=colour"}),
    ("explorer-group.value", {"explorer-group.value": "tag:\x01bad"}),
])
def test_bad_input_shows_a_message_and_changes_nothing(signed_in, changed, values):
    shown = _post(signed_in, _payload(CURRENT, changed, **values))
    assert set(shown) == {"explorer-message"}, shown
    assert "Traceback" not in json.dumps(shown)
