"""Chart building blocks shared by every page: one look, one colour per key, money axes that read.

Figures are plain dictionaries in Plotly's JSON form: building ``go.Figure`` objects validates every
property against the template, which cost more than the query behind a chart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from dash import dcc

from layouts.formatting import exact_money

Figure = dict[str, Any]

#: The toolbar: no logo, no control that sends data to an outside service, PNG download kept.
CHART_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "showLink": False,
    "modeBarButtonsToRemove": ["sendDataToCloud", "editInChartStudio", "lasso2d", "select2d"],
    "toImageButtonOptions": {"format": "png", "filename": "finops-chart", "scale": 2},
}

#: 20 colours that stay apart from each other (Tableau 20, reordered so neighbours differ).
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#86bcb6", "#a0cbe8", "#ffbe7d", "#8cd17d", "#ff9d9a", "#499894", "#f1ce63",
    "#d37295", "#fabfd2", "#d4a6c8", "#79706e",
)
OTHER_COLOUR = "#bab0ac"
OTHER_LABELS = frozenset({"Other"})
FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
_FONT = {"family": FONT_FAMILY, "size": 12, "color": "#212529"}
_GRID = "#e9ecef"
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def colour_for(key: str) -> str:
    """The one colour a key (a service, an account ...) has on every chart."""
    if key in OTHER_LABELS:
        return OTHER_COLOUR
    digest = hashlib.blake2s(key.encode("utf-8"), digest_size=4).digest()
    return PALETTE[int.from_bytes(digest, "big") % len(PALETTE)]


def money_axis(currency: str, values: Iterable[float] = ()) -> dict[str, Any]:
    """A money axis: the currency in its title and on its ticks, ticks that never repeat."""
    largest = max((abs(v) for v in values), default=0.0)
    symbol = _SYMBOLS.get(currency, "")
    return {
        "title": {"text": f"Cost ({currency})", "standoff": 8},
        "tickprefix": symbol,
        "ticksuffix": "" if symbol else f" {currency}",
        # "~" drops trailing zeros, so ticks 0.5 apart read 0.5 and 1, not 1 and 1
        "tickformat": ",.4~f" if largest < 1 else (",.2~f" if largest < 1000 else ",.0f"),
        "separatethousands": True,
        "gridcolor": _GRID,
        "zerolinecolor": "#adb5bd",
        "automargin": True,
        "rangemode": "tozero",
    }


def base_layout(*, height: int, legend: bool = False, **more: Any) -> dict[str, Any]:
    """The layout every chart starts from: white, compact, readable, a fixed height."""
    layout: dict[str, Any] = {
        "height": height,
        "autosize": True,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": _FONT,
        "hoverlabel": {"font": {"family": _FONT["family"], "size": 12}},
        "showlegend": legend,
        "separators": ".,",
    }
    if legend:
        layout["legend"] = {"orientation": "h", "y": -0.18, "x": 0, "xanchor": "left", "yanchor": "top",
                            "itemclick": "toggle", "itemdoubleclick": False}
    layout.update(more)
    return layout


def graph(component_id: str | dict[str, Any], *, height: int = 360, figure: Figure | None = None) -> dcc.Graph:
    """A chart component with the house toolbar and a height that holds at every width."""
    return dcc.Graph(id=component_id, figure=figure or empty_figure("Loading...", height=height),
                     config=CHART_CONFIG, style={"height": f"{height}px", "minHeight": f"{height}px"})


def empty_figure(message: str, *, height: int = 360) -> Figure:
    """An empty chart that says why it is empty."""
    return {"data": [], "layout": base_layout(
        height=height, xaxis={"visible": False}, yaxis={"visible": False},
        annotations=[{"text": message, "showarrow": False, "font": {"size": 14, "color": "#6c757d"},
                      "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}])}


def _period_axis(granularity: str) -> dict[str, Any]:
    if granularity == "month":  # one labelled category per month, centred under its bar
        return {"type": "category", "automargin": True, "showgrid": False}
    return {"type": "date", "automargin": True, "showgrid": False, "tickformat": "%d %b",
            "hoverformat": "%d %b %Y"}


def period_label(period: dt.date, granularity: str) -> str:
    """A period as its axis shows it: "Oct 2026" for a month, the ISO date for a day."""
    return f"{period:%b %Y}" if granularity == "month" else period.isoformat()


def series_figure(points: Sequence[tuple[dt.date, str, Decimal]], *, keys: Sequence[str], kind: str,
                  currency: str, granularity: str, labels: Mapping[str, str] | None = None,
                  height: int = 380, dimension: str = "") -> Figure:
    """Amounts by period, one series per key (stacked bars, lines or stacked areas), in ``keys`` order.

    Each point carries its key in ``customdata`` so a click can tell which key it was.
    """
    labels = labels or {}
    by_key: dict[str, dict[dt.date, Decimal]] = {k: {} for k in keys}
    periods = sorted({p for p, _, _ in points})
    for period, key, amount in points:
        by_key.setdefault(key, {})[period] = by_key.get(key, {}).get(period, Decimal(0)) + amount
    traces: list[dict[str, Any]] = []
    for key in by_key:
        amounts = [by_key[key].get(p, Decimal(0)) for p in periods]
        label = labels.get(key, key) or "(none)"
        trace: dict[str, Any] = {
            "x": [period_label(p, granularity) for p in periods],
            "y": [float(a) for a in amounts],
            "name": label,
            "customdata": [[key, exact_money(a, currency)] for a in amounts],
            "hovertemplate": f"<b>{_escape(label)}</b><br>%{{x}}<br>%{{customdata[1]}}<extra></extra>",
            "marker": {"color": colour_for(key)},
        }
        if kind == "bar":
            trace["type"] = "bar"
        else:
            trace.update(type="scatter", mode="lines+markers" if len(periods) < 40 else "lines",
                         line={"color": colour_for(key), "width": 2})
            if kind == "area":
                trace.update(stackgroup="one")
        traces.append(trace)
    totals = [float(sum((by_key[k].get(p, Decimal(0)) for k in by_key), Decimal(0))) for p in periods]
    axis_values = totals if kind in ("bar", "area") else [v for t in traces for v in t["y"]]
    layout = base_layout(height=height, legend=True, barmode="relative", hovermode="closest",
                         xaxis=_period_axis(granularity), yaxis=money_axis(currency, axis_values))
    if dimension:
        layout["legend"]["title"] = {"text": dimension}
    return {"data": traces, "layout": layout}


def treemap_figure(items: Sequence[tuple[str, Decimal]], *, currency: str, labels: Mapping[str, str] | None = None,
                   height: int = 380) -> Figure:
    """Each key's share of the total as a treemap (negative totals, credits, cannot be areas: left out)."""
    labels = labels or {}
    shown = [(k, a) for k, a in items if a > 0]
    figure: Figure = {"data": [{
        "type": "treemap",
        "labels": [labels.get(k, k) or "(none)" for k, _ in shown],
        "parents": ["" for _ in shown],
        "values": [float(a) for _, a in shown],
        "customdata": [[k, exact_money(a, currency)] for k, a in shown],
        "marker": {"colors": [colour_for(k) for k, _ in shown]},
        "texttemplate": "%{label}<br>%{percentRoot:.1%}",
        "hovertemplate": "<b>%{label}</b><br>%{customdata[1]}<br>%{percentRoot:.1%} of the total<extra></extra>",
        "branchvalues": "remainder",
        "pathbar": {"visible": False},
        "tiling": {"packing": "squarify"},
    }], "layout": base_layout(height=height)}
    if not shown:
        return empty_figure("Nothing to show as areas: every amount here is zero or a credit.", height=height)
    return figure


