"""The administration page: a frame that the admins' maintenance tools are placed in."""

from __future__ import annotations

from dash import html

from layouts import ids


def page() -> list[object]:
    """Return the administration page's heading and its (for now empty) content container."""
    return [html.H1("Administration", className="h4"), html.Div(id=ids.ADMIN_CONTENT)]
