"""The overview page: filters, KPI cards, daily trend, top services, cost by account, a job."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from layouts import charts, ids
from layouts.formatting import money, percent

if TYPE_CHECKING:
    from services.costs.queries import Kpis, Overview
    from services.jobs.lifecycle import TaskView

METRIC_OPTIONS = [
    {"label": "Unblended", "value": "unblended_cost"},
    {"label": "Amortised", "value": "amortized_cost"},
    {"label": "Net", "value": "net_cost"},
]
CHART_CONFIG = charts.CHART_CONFIG


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
                charts.graph(ids.OVERVIEW_TREND, height=320),
            ]), lg=8),
            dbc.Col(_card("Top services", charts.graph(ids.OVERVIEW_SERVICES, height=360)), lg=4),
        ], className="g-3 mb-3"),
        dbc.Row([
            dbc.Col(_card("Cost by account", charts.graph(ids.OVERVIEW_ACCOUNTS_CHART, height=320)), lg=12),
        ], className="g-3"),
    ]


def _card(title: str, body: object) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(title), dbc.CardBody(body)], className="h-100 shadow-sm")


def job_card() -> dbc.Card:
    """Return the card that starts, follows and cancels the rollup rebuild job."""
    return _card("Maintenance", [
        html.P("Rebuild the rollup tables from the cost facts, one billing period at a time.",
               className="small text-body-secondary"),
        dbc.Progress(id=ids.JOB_PROGRESS, value=0, label="0%", striped=True, animated=False,
                     className="mb-2", style={"height": "1.25rem"}),
        html.Div(id=ids.JOB_STEP, className="small text-body-secondary"),
        html.Div(id=ids.JOB_STATUS, className="small mb-2", children="Not started."),
        dbc.ButtonGroup([
            dbc.Button("Rebuild rollups", id=ids.JOB_START, color="primary", size="sm"),
            dbc.Button("Cancel", id=ids.JOB_CANCEL, color="outline-danger", size="sm", disabled=True),
        ]),
    ])


def forecast_note(kpis: Kpis, currency: str) -> str:
    """What the forecast is made of, its range, and AWS's own forecast beside it."""
    f = kpis.forecast
    if f is None:
        return ""
    note = (f"range {money(f.low, currency, cents=False)}–{money(f.high, currency, cents=False)}; "
            f"{money(f.daily_rate, currency, cents=False)}/day recurring")
    if f.one_off_expected:
        note += f", {money(sum((e.amount for e in f.one_off_expected), Decimal(0)), currency, cents=False)} one-off due"
    if f.aws is not None:
        note += f"; AWS: {money(f.aws.mean, currency, cents=False)}"
        if f.aws.low is not None and f.aws.high is not None:
            note += f" ({money(f.aws.low, currency, cents=False)}–{money(f.aws.high, currency, cents=False)})"
    return note


def kpi_cards(kpis: Kpis, currency: str) -> dbc.Row:
    """Return the four headline figures, each naming the period it covers."""
    month = f"{kpis.as_of:%B %Y}"
    last = (kpis.as_of.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    items = [
        ("Month to date", money(kpis.month_to_date, currency), f"{month}, to {kpis.as_of.isoformat()}"),
        ("Last month", money(kpis.last_month_total, currency), f"{last:%B %Y}"),
        ("Forecast for month end", money(kpis.forecast_month_end, currency),
         f"{month}: {forecast_note(kpis, currency)}"),
        ("Change vs last month", percent(kpis.change_vs_last_month_pct),
         f"month to date vs the same days of {last:%B}: {money(kpis.last_month_same_days, currency)}"),
    ]
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Div(label, className="text-body-secondary small"),
            html.Div(value, className="fs-4 fw-semibold text-nowrap", **{"data-kpi": label}),
            html.Div(note, className="small text-body-secondary"),
        ]), className="shadow-sm h-100"), xs=12, sm=6, xl=3)
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
