"""The jobs page: recent jobs with their state and progress."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dash_bootstrap_components as dbc
from dash import html

from layouts import ids

if TYPE_CHECKING:
    from services.jobs import TaskView

STATUS_COLORS = {"succeeded": "success", "failed": "danger", "cancelled": "secondary",
                 "running": "primary", "queued": "info", "pending": "light",
                 "awaiting_approval": "warning"}


def page(tasks: list[TaskView]) -> list[object]:
    """Return the list of recent jobs, or an empty state that says how to start one."""
    header = html.H1("Jobs", className="h3 mb-3")
    if not tasks:
        return [header, dbc.Alert("No jobs yet. Start one from the Maintenance card on the overview.",
                                  color="light")]
    rows = [
        html.Tr([
            html.Td(str(t.id)),
            html.Td(t.kind),
            html.Td(dbc.Badge(t.status, color=STATUS_COLORS.get(t.status, "secondary"))),
            html.Td(dbc.Progress(value=t.progress, label=f"{t.progress}%", style={"height": "1rem"})),
            html.Td(t.error or t.step, className="small"),
            html.Td(f"{t.created_at:%Y-%m-%d %H:%M} UTC", className="small"),
        ])
        for t in tasks
    ]
    table = dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("#", "Kind", "Status", "Progress", "Step", "Created")])),
        html.Tbody(rows),
    ], hover=True, responsive=True, size="sm", id=ids.JOB_HISTORY)
    return [header, table]
