"""The administration page: a frame that the admins' maintenance tools are placed in."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from layouts import ids
from layouts.overview import job_card


def page() -> list[object]:
    """Return the administration page: the rollup maintenance job (moved off the overview)."""
    return [html.H1("Administration", className="h4"),
            html.Div(dbc.Row(dbc.Col(job_card(), lg=6)), id=ids.ADMIN_CONTENT)]
