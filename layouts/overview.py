"""The overview page: filters, KPI cards, daily trend, top services, cost by account, a job."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from layouts import ids
from layouts.formatting import money, percent

if TYPE_CHECKING:
    from services.costs.queries import Kpis, Overview
    from services.jobs.lifecycle import TaskView

METRIC_OPTIONS = [
    {"label": "Unblended", "value": "unblended_cost"},
    {"label": "Amortised", "value": "amortized_cost"},
    {"label": "Net", "value": "net_cost"},
]
CHART_CONFIG = {"displaylogo": False, "responsive": True}


def page(*, today: dt.date, accounts: list[tuple[str, str]],
         date_range: tuple[dt.date, dt.date] | None = None) -> list[object]:
    """Return the overview page for a date range (default: the last 90 days), every account."""
    start, end = date_range or (today - dt.timedelta(days=89), today)
    return [
        dbc.Row([
            dbc.Col(html.H1("Cost overview", className="h3"), md=4),
            dbc.Col(dcc.DatePickerRange(
                id=ids.OVERVIEW_RANGE, start_date=start, end_date=end,
                max_date_allowed=today, display_format="D MMM YYYY", minimum_nights=0,
            ), md="auto"),
            dbc.Col(dcc.Dropdown(
                id=ids.OVERVIEW_ACCOUNTS, multi=True, placeholder="All accounts",
                options=[{"label": f"{name or acct} ({acct})", "value": acct} for acct, name in accounts],
            ), md=3),
            dbc.Col(dbc.RadioItems(id=ids.OVERVIEW_METRIC, options=METRIC_OPTIONS, value="unblended_cost",
                                   inline=True), md="auto"),
        ], className="g-2 align-items-center mb-3"),
        html.Div(id=ids.OVERVIEW_MESSAGE),
        dcc.Loading(html.Div(id=ids.OVERVIEW_KPIS), type="dot"),
        dbc.Row([
            dbc.Col(_card("Daily cost", [
                html.Div(id=ids.OVERVIEW_TOTAL, className="text-body-secondary small"),
                dcc.Graph(id=ids.OVERVIEW_TREND, config=CHART_CONFIG),
            ]), lg=8),
            dbc.Col(_card("Top services", dcc.Graph(id=ids.OVERVIEW_SERVICES, config=CHART_CONFIG)), lg=4),
        ], className="g-3 mb-3"),
        dbc.Row([
            dbc.Col(_card("Cost by account", dcc.Graph(id=ids.OVERVIEW_ACCOUNTS_CHART, config=CHART_CONFIG)),
                    lg=8),
            dbc.Col(job_card(), lg=4),
        ], className="g-3"),
    ]


def _card(title: str, body: object) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(title), dbc.CardBody(body)], className="h-100 shadow-sm")


def job_card() -> dbc.Card:
    """Return the card that starts, follows and cancels the rollup rebuild job."""
    return _card("Maintenance", [
        html.P("Rebuild the rollup tables from the cost facts, one billing period at a time.",
               className="small text-body-secondary"),
        dbc.Progress(id=ids.JOB_PROGRESS, value=0, label="", striped=True, animated=False,
                     className="mb-2", style={"height": "1.25rem"}),
        html.Div(id=ids.JOB_STEP, className="small text-body-secondary"),
        html.Div(id=ids.JOB_STATUS, className="small mb-2", children="Not started."),
        dbc.ButtonGroup([
            dbc.Button("Rebuild rollups", id=ids.JOB_START, color="primary", size="sm"),
            dbc.Button("Cancel", id=ids.JOB_CANCEL, color="outline-danger", size="sm", disabled=True),
        ]),
    ])


def kpi_cards(kpis: Kpis, currency: str) -> dbc.Row:
    """Return the four headline figures."""
    items = [
        ("Month to date", money(kpis.month_to_date, currency), f"as of {kpis.as_of:%d %b %Y}"),
        ("Last month", money(kpis.last_month_total, currency), ""),
        ("Forecast for month end", money(kpis.forecast_month_end, currency), "linear, last 7 days"),
        ("Change vs last month", percent(kpis.change_vs_last_month_pct),
         f"same days last month: {money(kpis.last_month_same_days, currency)}"),
    ]
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Div(label, className="text-body-secondary small"),
            html.Div(value, className="fs-4 fw-semibold", **{"data-kpi": label}),
            html.Div(note, className="small text-body-secondary"),
        ]), className="shadow-sm"), md=3)
        for label, value, note in items
    ], className="g-3 mb-3")


def _layout(fig: go.Figure, *, height: int = 320) -> go.Figure:
    fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, height=height,
                      template="plotly_white", showlegend=False)
    return fig


def trend_figure(overview: Overview) -> go.Figure:
    """Daily cost as bars."""
    fig = go.Figure(go.Bar(
        x=[d.isoformat() for d, _ in overview.daily],
        y=[float(v) for _, v in overview.daily],
        hovertemplate="%{x|%d %b %Y}<br>%{y:$,.2f}<extra></extra>",
    ))
    fig.update_yaxes(tickprefix="$" if overview.currency == "USD" else "", tickformat=",.0f")
    return _layout(fig)


def services_figure(overview: Overview) -> go.Figure:
    """Top services (and the rest as Other) as horizontal bars, largest on top."""
    rows = list(reversed(overview.top_services))
    fig = go.Figure(go.Bar(
        x=[float(v) for _, v in rows], y=[name for name, _ in rows], orientation="h",
        hovertemplate="%{y}<br>%{x:$,.2f}<extra></extra>",
    ))
    fig.update_yaxes(automargin=True)
    return _layout(fig, height=360)


def accounts_figure(overview: Overview) -> go.Figure:
    """Cost per account as bars, largest first."""
    fig = go.Figure(go.Bar(
        x=[name or acct for acct, name, _ in overview.by_account],
        y=[float(v) for _, _, v in overview.by_account],
        customdata=[acct for acct, _, _ in overview.by_account],
        hovertemplate="%{x} (%{customdata})<br>%{y:$,.2f}<extra></extra>",
    ))
    return _layout(fig)


def total_line(overview: Overview) -> str:
    """Return the one-line total of the selected range."""
    f = overview.filter
    return (f"{money(overview.total, overview.currency)} from {f.start:%d %b %Y} to {f.end:%d %b %Y}")


def empty_figure(message: str) -> go.Figure:
    """Return an empty chart that says why it is empty."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig)


def message(text: str, *, color: str = "warning") -> dbc.Alert:
    """Return a message shown above the charts."""
    return dbc.Alert(text, color=color, className="py-2")


def job_status(task: TaskView) -> str:
    """Describe a finished job in one line."""
    if task.status == "succeeded":
        return f"Job {task.id} finished: {task.step}."
    return f"Job {task.id} {task.status}: {task.error or task.step}."
