"""The shared chart builders: one colour per key everywhere, money axes that read, exact hovers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from layouts import charts


def test_a_key_has_one_colour_on_every_chart_and_other_is_grey():
    assert charts.colour_for("Amazon EC2") == charts.colour_for("Amazon EC2")
    assert charts.colour_for("Other") == charts.OTHER_COLOUR
    assert len({charts.colour_for(f"service {i}") for i in range(200)}) == len(charts.PALETTE)


def test_a_money_axis_names_its_currency_and_small_ranges_keep_their_decimals():
    small = charts.money_axis("USD", [0.4, 1.7, 2.1])
    assert small["title"]["text"] == "Cost (USD)" and small["tickprefix"] == "$"
    # ticks 0.5 apart must read 0.5, 1, 1.5, not 1, 1, 2 (FOCUS samples cost a few dollars)
    assert small["tickformat"] == ",.2~f"
    assert charts.money_axis("USD", [0.004])["tickformat"] == ",.4~f"
    assert charts.money_axis("USD", [25_000.0])["tickformat"] == ",.0f"
    chf = charts.money_axis("CHF", [5.0])
    assert chf["tickprefix"] == "" and chf["ticksuffix"] == " CHF" and chf["title"]["text"] == "Cost (CHF)"


def test_a_series_figure_stacks_keys_in_order_with_exact_hovers_and_keys_for_clicks():
    points = [(dt.date(2026, 1, 1), "b", Decimal("1.00000000001")), (dt.date(2026, 2, 1), "a", Decimal("2")),
              (dt.date(2026, 1, 1), "a", Decimal("-0.5"))]
    figure = charts.series_figure(points, keys=["a", "b"], kind="bar", currency="USD", granularity="month",
                                  labels={"a": "<b>Alpha</b>"})
    a, b = figure["data"]
    assert a["x"] == ["Jan 2026", "Feb 2026"] and a["y"] == [-0.5, 2.0] and b["y"] == [1.00000000001, 0.0]
    assert b["customdata"][0] == ["b", "$1.00000000001"] and a["customdata"][0] == ["a", "-$0.50"]
    assert "<b>Alpha</b>" not in a["hovertemplate"] and "&lt;b&gt;Alpha" in a["hovertemplate"]
    assert figure["layout"]["barmode"] == "relative"  # credits stack below zero
    assert figure["layout"]["xaxis"]["type"] == "category"


def test_a_treemap_leaves_out_credits_and_says_so_when_nothing_is_left():
    figure = charts.treemap_figure([("a", Decimal("3")), ("credit", Decimal("-1"))], currency="USD")
    assert figure["data"][0]["labels"] == ["a"]
    empty = charts.treemap_figure([("credit", Decimal("-1"))], currency="USD")
    assert empty["data"] == [] and "credit" in empty["layout"]["annotations"][0]["text"]


def test_the_toolbar_offers_no_outside_service():
    assert charts.CHART_CONFIG["showSendToCloud"] is False and charts.CHART_CONFIG["showEditInChartStudio"] is False
    assert "sendDataToCloud" in charts.CHART_CONFIG["modeBarButtonsToRemove"]
