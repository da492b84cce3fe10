"""Route a path to its page."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs

from dash import Dash, Input, Output, State
from flask_login import current_user
from sqlalchemy.orm import Session

from callbacks.context import current_actor
from layouts import admin, data, explorer, ids, jobs, overview, shell
from services import database
from services.aws import profiles
from services.aws.regions import AWS_REGIONS
from services.costs import explorer as explorer_service
from services.costs import queries
from services.errors import DomainError
from services.identity.permissions import Actor, may_open, pages_for
from services.jobs import kinds as job_kinds
from services.jobs import lifecycle as job_service
from services.jobs import schedules

JOB_PATH = re.compile(r"^/jobs/(\d{1,12})$")


def _job_detail(session: Session, *, actor: Actor, task_id: int) -> object:
    try:
        task = job_service.get_task(session, actor=actor, task_id=task_id)
    except DomainError:
        return shell.not_found(f"/jobs/{task_id}")
    return jobs.detail_page(task, results=job_service.list_results(session, actor=actor, task_id=task_id),
                            can_cancel=job_service.can_cancel(task, actor=actor),
                            can_approve=job_service.can_approve(task, actor=actor))


def _linked_range(query: dict[str, list[str]], today: dt.date) -> tuple[dt.date, dt.date] | None:
    """A date range from a link (?start=YYYY-MM-DD&end=YYYY-MM-DD, e.g. a portal's embed), or
    None for the default when it is missing or not a valid range."""
    try:
        cost_filter = queries.parse_filter(start=query.get("start", [""])[0], end=query.get("end", [""])[0])
    except DomainError:
        return None
    return (cost_filter.start, cost_filter.end) if cost_filter.end <= today else None


def _explorer_page(session: Session, search: str | None, shared: dict[str, object] | None) -> list[object]:
    """The explorer with its controls set from the link's state (the default view and a message
    when the link does not hold a valid one); a bare link takes the dates and accounts chosen last."""
    today = dt.datetime.now(dt.UTC).date()
    message = None
    try:
        state = explorer_service.parse_state(search)
        if not explorer_service.state_to_query(state):
            state = explorer_service.with_shared_filters(state, shared)
    except DomainError as exc:
        state, message = explorer_service.ExplorerState(), f"This link's view could not be opened: {exc.message}"
    dimensions = [(d, explorer_service.dimension_label(d)) for d in explorer_service.list_dimensions(session)]
    return explorer.page(state=state, today=today, dimensions=dimensions,
                         preset_labels=explorer_service.PRESET_LABELS,
                         query=explorer_service.state_to_query(state), message=message)


def render_page(pathname: str | None, search: str | None, shared: dict[str, object] | None = None) -> object:
    """Build the page for a path (the shell around it unless ?embed=1)."""
    path = pathname or "/"
    query = parse_qs((search or "").lstrip("?"))
    embedded = query.get("embed") == ["1"]
    actor = current_actor()
    with database.session_scope() as session:
        if not may_open(actor, path):
            content = shell.not_found(path)
        elif path == "/":
            today = dt.datetime.now(dt.UTC).date()
            content = overview.page(today=today, accounts=queries.list_accounts(session, actor=actor),
                                    date_range=_linked_range(query, today))
        elif path == "/explorer":
            content = _explorer_page(session, search, shared)
        elif path == "/jobs":
            kinds = [(k.name, k.label) for k in job_kinds.list_kinds(actor=actor)]
            content = jobs.page(kinds=kinds, tasks=job_service.list_tasks(session, actor=actor, limit=jobs.PAGE_SIZE),
                                schedules=schedules.list_schedules(session, actor=actor))
        elif path == "/data":
            content = data.page(profiles=profiles.list_profiles(session, actor=actor),
                                can_manage=actor.has_role("admin"), regions=sorted(AWS_REGIONS))
        elif path == "/admin":
            content = admin.page()
        elif (match := JOB_PATH.match(path)) is not None:
            content = _job_detail(session, actor=actor, task_id=int(match.group(1)))
        else:
            content = shell.not_found(path)
    return shell.page(content=content, display_name=current_user.display_name, path=path,
                      embedded=embedded, nav_items=pages_for(actor))


def register(app: Dash) -> None:
    """Register the router."""
    app.callback(Output(ids.PAGE, "children"), Input(ids.URL, "pathname"),
                 State(ids.URL, "search"), State(ids.SHARED_FILTERS, "data"))(render_page)
