"""Jobs pages: the start form, the history, and one job watched live by a background callback."""

from __future__ import annotations

import time
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, no_update

from callbacks.context import actor_from_payload, current_actor
from layouts import ids
from layouts import jobs as layout
from services import database, validation
from services.aws import profiles
from services.errors import DomainError
from services.jobs import kinds, lifecycle, schedules

WATCH_SECONDS = 50 * 60  # under the worker's time limit; the page says to reload after that
POLL_SECONDS = 0.5


def show_parameters(kind: str | None) -> list[object]:
    """Render the chosen kind's parameter fields."""
    if not kind:
        return []
    actor = current_actor()
    try:
        schema = kinds.get_kind(kind).form_schema()
    except DomainError as exc:
        return [layout.html.P(exc.message)]
    with database.session_scope() as session:
        options = [(p.id, p.name) for p in profiles.list_profiles(session, actor=actor)]
    return layout.parameter_fields(schema, options)


def _coerce(schema: dict[str, Any], name: str, value: Any) -> Any:
    spec = schema.get("properties", {}).get(name, {})
    types = {spec.get("type")} | {s.get("type") for s in spec.get("anyOf", [])}
    if isinstance(value, str) and "array" in types:
        return [part.strip() for part in value.split(",") if part.strip()]
    if value in ("", None) and "null" in types:
        return None
    return value


def submit(n_clicks: int | None, kind: str | None, values: list[Any], field_ids: list[dict[str, str]],
           page_id: str) -> tuple[object, object]:
    """Start a job from the form; say where it stands, or what to fix."""
    if not n_clicks or not kind:
        return no_update, no_update
    actor = current_actor()
    try:
        parameters = _form_parameters(kind, values, field_ids, page_id)
        started = lifecycle.start_job(actor=actor, kind=kind, parameters=parameters)
    except DomainError as exc:
        errors = exc.details.get("errors") if exc.details else None
        return layout.dbc.Alert([exc.message, *([layout.html.Ul([layout.html.Li(e) for e in errors])]
                                                 if isinstance(errors, list) and len(errors) > 1 else [])],
                                color="danger", className="py-2"), no_update
    view, notice = started.view, f" {started.notice}" if started.notice else ""
    text = (f"Job #{view.id} is waiting for approval: {view.step}." if view.status == "awaiting_approval"
            else f"Job #{view.id} is queued.{notice}")
    return layout.dbc.Alert([text, " ", layout.dcc.Link("Watch it", href=f"/jobs/{view.id}")],
                            color="warning" if view.status == "awaiting_approval" else "success",
                            className="py-2"), 0


def _form_parameters(kind: str, values: list[Any], field_ids: list[dict[str, str]], page_id: str) -> dict[str, Any]:
    schema = kinds.get_kind(kind).form_schema()
    parameters = {f["name"]: _coerce(schema, f["name"], v) for f, v in zip(field_ids, values, strict=True)
                  if v is not None}
    if "page_id" in schema.get("properties", {}):
        parameters["page_id"] = page_id
    return parameters


def save_schedule(n_clicks: int | None, kind: str | None, name: str | None, cron: str | None, values: list[Any],
                  field_ids: list[dict[str, str]], page_id: str) -> tuple[object, object]:
    """Save the form's job to run on a cron schedule."""
    if not n_clicks or not kind:
        return no_update, no_update
    actor = current_actor()
    try:
        data = validation.parse(schedules.ScheduleCreate, {
            "name": name or "", "kind": kind, "cron": cron or "",
            "parameters": _form_parameters(kind, values, field_ids, page_id)}, default_field="schedule")
        with database.session_scope() as session:
            view = schedules.create_schedule(session, actor=actor, data=data)
            listed = schedules.list_schedules(session, actor=actor)
    except DomainError as exc:
        return layout.dbc.Alert(exc.message, color="danger", className="py-2"), no_update
    return (layout.dbc.Alert(f"Schedule '{view.name}' saved: next run {view.next_run_at:%Y-%m-%d %H:%M} UTC.",
                             color="success", className="py-2"), layout.schedules_table(listed))


