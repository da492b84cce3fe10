"""The page frame: navigation bar, location, per-page-load id and the page container."""

from __future__ import annotations

from collections.abc import Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids


def navbar(*, display_name: str, active_path: str, nav_items: Sequence[tuple[str, str]]) -> dbc.Navbar:
    """Return the top navigation bar for a signed-in user, linking to ``nav_items`` (label, path)."""
    links = [
        dbc.NavItem(dbc.NavLink(label, href=href, active=(href == active_path)))
        for label, href in nav_items
    ]
    return dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand("FinOps Dashboard", href="/"),
            dbc.Nav(links, className="me-auto", navbar=True),
            dbc.Nav([
                dbc.NavItem(html.Span(display_name, className="navbar-text me-3")),
                dbc.NavItem(dbc.NavLink("Sign out", href="/auth/logout", external_link=True)),
            ], navbar=True),
        ], fluid=True),
        color="dark", dark=True, className="mb-3", id=ids.NAVBAR,
    )


def frame(*, page_load_id: str) -> html.Div:
    """Return the app's root layout; the page itself is rendered by the router callback."""
    return html.Div([
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Store(id=ids.PAGE_LOAD_ID, data=page_load_id),
        # The dates and accounts chosen last, which follow the user from page to page (this tab only).
        dcc.Store(id=ids.SHARED_FILTERS, storage_type="session"),
        html.Div(id=ids.PAGE),
    ])


def page(*, content: object, display_name: str, path: str, embedded: bool,
         nav_items: Sequence[tuple[str, str]]) -> html.Div:
    """Wrap a page's content, with navigation unless it is embedded in a portal."""
    body = dbc.Container(content, fluid=True, className="pb-4")
    if embedded:
        return html.Div(body, className="pt-3")
    return html.Div([navbar(display_name=display_name, active_path=path, nav_items=nav_items), body])


def not_found(path: str) -> html.Div:
    """Return the page shown for an unknown path."""
    return html.Div([
        html.H1("Page not found", className="h4"),
        html.P(f"There is no page at {path}."),
        dcc.Link("Back to the overview", href="/"),
    ])