def bar_figure(items: Sequence[tuple[str, Decimal]], *, currency: str, labels: Mapping[str, str] | None = None,
               horizontal: bool = True, height: int = 360) -> Figure:
    """One bar per key, in the order given (largest first reads top-down when horizontal)."""
    labels = labels or {}
    ordered = list(reversed(items)) if horizontal else list(items)
    names = [labels.get(k, k) or "(none)" for k, _ in ordered]
    values = [float(a) for _, a in ordered]
    trace: dict[str, Any] = {
        "type": "bar",
        "orientation": "h" if horizontal else "v",
        "x": values if horizontal else names,
        "y": names if horizontal else values,
        "customdata": [[k, exact_money(a, currency)] for k, a in ordered],
        "marker": {"color": [colour_for(k) for k, _ in ordered]},
        "hovertemplate": "<b>%{" + ("y" if horizontal else "x") + "}</b><br>%{customdata[1]}<extra></extra>",
    }
    category_axis = {"automargin": True, "type": "category"}
    money = money_axis(currency, values)
    layout = base_layout(height=height, xaxis=money if horizontal else category_axis,
                         yaxis=category_axis if horizontal else money)
    return {"data": [trace], "layout": layout}


def _escape(text: str) -> str:
    """Plotly's hover text is HTML-like: keep a key's own characters from being read as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace("{", "&#123;").replace("}", "&#125;")
