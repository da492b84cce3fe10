"""The jobs pages: start a job from a form, the history with filters, one job watched live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids

if TYPE_CHECKING:
    from services.jobs.lifecycle import TaskView
    from services.jobs.schedules import ScheduleView

STATUS_COLORS = {"succeeded": "success", "failed": "danger", "cancelled": "secondary", "running": "primary",
                 "queued": "info", "pending": "light", "awaiting_approval": "warning"}
STATUSES = list(STATUS_COLORS)
PAGE_SIZE = 25
HIDDEN_FIELDS = {"page_id"}


def page(*, kinds: Sequence[tuple[str, str]], tasks: list[TaskView],
         schedules: Sequence[ScheduleView] = ()) -> list[object]:
    """Return the jobs page: a form to start one (or save it on a schedule), the history, the schedules."""
    return [
        html.H1("Jobs", className="h3 mb-3"),
        dbc.Row([
            dbc.Col(start_card(kinds), lg=4),
            dbc.Col([history_card(kinds, tasks),
                     dbc.Card([dbc.CardHeader("Schedules"),
                               dbc.CardBody(schedules_table(schedules), id=ids.SCHEDULES_TABLE)],
                              className="shadow-sm mt-3")], lg=8),
        ], className="g-3"),
    ]


def schedules_table(schedules: Sequence[ScheduleView]) -> object:
    """Return the saved schedules with their last and next run (UTC)."""
    if not schedules:
        return html.P("No schedules. Fill the form, give a name and a cron expression, and save it.",
                      className="small text-body-secondary mb-0")

    def when(value: object) -> str:
        return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"

    return dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Name", "Kind", "Cron (UTC)", "Last run", "Next run")])),
        html.Tbody([html.Tr([html.Td(s.name), html.Td(s.kind), html.Td(html.Code(s.cron)),
                             html.Td(when(s.last_run_at), className="small"),
                             html.Td(when(s.next_run_at) if s.is_enabled else "disabled", className="small")])
                    for s in schedules]),
    ], size="sm", hover=True, responsive=True, className="mb-0")


def start_card(kinds: Sequence[tuple[str, str]]) -> dbc.Card:
    """Return the form that starts a job: pick a kind, fill its parameters."""
    if not kinds:
        body: list[object] = [html.P("Your role cannot start jobs.", className="text-body-secondary")]
    else:
        body = [
            dbc.Label("Kind of job", html_for=ids.JOBS_KIND),
            dcc.Dropdown(id=ids.JOBS_KIND, options=[{"label": label, "value": name} for name, label in kinds],
                         value=kinds[0][0], clearable=False, className="mb-3"),
            html.Div(id=ids.JOBS_PARAMS),
            dbc.Button("Start", id=ids.JOBS_SUBMIT, color="primary", className="mt-2"),
            html.Div(id=ids.JOBS_SUBMIT_MESSAGE, className="mt-2"),
            html.Hr(),
            html.P("Or run it on a schedule:", className="small mb-1"),
            dbc.Input(id=ids.SCHEDULE_NAME, placeholder="Schedule name", className="mb-2"),
            dbc.Input(id=ids.SCHEDULE_CRON, placeholder="Cron in UTC, e.g. 0 6 * * 1-5", className="mb-2"),
            dbc.Button("Save schedule", id=ids.SCHEDULE_SAVE, color="outline-primary", size="sm"),
        ]
    return dbc.Card([dbc.CardHeader("Start a job"), dbc.CardBody(body)], className="shadow-sm")


def _field(name: str, spec: Mapping[str, Any], profiles: Sequence[tuple[int, str]]) -> object:
    label = spec.get("title", name.replace("_", " ").capitalize())
    field_id = {"type": ids.JOBS_PARAM, "name": name}
    items = spec.get("items", {})
    default = spec.get("default")
    if name.endswith("profile_ids") or name == "profile_id":
        control: object = dcc.Dropdown(id=field_id, multi=name.endswith("ids"), value=default,
                                       options=[{"label": n, "value": i} for i, n in profiles],
                                       placeholder="Choose profiles" if name.endswith("ids") else "Choose a profile")
    elif spec.get("type") == "array" and "enum" in items:
        control = dcc.Dropdown(id=field_id, multi=True, value=default, options=list(items["enum"]))
    elif "enum" in spec:
        control = dcc.Dropdown(id=field_id, value=default, options=list(spec["enum"]), clearable=False)
    elif spec.get("type") == "boolean":
        return dbc.Checkbox(id=field_id, label=label, value=bool(default), className="mb-2")
    elif spec.get("type") in ("integer", "number"):
        # No min/max here: the browser would blank an out-of-range number and the job would quietly
        # take the default; the server says what is wrong instead.
        limits = [f"{word} {spec[key]}" for word, key in (("at least", "minimum"), ("at most", "maximum"))
                  if key in spec]
        control = dbc.Input(id=field_id, type="number", value=default,
                            step=1 if spec.get("type") == "integer" else "any", placeholder=", ".join(limits))
    elif spec.get("type") == "array":
        control = dbc.Input(id=field_id, type="text", value=", ".join(map(str, default or [])),
                            placeholder="comma-separated")
    else:
        control = dbc.Input(id=field_id, type="text", value=default, maxLength=spec.get("maxLength"))
    return html.Div([dbc.Label(label), control, html.Div(spec.get("description", ""), className="form-text")],
                    className="mb-2")


def parameter_fields(schema: Mapping[str, Any], profiles: Sequence[tuple[int, str]]) -> list[object]:
    """Build form fields from a kind's parameter schema (a pydantic JSON schema)."""
    properties = schema.get("properties", {})
    defs = schema.get("$defs", {})
    fields = []
    for name, spec in properties.items():
        if name in HIDDEN_FIELDS:
            continue
        resolved = _resolve(spec, defs)
        fields.append(_field(name, resolved, profiles))
    return fields or [html.P("This job takes no parameters.", className="small text-body-secondary")]