def page_number(_prev: int | None, _next: int | None, _status: str | None, _kind: str | None,
                current: int | None) -> int:
    """Move between pages of the history; a filter change goes back to the first page."""
    trigger = ctx.triggered_id
    current = current or 0
    if trigger == ids.JOBS_NEXT:
        return current + 1
    if trigger == ids.JOBS_PREV:
        return max(0, current - 1)
    return 0


def history(page: int | None, status: str | None, kind: str | None, _message: object) -> object:
    """Show one page of the history with the filters applied."""
    actor = current_actor()
    with database.session_scope() as session:
        tasks = lifecycle.list_tasks(session, actor=actor, limit=layout.PAGE_SIZE,
                                     offset=(page or 0) * layout.PAGE_SIZE, status=status, kind=kind)
    return layout.table(tasks)


def _snapshot(task_id: int, actor: Any) -> tuple[lifecycle.TaskView, str, list[tuple[int, str, int]]]:
    with database.session_scope() as session:
        view = lifecycle.get_task(session, actor=actor, task_id=task_id)
        log = lifecycle.get_log(session, actor=actor, task_id=task_id)
        results = lifecycle.list_results(session, actor=actor, task_id=task_id)
    return view, log, results


def watch(set_progress: Any, task_id: int | None, page_id: str) -> str:
    """Follow one job until it ends, pushing its state to this tab (a background callback)."""
    del page_id  # part of the job key: every tab watches in its own background job
    actor = actor_from_payload(ctx.custom_data.get("actor"))
    if task_id is None or actor is None:
        return "stopped"
    database.after_fork()
    deadline = time.monotonic() + WATCH_SECONDS
    last: tuple[object, ...] = ()
    while time.monotonic() < deadline:
        try:
            view, log, results = _snapshot(task_id, actor)
        except DomainError:
            return "stopped"
        # Result files appear as they are kept (an aws-finops job keeps each profile's as it ends).
        state = (view.status, view.progress, view.step, len(log), len(results))
        if state != last:
            set_progress((view.progress, f"{view.progress}%", view.error or view.step, layout.status_badge(view),
                          log[-20000:], layout.results_list(view.id, results)))
            last = state
        if view.is_finished:
            return view.status
        time.sleep(POLL_SECONDS)
    return "timeout"


def show_final(done: str | None, task_id: int | None) -> tuple[object, ...]:
    """Refresh everything once the watch ends (results appear, buttons settle)."""
    if not done or task_id is None:
        return (no_update,) * 7
    actor = current_actor()
    try:
        view, log, results = _snapshot(task_id, actor)
    except DomainError as exc:
        return (no_update,) * 6 + (exc.message,)
    message = "Stopped watching after 50 minutes: reload the page to go on." if done == "timeout" else ""
    return (view.progress, f"{view.progress}%", view.error or view.step, layout.status_badge(view), log[-20000:],
            layout.results_list(view.id, results), message)


def cancel(n_clicks: int | None, task_id: int | None) -> tuple[object, object]:
    """Ask the job to stop."""
    if not n_clicks or task_id is None:
        return no_update, no_update
    try:
        with database.session_scope() as session:
            view = lifecycle.request_cancel(session, actor=current_actor(), task_id=task_id)
    except DomainError as exc:
        return exc.message, no_update
    return ("Cancelled." if view.status == "cancelled" else "Cancel requested: the worker is stopping the job."), True


def decide(approve_clicks: int | None, reject_clicks: int | None, comment: str | None,
           task_id: int | None) -> str:
    """Approve or reject a gated job with a comment."""
    if task_id is None or not (approve_clicks or reject_clicks):
        return no_update  # type: ignore[return-value]  # Dash sentinel
    approve = ctx.triggered_id == ids.JOB_APPROVE
    try:
        lifecycle.decide_and_release(actor=current_actor(), task_id=task_id, approve=approve, comment=comment or "")
    except DomainError as exc:
        return exc.message
    if approve:
        return "Approved: the job is queued. Reload to follow it."
    return "Rejected: the requester sees your comment."


