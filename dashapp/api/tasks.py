"""Job operations: start, list, follow, read the log of, cancel, approve and reject; upload an import."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, FileStorage, Tag
from pydantic import BaseModel, ConfigDict, Field, RootModel

from callbacks.context import current_actor
from dashapp.api.problems import MAX_ID, SECURITY, WRITE_RESPONSES, NoQuery, QueryModel, json_response, operation_id
from services import database
from services.errors import InvalidInput
from services.jobs import data_kinds, lifecycle

bp = APIBlueprint("tasks", __name__, abp_tags=[Tag(name="tasks", description="Jobs and imports")],
                  abp_security=SECURITY, operation_id_callback=operation_id, abp_responses=WRITE_RESPONSES)


class TaskPath(BaseModel):
    task_id: int = Field(ge=1, le=MAX_ID)


class TaskListQuery(QueryModel):
    status: str | None = Field(default=None, max_length=32, description="Only jobs in this state")
    kind: str | None = Field(default=None, max_length=64, description="Only jobs of this kind")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=10**9)


class TaskList(RootModel[list[lifecycle.TaskView]]):
    """Jobs, newest first."""


class TaskStart(BaseModel):
    """A job to start: its kind and that kind's parameters."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=64, examples=["rollups.rebuild"])
    parameters: dict[str, Any] = Field(default_factory=dict)


class TaskStarted(lifecycle.TaskView):
    """A job just recorded; ``notice`` says when the queue could not take it yet (it starts later)."""

    notice: str | None = None


class Decision(BaseModel):
    """An approver's word on a job waiting for approval."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=2000)


class UploadForm(BaseModel):
    """A cost export to import: a CUR 2.0 or FOCUS file, CSV or Parquet, possibly compressed."""

    file: FileStorage


def _started(started: lifecycle.StartedJob) -> Response:
    return json_response(TaskStarted(**started.view.model_dump(), notice=started.notice), 201)


@bp.get("/tasks/", responses={200: TaskList})
def list_tasks(query: TaskListQuery) -> Response:
    """Recent jobs, newest first: one's own, or everyone's for admins, auditors and approvers."""
    with database.session_scope() as session:
        views = lifecycle.list_tasks(session, actor=current_actor(), limit=query.limit, offset=query.offset,
                                     status=query.status, kind=query.kind)
    return json_response(TaskList(views))


@bp.post("/tasks/", responses={201: TaskStarted})
def submit_task(query: NoQuery, body: TaskStart) -> Response:
    """Start a job: it is queued, or waits for approval when a rule says so."""
    return _started(lifecycle.start_job(actor=current_actor(), kind=body.kind, parameters=body.parameters))


@bp.get("/tasks/<int:task_id>/", responses={200: lifecycle.TaskView})
def get_task(path: TaskPath, query: NoQuery) -> Response:
    """One job."""
    with database.session_scope() as session:
        return json_response(lifecycle.get_task(session, actor=current_actor(), task_id=path.task_id))


@bp.get("/tasks/<int:task_id>/logs/", responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def get_task_logs(path: TaskPath, query: NoQuery) -> Response:
    """A job's log so far, as plain text."""
    with database.session_scope() as session:
        text = lifecycle.get_log(session, actor=current_actor(), task_id=path.task_id, is_view=True)
    return Response(text, mimetype="text/plain")


@bp.post("/tasks/<int:task_id>/cancel/", responses={200: lifecycle.TaskView})
def cancel_task(path: TaskPath, query: NoQuery) -> Response:
    """Cancel a job: at once when it has not started, else its worker stops it."""
    with database.session_scope() as session:
        return json_response(lifecycle.request_cancel(session, actor=current_actor(), task_id=path.task_id))


@bp.post("/tasks/<int:task_id>/approve/", responses={200: lifecycle.TaskView})
def approve_task(path: TaskPath, query: NoQuery, body: Decision) -> Response:
    """Release a job waiting for approval (an approver other than the requester)."""
    return json_response(lifecycle.decide_and_release(actor=current_actor(), task_id=path.task_id, approve=True,
                                                      comment=body.comment))


@bp.post("/tasks/<int:task_id>/reject/", responses={200: lifecycle.TaskView})
def reject_task(path: TaskPath, query: NoQuery, body: Decision) -> Response:
    """Reject a job waiting for approval, with a comment for the requester."""
    return json_response(lifecycle.decide_and_release(actor=current_actor(), task_id=path.task_id, approve=False,
                                                      comment=body.comment))


@bp.post("/imports/", responses={201: TaskStarted})
def upload_import(query: NoQuery, form: UploadForm) -> Response:
    """Upload a CUR 2.0 or FOCUS export (multipart field "file") and start its import job."""
    upload = form.file
    file_name = (upload.filename or "").strip()
    if not file_name:
        raise InvalidInput("file: attach a cost export as the multipart field 'file'")
    actor = current_actor()
    lifecycle.check_may_submit(actor, "import.file")  # before anything is written to disk
    upload_id = data_kinds.save_upload(upload.stream, file_name=file_name)
    return _started(lifecycle.start_job(actor=actor, kind="import.file",
                                        parameters={"upload_id": upload_id, "file_name": file_name[:255]}))
