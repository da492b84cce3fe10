"""Jobs: one Task row per job, with progress, log, result, timings and an audit trail."""

from __future__ import annotations

import datetime as dt
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Task, TaskMetrics
from models.base import utcnow
from models.task import FINISHED_STATES
from services import audit, database, rollups
from services.errors import NotFound
from services.ingest import bump_data_version
from services.permissions import Actor, require_role

logger = logging.getLogger(__name__)

MAX_LOG_CHARS = 200_000
ProgressFn = Callable[[int, str], None]


@dataclass(frozen=True)
class TaskView:
    """A job as a page or the API shows it."""

    id: int
    kind: str
    status: str
    progress: int
    step: str
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    owner_id: int | None

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATES


def _view(task: Task) -> TaskView:
    return TaskView(id=task.id, kind=task.kind, status=task.status, progress=task.progress,
                    step=task.step, error=task.error, created_at=task.created_at,
                    finished_at=task.finished_at, owner_id=task.owner_id)


def create_task(session: Session, *, actor: Actor, kind: str, parameters: dict[str, object],
                status: str = "queued") -> Task:
    """Record a new job owned by the actor."""
    task = Task(kind=kind, owner_id=actor.user_id, parameters=parameters, status=status,
                queued_at=utcnow())
    session.add(task)
    session.flush()
    audit.record(session, actor=actor, action="job.create", object_type="task", object_id=task.id,
                 details={"kind": kind})
    return task


def get_task(session: Session, *, actor: Actor, task_id: int) -> TaskView:
    """Return a job the actor may see; another user's job is "not found" unless admin."""
    task = session.get(Task, task_id)
    if task is None or (task.owner_id != actor.user_id and not actor.has_role("admin", "auditor")):
        raise NotFound(f"Job {task_id} was not found.")
    return _view(task)


def list_tasks(session: Session, *, actor: Actor, limit: int = 20) -> list[TaskView]:
    """Return the actor's most recent jobs (everyone's for admins and auditors)."""
    query = select(Task).order_by(Task.id.desc()).limit(limit)
    if not actor.has_role("admin", "auditor"):
        query = query.where(Task.owner_id == actor.user_id)
    return [_view(t) for t in session.scalars(query)]


def _append_log(task: Task, line: str) -> None:
    stamp = utcnow().strftime("%H:%M:%S")
    task.log = (task.log + f"{stamp} {line}\n")[-MAX_LOG_CHARS:]


def set_progress(session: Session, *, task_id: int, progress: int, step: str) -> None:
    """Store a job's progress percentage and current step, and log the step."""
    task = session.get(Task, task_id)
    if task is None:
        return
    task.progress = max(0, min(100, progress))
    task.step = step[:255]
    _append_log(task, step)


def finish_task(session: Session, *, task_id: int, status: str, actor: Actor,
                error: str | None = None, wall_seconds: float = 0.0, cpu_seconds: float = 0.0) -> None:
    """Mark a job finished (once) and record its metrics."""
    task = session.get(Task, task_id)
    if task is None or task.status in FINISHED_STATES:
        return
    task.status = status
    task.error = error
    task.finished_at = utcnow()
    if status == "succeeded":
        task.progress = 100
    _append_log(task, f"finished: {status}" + (f" ({error})" if error else ""))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    session.merge(TaskMetrics(task_id=task_id, wall_seconds=wall_seconds, cpu_seconds=cpu_seconds,
                              peak_memory_bytes=peak))
    audit.record(session, actor=actor, action=f"job.{status}", object_type="task", object_id=task_id,
                 outcome="success" if status == "succeeded" else "failure",
                 details={"kind": task.kind, **({"error": error} if error else {})})


def cancel_tasks_of_page(session: Session, *, actor: Actor, kind: str, page_id: str) -> int:
    """Mark the actor's unfinished jobs of one kind started from one page load as cancelled."""
    tasks = session.scalars(
        select(Task).where(Task.owner_id == actor.user_id, Task.kind == kind,
                           Task.status.not_in(FINISHED_STATES))
    ).all()
    count = 0
    for task in tasks:
        if task.parameters.get("page_id") == page_id:
            finish_task(session, task_id=task.id, status="cancelled", actor=actor,
                        error="cancelled by the user")
            count += 1
    return count


def run_rollup_rebuild(*, actor: Actor, page_id: str, report: ProgressFn) -> TaskView:
    """Rebuild every billing period's rollups as a recorded job, reporting progress as it goes."""
    require_role(actor, "admin", "finance")
    with database.session_scope() as session:
        task_id = create_task(session, actor=actor, kind="rollups.rebuild",
                              parameters={"page_id": page_id}, status="running").id
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        with database.session_scope() as session:
            session.execute(update(Task).where(Task.id == task_id).values(started_at=utcnow()))
            set_progress(session, task_id=task_id, progress=0, step="Finding billing periods")
        report(0, "Finding billing periods")

        def on_progress(done: int, total: int, period: dt.date) -> None:
            pct = int(done * 100 / total)
            step = f"Rebuilt {period:%B %Y} ({done} of {total})"
            with database.session_scope() as progress_session:
                set_progress(progress_session, task_id=task_id, progress=pct, step=step)
            report(pct, step)

        with database.session_scope() as session:
            periods = rollups.rebuild_all(session, on_progress=on_progress)
            bump_data_version(session)
    except Exception as exc:
        logger.exception("rollup rebuild %s failed", task_id)
        with database.session_scope() as session:
            finish_task(session, task_id=task_id, status="failed", actor=actor, error=str(exc)[:500],
                        wall_seconds=time.monotonic() - started,
                        cpu_seconds=time.process_time() - cpu_started)
        raise
    with database.session_scope() as session:
        set_progress(session, task_id=task_id, progress=100, step=f"Rebuilt {periods} billing periods")
        finish_task(session, task_id=task_id, status="succeeded", actor=actor,
                    wall_seconds=time.monotonic() - started,
                    cpu_seconds=time.process_time() - cpu_started)
        return get_task(session, actor=actor, task_id=task_id)
