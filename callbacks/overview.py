"""Overview page: the figures for a filter, and the rollup rebuild as a background job."""

from __future__ import annotations

import datetime as dt
import logging

from dash import Dash, Input, Output, State, ctx, no_update

from callbacks.context import actor_from_payload, current_actor
from layouts import ids, overview
from services import database
from services.costs import queries
from services.errors import DomainError
from services.jobs import lifecycle

logger = logging.getLogger(__name__)


def update_overview(start: str | None, end: str | None, accounts: list[str] | None,
                    metric: str | None) -> tuple[object, ...]:
    """Recompute the KPIs and charts for the chosen filter."""
    actor = current_actor()
    today = dt.datetime.now(dt.UTC).date()
    try:
        cost_filter = queries.parse_filter(start=start, end=end, account_ids=tuple(accounts or ()),
                                         metric=metric or "unblended_cost")
        with database.session_scope() as session:
            data = queries.get_overview(session, actor=actor, cost_filter=cost_filter, today=today)
    except DomainError as exc:
        empty = overview.empty_figure(exc.message)
        return overview.message(exc.message), no_update, "", empty, empty, empty
    if data.is_empty:
        text = "No costs in this range. Widen the dates, or import data."
        empty = overview.empty_figure(text)
        return (overview.message(text, color="info"), overview.kpi_cards(data.kpis, data.currency), "",
                empty, empty, empty)
    return (None, overview.kpi_cards(data.kpis, data.currency), overview.total_line(data),
            overview.trend_figure(data), overview.services_figure(data), overview.accounts_figure(data))


def rebuild_rollups(set_progress: object, n_clicks: int | None, page_id: str) -> str:
    """Run the rollup rebuild in a background worker, reporting progress to the page."""
    if not n_clicks:
        return no_update  # type: ignore[return-value]  # Dash sentinel
    database.after_fork()
    actor = actor_from_payload(ctx.custom_data.get("actor"))
    if actor is None:
        return "You are signed out. Sign in again to run jobs."

    def report(pct: int, step: str) -> None:
        set_progress((pct, f"{pct}%", step))  # type: ignore[operator]  # Dash passes a callable

    try:
        task = lifecycle.run_here(actor=actor, kind="rollups.rebuild", parameters={"page_id": page_id}, report=report)
    except DomainError as exc:
        return exc.message
    return overview.job_status(task)


def cancel_rebuild(n_clicks: int | None, page_id: str) -> str:
    """Record the cancellation of this page's running rebuild (the worker is stopped by Dash)."""
    if not n_clicks:
        return no_update  # type: ignore[return-value]  # Dash sentinel
    with database.session_scope() as session:
        count = lifecycle.cancel_tasks_of_page(session, actor=current_actor(), kind="rollups.rebuild",
                                          page_id=page_id)
    return "Job cancelled." if count else "Nothing to cancel."


def register(app: Dash) -> None:
    """Register the overview callbacks."""
    app.callback(
        Output(ids.OVERVIEW_MESSAGE, "children"),
        Output(ids.OVERVIEW_KPIS, "children"),
        Output(ids.OVERVIEW_TOTAL, "children"),
        Output(ids.OVERVIEW_TREND, "figure"),
        Output(ids.OVERVIEW_SERVICES, "figure"),
        Output(ids.OVERVIEW_ACCOUNTS_CHART, "figure"),
        Input(ids.OVERVIEW_RANGE, "start_date"),
        Input(ids.OVERVIEW_RANGE, "end_date"),
        Input(ids.OVERVIEW_ACCOUNTS, "value"),
        Input(ids.OVERVIEW_METRIC, "value"),
    )(update_overview)
    app.callback(
        Output(ids.JOB_STATUS, "children"),
        Input(ids.JOB_START, "n_clicks"),
        State(ids.PAGE_LOAD_ID, "data"),
        background=True,
        running=[
            (Output(ids.JOB_START, "disabled"), True, False),
            (Output(ids.JOB_CANCEL, "disabled"), False, True),
            (Output(ids.JOB_PROGRESS, "animated"), True, False),
        ],
        progress=[Output(ids.JOB_PROGRESS, "value"), Output(ids.JOB_PROGRESS, "label"),
                  Output(ids.JOB_STEP, "children")],
        progress_default=[0, "0%", "Starting..."],
        cancel=[Input(ids.JOB_CANCEL, "n_clicks")],
        interval=500,
        prevent_initial_call=True,
    )(rebuild_rollups)
    app.callback(
        Output(ids.JOB_STATUS, "children", allow_duplicate=True),
        Input(ids.JOB_CANCEL, "n_clicks"),
        State(ids.PAGE_LOAD_ID, "data"),
        prevent_initial_call=True,
    )(cancel_rebuild)
