"""Route a path to its page."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

from dash import Dash, Input, Output, State
from flask_login import current_user

from callbacks.context import current_actor
from layouts import ids, jobs, overview, shell
from services import costs, database
from services import jobs as job_service


def render_page(pathname: str | None, search: str | None) -> object:
    """Build the page for a path (the shell around it unless ?embed=1)."""
    path = pathname or "/"
    embedded = parse_qs((search or "").lstrip("?")).get("embed") == ["1"]
    actor = current_actor()
    with database.session_scope() as session:
        if path == "/":
            content = overview.page(today=dt.datetime.now(dt.UTC).date(),
                                    accounts=costs.list_accounts(session, actor=actor))
        elif path == "/jobs":
            content = jobs.page(job_service.list_tasks(session, actor=actor, limit=50))
        else:
            content = shell.not_found(path)
    return shell.page(content=content, display_name=current_user.display_name, path=path,
                      embedded=embedded)


def register(app: Dash) -> None:
    """Register the router."""
    app.callback(Output(ids.PAGE, "children"), Input(ids.URL, "pathname"),
                 State(ids.URL, "search"))(render_page)
