"""Schedules: saved jobs that Celery beat submits on a cron schedule, once per due time.

A schedule that was due several times while the service was down runs once when it resumes,
not once per missed time: ``run_due`` submits one job and moves ``next_run_at`` past now.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Schedule
from models.base import utcnow
from services import audit
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.identity.permissions import Actor
from services.jobs import kinds, lifecycle
from services.validation import is_storable_id

logger = logging.getLogger(__name__)


def next_run(cron: str, *, after: dt.datetime) -> dt.datetime:
    """Return the first time strictly after ``after`` that the cron expression names (UTC)."""
    try:
        return next(iter(CronSim(cron, after.astimezone(dt.UTC).replace(second=0, microsecond=0))))
    except (CronSimError, StopIteration) as exc:
        raise InvalidInput(f"cron: '{cron}' is not a valid cron expression ({exc})") from exc


class ScheduleCreate(BaseModel):
    """The writable fields of a schedule."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=128, pattern=r"^[\w .,()-]+$")
    kind: str = Field(max_length=64)
    parameters: dict[str, object] = Field(default_factory=dict)
    cron: str = Field(max_length=64, description="minute hour day-of-month month day-of-week, in UTC")
    is_enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        next_run(value, after=utcnow())
        return value


class ScheduleView(BaseModel):
    """A saved job with its cron schedule, as a page or the API shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    kind: str
    cron: str
    is_enabled: bool
    owner_id: int | None
    last_run_at: dt.datetime | None
    next_run_at: dt.datetime | None
    parameters: dict[str, Any]


def _view(s: Schedule) -> ScheduleView:
    return ScheduleView(id=s.id, name=s.name, kind=s.kind, cron=s.cron, is_enabled=s.is_enabled,
                        owner_id=s.owner_id, last_run_at=s.last_run_at, next_run_at=s.next_run_at,
                        parameters=dict(s.parameters))


def create_schedule(session: Session, *, actor: Actor, data: ScheduleCreate) -> ScheduleView:
    """Save a job to run on a schedule; its parameters are checked as the job's would be."""
    spec = kinds.get_kind(data.kind)
    if not actor.has_role(*spec.roles):
        raise PermissionDenied("You do not have permission to schedule this kind of job.")
    lifecycle.validate_parameters(spec, data.parameters)
    if session.scalar(select(Schedule.id).where(Schedule.name == data.name)) is not None:
        raise Conflict(f"A schedule named '{data.name}' already exists.")
    schedule = Schedule(name=data.name, kind=data.kind, parameters=data.parameters, cron=data.cron,
                        is_enabled=data.is_enabled, owner_id=actor.user_id,
                        next_run_at=next_run(data.cron, after=utcnow()))
    session.add(schedule)
    session.flush()
    audit.record(session, actor=actor, action="schedule.create", object_type="schedule", object_id=schedule.id,
                 details={"name": data.name, "kind": data.kind, "cron": data.cron})
    return _view(schedule)


def list_schedules(session: Session, *, actor: Actor) -> list[ScheduleView]:
    """Return the actor's schedules (everyone's for admins)."""
    query = select(Schedule).order_by(Schedule.name)
    if not actor.has_role("admin", "auditor"):
        query = query.where(Schedule.owner_id == actor.user_id)
    return [_view(s) for s in session.scalars(query)]


def delete_schedule(session: Session, *, actor: Actor, schedule_id: int) -> None:
    """Delete one's own schedule (admins: any)."""
    schedule = session.get(Schedule, schedule_id) if is_storable_id(schedule_id) else None
    if schedule is None or not (schedule.owner_id == actor.user_id or actor.has_role("admin")):
        raise NotFound(f"Schedule {schedule_id} was not found.")
    audit.record(session, actor=actor, action="schedule.delete", object_type="schedule", object_id=schedule_id,
                 details={"name": schedule.name})
    session.delete(schedule)


def run_due(session: Session, *, now: dt.datetime | None = None) -> list[int]:
    """Submit one job for every enabled schedule that is due; return the ids of queued jobs."""
    now = now or utcnow()
    due = session.scalars(
        select(Schedule).where(Schedule.is_enabled, Schedule.next_run_at <= now)
        .order_by(Schedule.id).with_for_update(skip_locked=True)
    ).all()
    queued: list[int] = []
    for schedule in due:
        try:
            owner = lifecycle.owner_actor(session, owner_id=schedule.owner_id)
            view = lifecycle.submit_job(session, actor=owner, kind=schedule.kind, parameters=dict(schedule.parameters),
                                   policy=lifecycle.current_policy())
        except (InvalidInput, PermissionDenied) as exc:
            logger.warning("schedule %s could not submit its job: %s", schedule.name, exc)
            audit.record(session, actor=Actor.system("scheduler"), action="schedule.failed",
                         object_type="schedule", object_id=schedule.id, outcome="failure",
                         details={"error": str(exc)[:500]})
        else:
            if view.status == "queued":
                queued.append(view.id)
        schedule.last_run_at = now
        schedule.next_run_at = next_run(schedule.cron, after=now)
    return queued
