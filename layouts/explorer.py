"""The cost explorer page: controls, breadcrumbs, one chart to drill through, the table, exports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import dash_table, dcc, html

from layouts import charts, ids
from layouts.formatting import money, percent

if TYPE_CHECKING:
    from services.costs.explorer import Crumb, ExplorerState, ExplorerView

METRIC_OPTIONS = [
    {"label": "Unblended", "value": "unblended_cost"},
    {"label": "Amortised", "value": "amortized_cost"},
    {"label": "Net", "value": "net_cost"},
    {"label": "List (FOCUS, CUR)", "value": "list_cost"},
    {"label": "Contracted (FOCUS)", "value": "contracted_cost"},
]
CHART_OPTIONS = [
    {"label": "Stacked bars", "value": "bar"},
    {"label": "Lines", "value": "line"},
    {"label": "Areas", "value": "area"},
    {"label": "Treemap", "value": "treemap"},
]
GRAIN_OPTIONS = [{"label": "Monthly", "value": "month"}, {"label": "Daily", "value": "day"}]
CHART_HEIGHT = 400


def _labelled(label: str, control: object, *, control_id: str, width: dict[str, int]) -> dbc.Col:
    return dbc.Col([dbc.Label(label, html_for=control_id, className="small text-body-secondary mb-1"), control],
                   **width)


def page(*, state: ExplorerState, today: dt.date, dimensions: Sequence[tuple[str, str]],
         preset_labels: Mapping[str, str], query: str, message: str | None = None) -> list[object]:
    """Return the explorer for a state (its controls set from it); the data arrives by callback."""
    start, end = state.date_range(today)
    options = [{"label": label, "value": value} for value, label in dimensions]
    return [
        # The page's own view of the address: its callbacks never wait on components of other pages.
        dcc.Location(id=ids.EXPLORER_URL, refresh="callback-nav"),
        dcc.Store(id=ids.EXPLORER_STATE, data=query),
        dcc.Store(id=ids.EXPLORER_KEYS, data=None),
        dbc.Row([
            dbc.Col(html.H1("Cost explorer", className="h3 mb-0"), xs=12, md="auto"),
            dbc.Col(html.Div(id=ids.EXPLORER_VIEWS), className="ms-md-auto", xs=12, md="auto"),
        ], className="g-2 align-items-center mb-2"),
        dbc.Row([
            _labelled("Period", dcc.Dropdown(
                id=ids.EXPLORER_PRESET, value=state.preset, clearable=False, searchable=False,
                options=[{"label": label, "value": value} for value, label in preset_labels.items()]),
                control_id=ids.EXPLORER_PRESET, width={"xs": 12, "sm": 6, "lg": 2, "xxl": 2}),
            _labelled("Dates (YYYY-MM-DD)", dcc.DatePickerRange(
                id=ids.EXPLORER_RANGE, start_date=start, end_date=end, max_date_allowed=today,
                display_format="YYYY-MM-DD", minimum_nights=0, first_day_of_week=1,
                start_date_placeholder_text="start", end_date_placeholder_text="end"),
                control_id=ids.EXPLORER_RANGE, width={"xs": 12, "sm": 6, "lg": 3}),
            _labelled("Group by", dcc.Dropdown(id=ids.EXPLORER_GROUP, value=state.group_by, options=options,
                                               clearable=False),
                      control_id=ids.EXPLORER_GROUP, width={"xs": 12, "sm": 6, "lg": 2}),
            _labelled("Cost", dcc.Dropdown(id=ids.EXPLORER_METRIC, value=state.metric, options=METRIC_OPTIONS,
                                           clearable=False, searchable=False),
                      control_id=ids.EXPLORER_METRIC, width={"xs": 12, "sm": 6, "lg": 3}),
            _labelled("Grain", dbc.RadioItems(id=ids.EXPLORER_GRAIN, value=state.granularity, options=GRAIN_OPTIONS,
                                              inline=True),
                      control_id=ids.EXPLORER_GRAIN, width={"xs": 6, "sm": 3, "lg": 2}),
            _labelled("Chart", dcc.Dropdown(id=ids.EXPLORER_CHART, value=state.chart, options=CHART_OPTIONS,
                                            clearable=False, searchable=False),
                      control_id=ids.EXPLORER_CHART, width={"xs": 6, "sm": 3, "lg": 2}),
            dbc.Col(dbc.Switch(id=ids.EXPLORER_COMPARE, value=state.compare, label="Compare with previous period",
                               className="mb-1"), xs=12, sm=6, lg=3, className="align-self-end"),
        ], className="g-2 mb-2"),
        dbc.Row([
            dbc.Col(dcc.Dropdown(id=ids.EXPLORER_FILTER_DIMENSION, options=options, placeholder="Filter by...",
                                 clearable=True), xs=12, sm=4, lg=2),
            dbc.Col(dcc.Dropdown(id=ids.EXPLORER_FILTER_VALUES, multi=True, options=[],
                                 placeholder="values (choose a dimension first)"), xs=12, sm=5, lg=4),
            dbc.Col(dbc.Button("Add filter", id=ids.EXPLORER_FILTER_ADD, color="outline-primary", size="sm"),
                    xs="auto"),
            dbc.Col(html.Div(id=ids.EXPLORER_FILTERS, className="d-flex flex-wrap gap-1"), xs=12, lg=True),
        ], className="g-2 align-items-center mb-2"),
        html.Div(id=ids.EXPLORER_MESSAGE, children=dbc.Alert(message, color="warning", className="py-2")
                 if message else None),
        dbc.Card([
            dbc.CardHeader(dbc.Row([
                dbc.Col(html.Nav(id=ids.EXPLORER_CRUMBS, **{"aria-label": "Drill-down"}), xs=12, md=True),
                dbc.Col(html.Div([
                    html.A("CSV", id=ids.EXPLORER_CSV, href="#", className="btn btn-sm btn-outline-dark",
                           download=""),
                    html.A("PDF", id=ids.EXPLORER_PDF, href="#", className="btn btn-sm btn-outline-dark ms-1",
                           download=""),
                ]), xs="auto"),
            ], className="align-items-center g-2")),
            dbc.CardBody([
                html.Div(id=ids.EXPLORER_SUMMARY, className="mb-2"),
                dcc.Loading(charts.graph(ids.EXPLORER_GRAPH, height=CHART_HEIGHT), type="dot", delay_show=300),
                html.P("Click a bar, slice or legend entry to filter by it and see the next level.",
                       className="small text-body-secondary mb-0"),
            ]),
        ], className="shadow-sm mb-3"),
        dbc.Card([
            dbc.CardHeader(dbc.Row([
                dbc.Col(html.H2("Breakdown", className="h6 mb-0"), xs="auto"),
                dbc.Col([dbc.Label("Search rows", html_for=ids.EXPLORER_SEARCH, className="visually-hidden"),
                         dbc.Input(id=ids.EXPLORER_SEARCH, type="search", placeholder="Search rows",
                                   value=state.search, debounce=True, size="sm")], xs=12, sm=4,
                        className="ms-sm-auto"),
            ], className="align-items-center g-2")),
            dbc.CardBody([
                dash_table.DataTable(
                    id=ids.EXPLORER_TABLE, columns=table_columns(state.group_by, compare=state.compare),
                    data=[], page_action="custom", page_current=state.page - 1, page_size=25, page_count=1,
                    sort_action="custom", sort_mode="single",
                    sort_by=[{"column_id": state.sort, "direction": "desc" if state.descending else "asc"}],
                    style_table={"overflowX": "auto"}, style_as_list_view=True,
                    style_cell={"fontFamily": charts.FONT_FAMILY, "fontSize": "0.875rem", "padding": "0.25rem 0.5rem",
                                "textAlign": "left"},
                    style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "right"}
                                            for c in ("amount", "previous", "change", "change_pct")],
                    style_header={"fontWeight": "600"},
                ),
                html.Div(id=ids.EXPLORER_TABLE_TOTAL, className="small text-body-secondary mt-2"),
            ]),
        ], className="shadow-sm"),
    ]


def table_columns(dimension_label: str, *, compare: bool) -> list[dict[str, Any]]:
    """The table's columns: the key, the amount and, when comparing, the previous period and change."""
    columns = [{"id": "key", "name": dimension_label}, {"id": "amount", "name": "Cost"}]
    if compare:
        columns += [{"id": "previous", "name": "Previous period"}, {"id": "change", "name": "Change"},
                    {"id": "change_pct", "name": "Change %"}]
    return columns


