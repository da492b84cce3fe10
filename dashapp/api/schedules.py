"""Schedule operations: saved jobs that run on a cron schedule (in UTC)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field, RootModel

from callbacks.context import current_actor
from dashapp.api.problems import MAX_ID, SECURITY, WRITE_RESPONSES, NoQuery, json_response, operation_id
from services import database
from services.jobs import schedules

bp = APIBlueprint("schedules", __name__, abp_tags=[Tag(name="schedules", description="Scheduled jobs")],
                  abp_security=SECURITY, operation_id_callback=operation_id, abp_responses=WRITE_RESPONSES)


class SchedulePath(BaseModel):
    schedule_id: int = Field(ge=1, le=MAX_ID)


class ScheduleList(RootModel[list[schedules.ScheduleView]]):
    """Schedules with their last and next run."""


@bp.get("/schedules/", responses={200: ScheduleList})
def list_schedules(query: NoQuery) -> Response:
    """Saved jobs that run on a cron schedule, with their last and next run."""
    with database.session_scope() as session:
        return json_response(ScheduleList(schedules.list_schedules(session, actor=current_actor())))


@bp.post("/schedules/", responses={201: schedules.ScheduleView})
def create_schedule(query: NoQuery, body: schedules.ScheduleCreate) -> Response:
    """Save a job to run on a schedule (cron in UTC: minute hour day-of-month month day-of-week)."""
    with database.session_scope() as session:
        return json_response(schedules.create_schedule(session, actor=current_actor(), data=body), 201)


@bp.delete("/schedules/<int:schedule_id>/", responses={204: None})
def delete_schedule(path: SchedulePath, query: NoQuery) -> Response:
    """Delete a schedule."""
    with database.session_scope() as session:
        schedules.delete_schedule(session, actor=current_actor(), schedule_id=path.schedule_id)
    return Response(status=204)