def register(app: Dash) -> None:
    """Register the jobs pages' callbacks."""
    app.callback(Output(ids.JOBS_PARAMS, "children"), Input(ids.JOBS_KIND, "value"))(show_parameters)
    app.callback(
        Output(ids.JOBS_SUBMIT_MESSAGE, "children"), Output(ids.JOBS_PAGE_NUMBER, "data", allow_duplicate=True),
        Input(ids.JOBS_SUBMIT, "n_clicks"), State(ids.JOBS_KIND, "value"),
        State({"type": ids.JOBS_PARAM, "name": ALL}, "value"), State({"type": ids.JOBS_PARAM, "name": ALL}, "id"),
        State(ids.PAGE_LOAD_ID, "data"), prevent_initial_call=True,
    )(submit)
    app.callback(
        Output(ids.JOBS_SUBMIT_MESSAGE, "children", allow_duplicate=True), Output(ids.SCHEDULES_TABLE, "children"),
        Input(ids.SCHEDULE_SAVE, "n_clicks"), State(ids.JOBS_KIND, "value"), State(ids.SCHEDULE_NAME, "value"),
        State(ids.SCHEDULE_CRON, "value"),
        State({"type": ids.JOBS_PARAM, "name": ALL}, "value"), State({"type": ids.JOBS_PARAM, "name": ALL}, "id"),
        State(ids.PAGE_LOAD_ID, "data"), prevent_initial_call=True,
    )(save_schedule)
    app.callback(
        Output(ids.JOBS_PAGE_NUMBER, "data"),
        Input(ids.JOBS_PREV, "n_clicks"), Input(ids.JOBS_NEXT, "n_clicks"),
        Input(ids.JOBS_FILTER_STATUS, "value"), Input(ids.JOBS_FILTER_KIND, "value"),
        State(ids.JOBS_PAGE_NUMBER, "data"), prevent_initial_call=True,
    )(page_number)
    app.callback(
        Output(ids.JOBS_TABLE, "children"),
        Input(ids.JOBS_PAGE_NUMBER, "data"), Input(ids.JOBS_FILTER_STATUS, "value"),
        Input(ids.JOBS_FILTER_KIND, "value"), Input(ids.JOBS_SUBMIT_MESSAGE, "children"),
        prevent_initial_call=True,
    )(history)
    app.callback(
        Output(ids.JOB_WATCH_DONE, "data"),
        Input(ids.JOB_ID, "data"), State(ids.PAGE_LOAD_ID, "data"),
        background=True,
        progress=[Output(ids.JOB_DETAIL_PROGRESS, "value"), Output(ids.JOB_DETAIL_PROGRESS, "label"),
                  Output(ids.JOB_DETAIL_STEP, "children"), Output(ids.JOB_DETAIL_STATUS, "children"),
                  Output(ids.JOB_DETAIL_LOG, "children"), Output(ids.JOB_DETAIL_RESULTS, "children")],
        interval=700,
    )(watch)
    app.callback(
        Output(ids.JOB_DETAIL_PROGRESS, "value", allow_duplicate=True),
        Output(ids.JOB_DETAIL_PROGRESS, "label", allow_duplicate=True),
        Output(ids.JOB_DETAIL_STEP, "children", allow_duplicate=True),
        Output(ids.JOB_DETAIL_STATUS, "children", allow_duplicate=True),
        Output(ids.JOB_DETAIL_LOG, "children", allow_duplicate=True),
        Output(ids.JOB_DETAIL_RESULTS, "children", allow_duplicate=True),
        Output(ids.JOB_DETAIL_MESSAGE, "children", allow_duplicate=True),
        Input(ids.JOB_WATCH_DONE, "data"), State(ids.JOB_ID, "data"), prevent_initial_call=True,
    )(show_final)
    app.callback(
        Output(ids.JOB_DETAIL_MESSAGE, "children"), Output(ids.JOB_DETAIL_CANCEL, "disabled"),
        Input(ids.JOB_DETAIL_CANCEL, "n_clicks"), State(ids.JOB_ID, "data"), prevent_initial_call=True,
    )(cancel)
    app.callback(
        Output(ids.JOB_DETAIL_MESSAGE, "children", allow_duplicate=True),
        Input(ids.JOB_APPROVE, "n_clicks"), Input(ids.JOB_REJECT, "n_clicks"),
        State(ids.JOB_APPROVAL_COMMENT, "value"), State(ids.JOB_ID, "data"), prevent_initial_call=True,
    )(decide)