def table_data(view: ExplorerView) -> list[dict[str, str]]:
    """The rows of the table's current page, amounts formatted in the view's currency."""
    cur = view.currency
    return [{
        "key": row.label, "_key": row.key, "amount": money(row.amount, cur),
        "previous": money(row.previous, cur) if row.previous is not None else "—",
        "change": money(row.change, cur) if row.change is not None else "—",
        "change_pct": percent(row.change_pct) if row.change_pct is not None else "—",
    } for row in view.rows]


def table_total(view: ExplorerView) -> str:
    """The line under the table: how many rows, and their total (the chart's total)."""
    rows = f"{view.row_count} row" + ("" if view.row_count == 1 else "s")
    return f"{rows}, total {money(view.total, view.currency)} (page {view.page} of {view.page_count})"


def summary(view: ExplorerView, *, metric_label: str) -> html.Div:
    """The headline: the range's total and, when comparing, the previous period's with the change."""
    parts: list[object] = [
        html.Span(money(view.total, view.currency), className="fs-4 fw-semibold me-2",
                  **{"data-total": str(view.total)}),
        html.Span(f"{metric_label} cost, {view.start.isoformat()} to {view.end.isoformat()}",
                  className="text-body-secondary me-3"),
    ]
    if view.previous_total is not None:
        change = view.change if view.change is not None else Decimal(0)
        colour = "text-danger" if change > 0 else ("text-success" if change < 0 else "text-body-secondary")
        parts.append(html.Span([
            html.Span(f"{'+' if change > 0 else ''}{money(change, view.currency)}", className=f"fw-semibold {colour}"),
            f" ({percent(view.change_pct)}) vs {money(view.previous_total, view.currency)} "
            f"from {view.previous_start.isoformat()} to {view.previous_end.isoformat()}",
        ], className="small"))
    return html.Div(parts, className="d-flex flex-wrap align-items-baseline")


