"""/api/v1/*: the JSON API (pydantic in and out), described at /api/v1/openapi.json."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel

from callbacks.context import current_actor
from dashapp.extensions import limiter
from services import database, validation
from services.aws import profiles
from services.costs import queries
from services.errors import InvalidInput
from services.jobs import data_kinds, lifecycle, schedules

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def rate_limit_key() -> str:
    """Count API calls per signed-in user (per address before sign-in)."""
    actor = current_actor()
    return f"user:{actor.user_id}" if actor.user_id is not None else f"ip:{request.remote_addr}"


limiter.limit(lambda: str(current_app.config["RATE_LIMIT_API"]), key_func=rate_limit_key)(bp)


class KpisOut(BaseModel):
    month_to_date: Decimal
    last_month_total: Decimal
    forecast_month_end: Decimal
    change_vs_last_month_pct: Decimal | None
    as_of: dt.date


class NamedAmount(BaseModel):
    key: str
    name: str = ""
    amount: Decimal


class OverviewOut(BaseModel):
    start: dt.date
    end: dt.date
    metric: str
    currency: str
    total: Decimal
    kpis: KpisOut
    daily: list[NamedAmount]
    top_services: list[NamedAmount]
    by_account: list[NamedAmount]


@bp.get("/overview/")
def get_overview() -> Response:
    """Cost overview for a date range (default: the last 90 days), accounts and metric."""
    today = dt.datetime.now(dt.UTC).date()
    cost_filter = queries.parse_filter(
        start=request.args.get("start") or today - dt.timedelta(days=89),
        end=request.args.get("end") or today,
        account_ids=tuple(request.args.getlist("account")),
        metric=request.args.get("metric", "unblended_cost"),
    )
    with database.session_scope() as session:
        data = queries.get_overview(session, actor=current_actor(), cost_filter=cost_filter, today=today)
    k = data.kpis
    out = OverviewOut(
        start=cost_filter.start, end=cost_filter.end, metric=cost_filter.metric, currency=data.currency,
        total=data.total,
        kpis=KpisOut(month_to_date=k.month_to_date, last_month_total=k.last_month_total,
                     forecast_month_end=k.forecast_month_end,
                     change_vs_last_month_pct=k.change_vs_last_month_pct, as_of=k.as_of),
        daily=[NamedAmount(key=d.isoformat(), amount=v) for d, v in data.daily],
        top_services=[NamedAmount(key=s, amount=v) for s, v in data.top_services],
        by_account=[NamedAmount(key=a, name=n, amount=v) for a, n, v in data.by_account],
    )
    return Response(out.model_dump_json(), mimetype="application/json")


def _json_body() -> dict[str, object]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return body


def _json(model: BaseModel | list[BaseModel], status: int = 200) -> Response:
    if isinstance(model, list):
        payload = "[" + ",".join(m.model_dump_json() for m in model) + "]"
    else:
        payload = model.model_dump_json()
    return Response(payload, status=status, mimetype="application/json")


@bp.get("/profiles/")
def list_profiles() -> Response:
    """AWS profiles the caller may see; secrets are never returned."""
    with database.session_scope() as session:
        return _json(list(profiles.list_profiles(session, actor=current_actor())))


@bp.post("/profiles/")
def create_profile() -> Response:
    """Create a profile (admins)."""
    data = validation.parse(profiles.ProfileCreate, _json_body())
    with database.session_scope() as session:
        created = profiles.create_profile(session, actor=current_actor(), data=data)  # type: ignore[arg-type]
    return _json(created, 201)


@bp.get("/profiles/<int:profile_id>/")
def get_profile(profile_id: int) -> Response:
    """One profile."""
    with database.session_scope() as session:
        return _json(profiles.get_profile(session, actor=current_actor(), profile_id=profile_id))


@bp.patch("/profiles/<int:profile_id>/")
def update_profile(profile_id: int) -> Response:
    """Change a profile (admins); secrets change only when given."""
    data = validation.parse(profiles.ProfileUpdate, _json_body())
    with database.session_scope() as session:
        return _json(profiles.update_profile(session, actor=current_actor(), profile_id=profile_id,
                                             data=data))  # type: ignore[arg-type]


@bp.delete("/profiles/<int:profile_id>/")
def delete_profile(profile_id: int) -> Response:
    """Delete a profile (admins)."""
    with database.session_scope() as session:
        profiles.delete_profile(session, actor=current_actor(), profile_id=profile_id)
    return Response(status=204)


@bp.post("/profiles/<int:profile_id>/test/")
def test_profile(profile_id: int) -> Response:
    """Check the profile's credentials with STS GetCallerIdentity; explain a failure in words."""
    with database.session_scope() as session:
        result = profiles.test_connection(session, actor=current_actor(), profile_id=profile_id)
    return jsonify({"ok": result.is_ok, "message": result.message, "account_id": result.account_id})


class TaskOut(BaseModel):
    id: int
    kind: str
    status: str
    progress: int
    step: str
    error: str | None
    attempts: int
    parameters: dict[str, object]
    approval_comment: str | None
    result_summary: dict[str, object] | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