def _resolve(spec: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow $ref and Optional (anyOf with null) to the concrete field schema."""
    if "$ref" in spec:
        return {**defs[spec["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in spec.items() if k != "$ref"}}
    if "anyOf" in spec:
        concrete = [s for s in spec["anyOf"] if s.get("type") != "null"]
        if len(concrete) == 1:
            return {**_resolve(concrete[0], defs), **{k: v for k, v in spec.items() if k != "anyOf"}}
    return spec


def history_card(kinds: Sequence[tuple[str, str]], tasks: list[TaskView]) -> dbc.Card:
    """Return the filters, the table of jobs and the pager."""
    filters = dbc.Row([
        dbc.Col(dcc.Dropdown(id=ids.JOBS_FILTER_STATUS, options=STATUSES, placeholder="Any status"), md=4),
        dbc.Col(dcc.Dropdown(id=ids.JOBS_FILTER_KIND, placeholder="Any kind",
                             options=[{"label": label, "value": name} for name, label in kinds]), md=5),
        dbc.Col(dbc.ButtonGroup([
            dbc.Button("‹ Newer", id=ids.JOBS_PREV, size="sm", color="outline-secondary"),
            dbc.Button("Older ›", id=ids.JOBS_NEXT, size="sm", color="outline-secondary"),
        ]), md=3, className="text-end"),
    ], className="g-2 mb-2")
    return dbc.Card([
        dbc.CardHeader("History"),
        dbc.CardBody([filters, dcc.Store(id=ids.JOBS_PAGE_NUMBER, data=0),
                      html.Div(table(tasks), id=ids.JOBS_TABLE)]),
    ], className="shadow-sm")


def table(tasks: list[TaskView]) -> object:
    """Return the jobs as a table, or an empty state that says how to start one."""
    if not tasks:
        return dbc.Alert("No jobs here yet. Start one with the form.", color="light", className="mb-0")
    rows = [
        html.Tr([
            html.Td(dcc.Link(f"#{t.id}", href=f"/jobs/{t.id}")),
            html.Td(t.kind),
            html.Td(dbc.Badge(t.status.replace("_", " "), color=STATUS_COLORS.get(t.status, "secondary"))),
            html.Td(dbc.Progress(value=t.progress, label=f"{t.progress}%", style={"height": "1rem"})),
            html.Td(t.error or t.step, className="small text-truncate", style={"maxWidth": "18rem"}),
            html.Td(f"{t.created_at:%Y-%m-%d %H:%M} UTC", className="small"),
        ])
        for t in tasks
    ]
    return dbc.Table([
        html.Thead(html.Tr([html.Th(h) for h in ("Job", "Kind", "Status", "Progress", "Step", "Created")])),
        html.Tbody(rows),
    ], hover=True, responsive=True, size="sm", id=ids.JOB_HISTORY, className="mb-0")


def detail_page(task: TaskView, *, results: Sequence[tuple[int, str, int]], can_cancel: bool,
                can_approve: bool) -> list[object]:
    """Return one job's page: state, progress, log, results, and its actions."""
    approval = []
    if can_approve:
        approval = [dbc.Card(dbc.CardBody([
            html.P(f"This job waits for approval: {task.step}.", className="mb-2"),
            dbc.Textarea(id=ids.JOB_APPROVAL_COMMENT, placeholder="Comment (required)", className="mb-2"),
            dbc.Button("Approve", id=ids.JOB_APPROVE, color="success", className="me-2"),
            dbc.Button("Reject", id=ids.JOB_REJECT, color="danger"),
        ]), className="mb-3 border-warning")]
    return [
        dcc.Store(id=ids.JOB_ID, data=task.id),
        dcc.Store(id=ids.JOB_WATCH_DONE),
        dcc.Link("‹ All jobs", href="/jobs", className="small"),
        html.H1(f"Job #{task.id}: {task.kind}", className="h3 my-2"),
        *approval,
        dbc.Card(dbc.CardBody([
            html.Div(status_badge(task), id=ids.JOB_DETAIL_STATUS, className="mb-2"),
            dbc.Progress(id=ids.JOB_DETAIL_PROGRESS, value=task.progress, label=f"{task.progress}%",
                         striped=not task.is_finished, className="mb-2", style={"height": "1.25rem"}),
            html.Div(task.error or task.step, id=ids.JOB_DETAIL_STEP, className="small mb-2"),
            dbc.Button("Cancel job", id=ids.JOB_DETAIL_CANCEL, color="outline-danger", size="sm",
                       disabled=not can_cancel or task.is_finished),
            html.Div(id=ids.JOB_DETAIL_MESSAGE, className="small mt-2"),
        ]), className="mb-3 shadow-sm"),
        dbc.Row([
            dbc.Col(dbc.Card([dbc.CardHeader("Log"), dbc.CardBody(html.Pre(
                id=ids.JOB_DETAIL_LOG, className="small mb-0", style={"maxHeight": "24rem", "overflowY": "auto"}))]),
                lg=8),
            dbc.Col(dbc.Card([dbc.CardHeader("Results"), dbc.CardBody(results_list(task.id, results),
                                                                       id=ids.JOB_DETAIL_RESULTS)]), lg=4),
        ], className="g-3"),
    ]


def status_badge(task: TaskView) -> object:
    """Return the job's state as a coloured badge, with attempts when it was retried."""
    text = task.status.replace("_", " ") + (f" (attempt {task.attempts})" if task.attempts > 1 else "")
    return dbc.Badge(text, color=STATUS_COLORS.get(task.status, "secondary"), className="fs-6")


def results_list(task_id: int, results: Sequence[tuple[int, str, int]]) -> object:
    """Return download links for a job's result files."""
    if not results:
        return html.P("No result files yet.", className="small text-body-secondary mb-0")
    return html.Ul([
        html.Li(html.A(f"{name} ({size:,} bytes)" if size else name,
                       href=f"/exports/tasks/{task_id}/results/{result_id}", target="_blank"))
        for result_id, name, size in results
    ], className="mb-0")