def crumbs(trail: Sequence[Crumb], links: Sequence[str], *, current: str) -> html.Ol:
    """The breadcrumbs: each level a link back to it, then the dimension shown now."""
    items: list[object] = [html.Li(dcc.Link(crumb.label, href=link), className="breadcrumb-item")
                           for crumb, link in zip(trail, links, strict=True)]
    items.append(html.Li(f"by {current}", className="breadcrumb-item active", **{"aria-current": "page"}))
    return html.Ol(items, className="breadcrumb mb-0 small")


def filter_chips(filters: Sequence[tuple[str, str, str]]) -> list[object]:
    """The filters set by hand, each with a link that removes it: (dimension label, values, link)."""
    return [dcc.Link([f"{label}: {values} ", html.Span("×", **{"aria-hidden": "true"})], href=link,
                     className="badge rounded-pill text-bg-light border text-decoration-none",
                     title=f"Remove the {label} filter")
            for label, values, link in filters]


def figure(view: ExplorerView, *, dimension_label: str, labels: Mapping[str, str]) -> charts.Figure:
    """The view's chart: one series per key over time, or the keys' shares as a treemap."""
    state = view.state
    if view.is_empty:
        return charts.empty_figure("No costs for these settings. Widen the dates or remove a filter.",
                                   height=CHART_HEIGHT)
    if state.chart == "treemap":
        return charts.treemap_figure(view.keys, currency=view.currency, labels=labels, height=CHART_HEIGHT)
    return charts.series_figure(view.series, keys=[k for k, _ in view.keys], kind=state.chart,
                                currency=view.currency, granularity=state.granularity, labels=labels,
                                height=CHART_HEIGHT, dimension=dimension_label)


def export_href(path: str, params: Sequence[tuple[str, str]]) -> str:
    """A download link with the cost query's parameters."""
    return f"{path}?{urlencode(params)}"


def message(text: str, *, color: str = "warning") -> dbc.Alert:
    """A message above the chart."""
    return dbc.Alert(text, color=color, className="py-2")