def _task_out(view: lifecycle.TaskView) -> TaskOut:
    return TaskOut(id=view.id, kind=view.kind, status=view.status, progress=view.progress, step=view.step,
                   error=view.error, attempts=view.attempts, parameters=view.parameters,
                   approval_comment=view.approval_comment, result_summary=view.result_summary,
                   created_at=view.created_at, finished_at=view.finished_at)


def _int_arg(name: str, default: int, *, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(f"{name}: a whole number from {low} to {high}")
    return int(raw)


@bp.get("/tasks/")
def list_tasks() -> Response:
    """Recent jobs, newest first; filters: status, kind; paging: limit (1-200), offset."""
    with database.session_scope() as session:
        views = lifecycle.list_tasks(session, actor=current_actor(), limit=_int_arg("limit", 50, low=1, high=200),
                                offset=_int_arg("offset", 0, low=0, high=10**9),
                                status=request.args.get("status"), kind=request.args.get("kind"))
    return _json([_task_out(v) for v in views])


@bp.post("/tasks/")
def submit_task() -> Response:
    """Start a job: {"kind": ..., "parameters": {...}}. Queued, or waiting for approval."""
    body = _json_body()
    kind, parameters = body.get("kind"), body.get("parameters", {})
    if not isinstance(kind, str) or not isinstance(parameters, dict):
        raise InvalidInput("The body must be {\"kind\": \"...\", \"parameters\": {...}}.")
    with database.session_scope() as session:
        view = lifecycle.submit_job(session, actor=current_actor(), kind=kind, parameters=parameters,
                               policy=lifecycle.current_policy())
    response = _task_out(view).model_dump(mode="json")
    if view.status == "queued" and lifecycle.publish([view.id]):
        response["notice"] = lifecycle.QUEUE_DOWN_NOTICE
    return Response(json.dumps(response), status=201, mimetype="application/json")


@bp.get("/tasks/<int:task_id>/")
def get_task(task_id: int) -> Response:
    """One job."""
    with database.session_scope() as session:
        return _json(_task_out(lifecycle.get_task(session, actor=current_actor(), task_id=task_id)))


@bp.get("/tasks/<int:task_id>/logs/")
def get_task_logs(task_id: int) -> Response:
    """A job's log so far, as plain text."""
    with database.session_scope() as session:
        text = lifecycle.get_log(session, actor=current_actor(), task_id=task_id)
    return Response(text, mimetype="text/plain")


@bp.post("/tasks/<int:task_id>/cancel/")
def cancel_task(task_id: int) -> Response:
    """Cancel a job: at once when it has not started, else its worker stops it."""
    with database.session_scope() as session:
        return _json(_task_out(lifecycle.request_cancel(session, actor=current_actor(), task_id=task_id)))


def _decide(task_id: int, approve: bool) -> Response:
    comment = _json_body().get("comment", "")
    if not isinstance(comment, str):
        raise InvalidInput("comment: text")
    with database.session_scope() as session:
        view = lifecycle.decide_approval(session, actor=current_actor(), task_id=task_id, approve=approve,
                                    comment=comment)
    if approve:
        lifecycle.publish([view.id])
    return _json(_task_out(view))


@bp.post("/tasks/<int:task_id>/approve/")
def approve_task(task_id: int) -> Response:
    """Release a job waiting for approval (an approver other than the requester)."""
    return _decide(task_id, True)


@bp.post("/tasks/<int:task_id>/reject/")
def reject_task(task_id: int) -> Response:
    """Reject a job waiting for approval, with a comment."""
    return _decide(task_id, False)


class ScheduleOut(BaseModel):
    id: int
    name: str
    kind: str
    cron: str
    is_enabled: bool
    parameters: dict[str, object]
    last_run_at: dt.datetime | None
    next_run_at: dt.datetime | None


def _schedule_out(view: schedules.ScheduleView) -> ScheduleOut:
    return ScheduleOut(id=view.id, name=view.name, kind=view.kind, cron=view.cron, is_enabled=view.is_enabled,
                       parameters=view.parameters, last_run_at=view.last_run_at, next_run_at=view.next_run_at)


@bp.post("/imports/")
def upload_import() -> Response:
    """Upload a CUR 2.0 or FOCUS file (multipart field "file") and start its import job."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("file: attach a cost export as the multipart field 'file'")
    actor = current_actor()
    lifecycle.check_may_submit(actor, "import.file")  # before anything is written to disk
    upload_id = data_kinds.save_upload(upload.stream, file_name=upload.filename)
    with database.session_scope() as session:
        view = lifecycle.submit_job(session, actor=actor, kind="import.file",
                               parameters={"upload_id": upload_id, "file_name": upload.filename[:255]},
                               policy=lifecycle.current_policy())
    response = _task_out(view).model_dump(mode="json")
    if view.status == "queued" and lifecycle.publish([view.id]):
        response["notice"] = lifecycle.QUEUE_DOWN_NOTICE
    return Response(json.dumps(response), status=201, mimetype="application/json")


@bp.get("/schedules/")
def list_schedules() -> Response:
    """Saved jobs that run on a cron schedule, with their last and next run."""
    with database.session_scope() as session:
        return _json([_schedule_out(v) for v in schedules.list_schedules(session, actor=current_actor())])


@bp.post("/schedules/")
def create_schedule() -> Response:
    """Save a job to run on a schedule: {"name", "kind", "parameters", "cron"} (cron in UTC)."""
    data = validation.parse(schedules.ScheduleCreate, _json_body())
    with database.session_scope() as session:
        view = schedules.create_schedule(session, actor=current_actor(), data=data)  # type: ignore[arg-type]
    return _json(_schedule_out(view), 201)


@bp.delete("/schedules/<int:schedule_id>/")
def delete_schedule(schedule_id: int) -> Response:
    """Delete a schedule."""
    with database.session_scope() as session:
        schedules.delete_schedule(session, actor=current_actor(), schedule_id=schedule_id)
    return Response(status=204)


class CostRowOut(BaseModel):
    period: dt.date | None
    keys: list[str]
    amount: Decimal


class CostResultOut(BaseModel):
    table: str
    total: Decimal
    rows: list[CostRowOut]


@bp.get("/costs/")
def query_costs() -> Response:
    """Costs by any dimensions: start, end, granularity (day|month|total), group_by (repeatable),
    filter.<dimension> (repeatable), metric, top_n (the n largest at every level of group_by, the
    rest of each level as one "Other" row)."""
    args = request.args
    query = queries.parse_query({
        "start": args.get("start"), "end": args.get("end"), "granularity": args.get("granularity", "month"),
        "group_by": args.getlist("group_by"), "metric": args.get("metric", "unblended_cost"),
        "top_n": args.get("top_n") or None,
        "filters": {k.removeprefix("filter."): args.getlist(k) for k in args if k.startswith("filter.")},
    })
    with database.session_scope() as session:
        result = queries.query_costs(session, actor=current_actor(), query=query)
    return _json(CostResultOut(table=result.table, total=result.total, rows=[
        CostRowOut(period=r.period, keys=list(r.keys), amount=r.amount) for r in result.rows]))


#: Request and response bodies of each endpoint, for the OpenAPI description.
_BODIES: dict[str, tuple[type[BaseModel] | None, type[BaseModel] | None, bool]] = {
    "api.get_overview": (None, OverviewOut, False),
    "api.query_costs": (None, CostResultOut, False),
    "api.list_profiles": (None, profiles.ProfileRead, True),
    "api.create_profile": (profiles.ProfileCreate, profiles.ProfileRead, False),
    "api.get_profile": (None, profiles.ProfileRead, False),
    "api.update_profile": (profiles.ProfileUpdate, profiles.ProfileRead, False),
    "api.list_tasks": (None, TaskOut, True),
    "api.submit_task": (None, TaskOut, False),
    "api.get_task": (None, TaskOut, False),
    "api.cancel_task": (None, TaskOut, False),
    "api.approve_task": (None, TaskOut, False),
    "api.reject_task": (None, TaskOut, False),
    "api.upload_import": (None, TaskOut, False),
    "api.list_schedules": (None, ScheduleOut, True),
    "api.create_schedule": (schedules.ScheduleCreate, ScheduleOut, False),
}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI description of this API, built from the routes and their pydantic models."""
    components: dict[str, object] = {}

    def ref(model: type[BaseModel]) -> dict[str, object]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, object]] = {}
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:int:)?(\w+)>", r"{\1}", rule.rule)
        doc = (current_app.view_functions[rule.endpoint].__doc__ or "").strip()
        request_model, response_model, is_list = _BODIES.get(rule.endpoint, (None, None, False))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, object] = {
                "operationId": rule.endpoint.removeprefix("api."), "summary": doc.split("\n")[0],
                "description": doc,
                "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
                               for name in rule.arguments],
                "responses": {"401": {"description": "Not signed in"}, "403": {"description": "Not allowed"},
                              "404": {"description": "Not found (or not yours)"},
                              "422": {"description": "Invalid input; the error names the field"}},
            }
            if request_model is not None:
                operation["requestBody"] = {"required": True,
                                            "content": {"application/json": {"schema": ref(request_model)}}}
            ok: dict[str, object] = {"description": "OK"}
            if response_model is not None:
                schema = ref(response_model)
                ok["content"] = {"application/json": {"schema": {"type": "array", "items": schema}
                                                      if is_list else schema}}
            operation["responses"]["201" if method == "POST" and rule.endpoint.startswith(  # type: ignore[index]
                ("api.create", "api.submit", "api.upload")) else "200"] = ok
            paths.setdefault(path, {})[method.lower()] = operation
    return jsonify({"openapi": "3.1.0", "info": {"title": "FinOps Dashboard API", "version": "1"},
                    "paths": paths, "components": {"schemas": components,
                                                   "securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                                                                   "name": "finops_session"}}},
                    "security": [{"session": []}]})
