"""Jobs: one Task row per job, claimed once under a lease, with progress, logs, results and audit.

The life of a job: ``submit_job`` records it (``awaiting_approval`` when a rule says so, else
``queued``); the web layer publishes it to the broker only after that commit; a worker
``execute_task`` claims it atomically with a lease (so a redelivered message never runs a job
twice), renews the lease from a heartbeat thread that also notices cancel requests, runs the
kind's executor, and finishes it only while it still holds the lease (so exactly one result is
kept). Leases are timed by the database's clock, never a worker's. Jobs whose lease ran out (a
worker killed mid-job) are claimed again, up to ``max_attempts``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import resource
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models import Task, TaskMetrics, TaskResult
from models.base import utcnow
from models.task import FINISHED_STATES
from models.types import db_now
from services import audit, database
from services.aws import profiles
from services.costs import rollups
from services.costs.ingest import bump_data_version
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.identity.permissions import Actor, require_role
from services.jobs.kinds import JobCancelled, JobContext, JobKind, ProgressFn, append_log, get_kind, register_kind
from services.validation import is_storable_id, parse

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60


Publisher = Callable[[list[int]], int]
_publisher: Publisher | None = None


_policy: ApprovalPolicy | None = None


def configure(*, lease_seconds: int, publisher: Publisher | None = None,
              policy: ApprovalPolicy | None = None) -> None:
    """Set how long a claim lasts without a heartbeat, and how committed jobs reach a worker.

    Without a publisher (the embedded default) the job worker polls the table itself.
    """
    global LEASE_SECONDS, _publisher, _policy
    LEASE_SECONDS = lease_seconds
    _publisher = publisher
    _policy = policy


def current_policy() -> ApprovalPolicy:
    """Return the configured approval rules (the defaults when none were configured)."""
    return _policy or ApprovalPolicy()


def publish(task_ids: list[int]) -> int:
    """Hand committed jobs to the workers; return how many could not be handed over (they stay
    queued and are re-published later, so nothing is lost)."""
    if _publisher is None or not task_ids:
        return 0
    return len(task_ids) - _publisher(task_ids)
APPROVER_ROLES = ("admin", "finance")
QUEUE_DOWN_NOTICE = ("The job queue is unavailable right now. The job is saved and will start as soon as "
                     "the queue is back.")


# --- views -----------------------------------------------------------------------------------

class TaskView(BaseModel):
    """A job as a page or the API shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: str
    status: str
    progress: int
    step: str
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    owner_id: int | None
    parameters: dict[str, Any] = Field(default_factory=dict)
    attempts: int = 0
    approval_comment: str | None = None
    result_summary: dict[str, Any] | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATES


def _view(task: Task) -> TaskView:
    return TaskView(id=task.id, kind=task.kind, status=task.status, progress=task.progress, step=task.step,
                    error=task.error, created_at=task.created_at, finished_at=task.finished_at,
                    owner_id=task.owner_id, parameters=dict(task.parameters), attempts=task.attempts,
                    approval_comment=task.approval_comment, result_summary=task.result_summary)


class RebuildRollups(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]*$")


def _run_rebuild(ctx: JobContext) -> dict[str, object]:
    def on_progress(done: int, total: int, period: dt.date) -> None:
        ctx.progress(int(done * 100 / total), f"Rebuilt {period:%B %Y} ({done} of {total})")

    with database.session_scope() as session:
        periods = rollups.rebuild_all(session, on_progress=on_progress, should_stop=ctx.is_cancelled)
        if ctx.is_cancelled():
            raise JobCancelled()
        bump_data_version(session)
    return {"billing_periods": periods}


register_kind(JobKind(name="rollups.rebuild", label="Rebuild the rollup tables", roles=("admin", "finance"),
                      parameters=RebuildRollups, run=_run_rebuild))


# --- approvals -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApprovalPolicy:
    """When a job waits for a second person: estimated Cost Explorer spend, profile count, AWS changes."""

    max_ce_cost_usd: Decimal = Decimal("1.00")
    max_profiles: int = 5
    gate_aws_changes: bool = True

    def reasons(self, kind: JobKind, params: BaseModel) -> list[str]:
        """Return why a job needs approval (empty when it does not)."""
        reasons = []
        cost = Decimal(kind.estimate_ce_requests(params)) * Decimal("0.01")
        if cost > self.max_ce_cost_usd:
            reasons.append(f"estimated Cost Explorer charges of ${cost:.2f} exceed ${self.max_ce_cost_usd:.2f}")
        profiles = len(kind.profile_ids(params))
        if profiles > self.max_profiles:
            reasons.append(f"{profiles} profiles exceed the limit of {self.max_profiles}")
        if kind.changes_aws and self.gate_aws_changes:
            reasons.append("the job changes AWS resources")
        return reasons


# --- submit, approve, cancel -------------------------------------------------------------------

def check_may_submit(actor: Actor, kind: str) -> JobKind:
    """Return the kind when the actor may start it; raise PermissionDenied otherwise."""
    spec = get_kind(kind)
    if not actor.has_role(*spec.roles):
        raise PermissionDenied("You do not have permission to start this kind of job.")
    return spec


def validate_parameters(spec: JobKind, parameters: dict[str, object]) -> BaseModel:
    """Check a job's parameters against its kind, as one readable InvalidInput naming the field."""
    return parse(spec.parameters, parameters, default_field="parameters")


def submit_job(session: Session, *, actor: Actor, kind: str, parameters: dict[str, object],
               policy: ApprovalPolicy | None = None) -> TaskView:
    """Validate and record a job; it waits for approval when a rule says so, else it is queued.

    Without a policy the configured one applies. The caller commits, then publishes the job (never
    before the row is committed).
    """
    policy = policy or current_policy()
    spec = check_may_submit(actor, kind)
    params = validate_parameters(spec, parameters)
    for profile_id in spec.profile_ids(params):  # refused now, not when a worker runs it
        profiles.check_may_run(session, actor=actor, profile_id=profile_id)
    reasons = policy.reasons(spec, params)
    status = "awaiting_approval" if reasons else "queued"
    task = Task(kind=kind, owner_id=actor.user_id, parameters=params.model_dump(mode="json"), status=status,
                queued_at=None if reasons else utcnow(), step="; ".join(reasons)[:255] if reasons else "Queued")
    session.add(task)
    session.flush()
    audit.record(session, actor=actor, action="job.submit", object_type="task", object_id=task.id,
                 details={"kind": kind, "status": status, "reasons": reasons})
    return _view(task)


def _owned(session: Session, *, actor: Actor, task_id: int, lock: bool = False) -> Task:
    query = select(Task).where(Task.id == task_id)
    task = session.scalar(query.with_for_update() if lock else query) if is_storable_id(task_id) else None
    if task is None or not (task.owner_id == actor.user_id or actor.has_role("admin", "auditor", *APPROVER_ROLES)):
        raise NotFound(f"Job {task_id} was not found.")
    return task


def decide_approval(session: Session, *, actor: Actor, task_id: int, approve: bool, comment: str) -> TaskView:
    """Approve (queue) or reject a gated job; never one's own."""
    require_role(actor, *APPROVER_ROLES)
    comment = comment.strip()
    if not comment or len(comment) > 1000:
        raise InvalidInput("comment: say why, in 1 to 1000 characters")
    task = _owned(session, actor=actor, task_id=task_id, lock=True)
    if task.status != "awaiting_approval":
        raise Conflict(f"Job {task_id} is not waiting for approval (it is {task.status}).")
    if task.owner_id == actor.user_id:
        raise PermissionDenied("You cannot approve your own job: ask another approver.")
    task.approved_by_id = actor.user_id
    task.approval_comment = comment
    if approve:
        task.status, task.queued_at, task.step = "queued", utcnow(), "Approved; queued"
    else:
        task.status, task.finished_at, task.step = "cancelled", utcnow(), "Rejected"
        task.error = f"rejected: {comment}"
    decision = "approved" if approve else "rejected"
    append_log(session, task_id=task_id, line=f"{decision} by {actor.username}: {comment}")
    audit.record(session, actor=actor, action="job.approve" if approve else "job.reject", object_type="task",
                 object_id=task_id, details={"comment": comment, "requester": task.owner_id})
    return _view(task)


def request_cancel(session: Session, *, actor: Actor, task_id: int) -> TaskView:
    """Ask a job to stop: a queued one is cancelled at once, a running one by its worker."""
    task = _owned(session, actor=actor, task_id=task_id, lock=True)
    if task.owner_id != actor.user_id and not actor.has_role("admin"):
        raise PermissionDenied("Only the job's owner or an administrator can cancel it.")
    if task.status in FINISHED_STATES:
        raise Conflict(f"Job {task_id} has already finished ({task.status}).")
    task.cancel_requested_at = utcnow()
    if task.status in ("pending", "awaiting_approval", "queued"):
        task.status, task.finished_at, task.error = "cancelled", utcnow(), "cancelled by the user"
    append_log(session, task_id=task_id, line=f"cancel requested by {actor.username}")
    audit.record(session, actor=actor, action="job.cancel", object_type="task", object_id=task_id)
    return _view(task)


# --- reading ---------------------------------------------------------------------------------

def get_task(session: Session, *, actor: Actor, task_id: int) -> TaskView:
    """Return a job the actor may see; another user's job is "not found" unless admin or auditor."""
    task = session.get(Task, task_id) if is_storable_id(task_id) else None
    if task is None or (task.owner_id != actor.user_id and not actor.has_role("admin", "auditor", *APPROVER_ROLES)):
        raise NotFound(f"Job {task_id} was not found.")
    return _view(task)


def get_log(session: Session, *, actor: Actor, task_id: int, is_view: bool = False) -> str:
    """Return a job's log so far.

    ``is_view``: the log is handed over as it is (the API), so the read is audited; the job page,
    which follows a running job's log every second, does not write a row per refresh.
    """
    get_task(session, actor=actor, task_id=task_id)
    log = session.scalar(select(Task.log).where(Task.id == task_id)) or ""
    if is_view:
        audit.record(session, actor=actor, action="job.log_view", object_type="task", object_id=task_id)
    return log


@dataclass(frozen=True)
class StartedJob:
    """A job just recorded, and what to tell its submitter when the queue could not take it yet."""

    view: TaskView
    notice: str | None


def start_job(*, actor: Actor, kind: str, parameters: dict[str, object]) -> StartedJob:
    """Record a job in its own transaction, then hand it to the workers once that has committed."""
    with database.session_scope() as session:
        view = submit_job(session, actor=actor, kind=kind, parameters=parameters)
    is_unpublished = view.status == "queued" and publish([view.id]) > 0
    return StartedJob(view=view, notice=QUEUE_DOWN_NOTICE if is_unpublished else None)


def decide_and_release(*, actor: Actor, task_id: int, approve: bool, comment: str) -> TaskView:
    """Approve or reject a gated job in its own transaction; an approved one is then published."""
    with database.session_scope() as session:
        view = decide_approval(session, actor=actor, task_id=task_id, approve=approve, comment=comment)
    if approve:
        publish([view.id])
    return view


def list_tasks(session: Session, *, actor: Actor, limit: int = 20, offset: int = 0, status: str | None = None,
               kind: str | None = None) -> list[TaskView]:
    """Return recent jobs: one's own, or everyone's for admins, auditors and approvers."""
    query = select(Task).order_by(Task.id.desc()).limit(min(max(limit, 1), 200)).offset(max(offset, 0))
    if not actor.has_role("admin", "auditor", *APPROVER_ROLES):
        query = query.where(Task.owner_id == actor.user_id)
    if status:
        query = query.where(Task.status == status)
    if kind:
        query = query.where(Task.kind == kind)
    return [_view(t) for t in session.scalars(query)]


def list_results(session: Session, *, actor: Actor, task_id: int) -> list[tuple[int, str, int]]:
    """Return a job's results as (id, name, size in bytes)."""
    task = get_task(session, actor=actor, task_id=task_id)
    rows = session.execute(select(TaskResult.id, TaskResult.name, TaskResult.size_bytes)
                           .where(TaskResult.task_id == task_id, TaskResult.attempt == max(task.attempts, 1))
                           .order_by(TaskResult.id)).all()
    return [(i, n, s) for i, n, s in rows]


@dataclass(frozen=True)
class ResultFile:
    name: str
    content_type: str
    data: dict[str, object] | None
    path: str | None


def get_result(session: Session, *, actor: Actor, task_id: int, result_id: int) -> ResultFile:
    """Return one result for download, and record the download."""
    get_task(session, actor=actor, task_id=task_id)
    result = session.get(TaskResult, result_id) if is_storable_id(result_id) else None
    if result is None or result.task_id != task_id:
        raise NotFound(f"Result {result_id} of job {task_id} was not found.")
    audit.record(session, actor=actor, action="export.download", object_type="task_result", object_id=result_id,
                 details={"task": task_id, "name": result.name})
    return ResultFile(name=result.name, content_type=result.content_type, data=result.data,
                      path=result.storage_path)


def can_approve(task: TaskView, *, actor: Actor) -> bool:
    """Tell whether the actor may decide on this job's approval."""
    return (task.status == "awaiting_approval" and actor.has_role(*APPROVER_ROLES)
            and task.owner_id != actor.user_id)


def can_cancel(task: TaskView, *, actor: Actor) -> bool:
    """Tell whether the actor may cancel this job."""
    return not task.is_finished and (task.owner_id == actor.user_id or actor.has_role("admin"))


# --- execution -------------------------------------------------------------------------------

def heartbeat_seconds() -> float:
    """Return how often a running job renews its lease: every third of the configured lease."""
    return max(1.0, LEASE_SECONDS / 3)


def worker_id() -> str:
    """Identify this process for leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass(frozen=True)
class ClaimOutcome:
    """Why a worker did or did not run a job."""

    claimed: bool
    reason: str
    retry_in: float | None = None


def _clock(now: dt.datetime | None, plus_seconds: float = 0.0) -> ColumnElement[dt.datetime] | dt.datetime:
    """Lease time: the database's clock, or a given time (tests stepping past a lease).

    Not this process's clock: workers' clocks drift apart, and one running fast would take another
    worker's live job, one running slow would hand out leases that are over already.
    """
    return db_now(plus_seconds) if now is None else now + dt.timedelta(seconds=plus_seconds)


def claim(session: Session, *, task_id: int, owner: str, now: dt.datetime | None = None,
          lease_seconds: int | None = None) -> ClaimOutcome:
    """Take a queued job, or one whose lease ran out (by the database's clock), in one atomic update."""
    # Read at call time: a default argument would keep the value of import time, not the configured one.
    lease_seconds = lease_seconds or LEASE_SECONDS
    claimable = or_(Task.status == "queued", (Task.status == "running") & (Task.lease_expires_at < _clock(now)))
    result = session.execute(
        update(Task).where(Task.id == task_id, claimable, Task.attempts < Task.max_attempts,
                           Task.cancel_requested_at.is_(None))
        .values(status="running", lease_owner=owner, lease_expires_at=_clock(now, lease_seconds),
                attempts=Task.attempts + 1, started_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]  # a CursorResult
        return ClaimOutcome(True, "claimed")
    task = session.get(Task, task_id)
    if task is None:
        return ClaimOutcome(False, "no such job")
    if task.status in FINISHED_STATES:
        return ClaimOutcome(False, f"already {task.status}")
    if task.status == "running" and task.lease_expires_at:
        lease_now = now or session.scalar(select(db_now()))
        assert lease_now is not None  # noqa: S101 - a SELECT of the clock returns a row
        if task.lease_expires_at >= lease_now:
            return ClaimOutcome(False, "running elsewhere", (task.lease_expires_at - lease_now).total_seconds() + 1)
    now = now or utcnow()
    if task.attempts >= task.max_attempts:
        task.status, task.finished_at = "failed", now
        task.error = f"gave up after {task.attempts} attempts (the worker stopped each time)"
        append_log(session, task_id=task_id, line=task.error)
        return ClaimOutcome(False, "attempts exhausted")
    if task.cancel_requested_at is not None:
        task.status, task.finished_at, task.error = "cancelled", now, "cancelled by the user"
        return ClaimOutcome(False, "cancelled")
    return ClaimOutcome(False, f"not runnable ({task.status})")


def claim_next(session: Session, *, owner: str, now: dt.datetime | None = None) -> int | None:
    """Claim the oldest runnable job (the embedded worker's queue is the table itself)."""
    candidates = session.scalars(
        select(Task.id).where(or_(Task.status == "queued",
                                  (Task.status == "running") & (Task.lease_expires_at < _clock(now))))
        .order_by(Task.id).limit(5)
    ).all()
    for task_id in candidates:
        if claim(session, task_id=task_id, owner=owner, now=now).claimed:
            return task_id
    return None


def stale_task_ids(session: Session, *, now: dt.datetime | None = None, unpublished_after: int = 60) -> list[int]:
    """Jobs to publish (again): queued but never handed over or not picked up, or whose lease ran out."""
    cutoff = _clock(now, -unpublished_after)
    return list(session.scalars(select(Task.id).where(or_(
        (Task.status == "queued") & (or_(Task.published_at.is_(None), Task.published_at < cutoff)),
        (Task.status == "running") & (Task.lease_expires_at < _clock(now)),
    )).order_by(Task.id).limit(500)))


def mark_published(session: Session, *, task_ids: list[int]) -> None:
    """Record that jobs were handed to the broker."""
    if task_ids:
        session.execute(update(Task).where(Task.id.in_(task_ids)).values(published_at=db_now()))


class _Heartbeat(threading.Thread):
    """Renew the lease while the job runs; notice cancel requests and a lost lease."""

    def __init__(self, *, task_id: int, owner: str, cancel: threading.Event, interval: float) -> None:
        super().__init__(daemon=True, name=f"job-{task_id}-heartbeat")
        self.task_id, self.owner, self.cancel, self.interval = task_id, owner, cancel, interval
        self.stopped = threading.Event()
        self.lease_lost = False

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a database hiccup must not kill the job; the next beat retries
                logger.exception("heartbeat of job %s failed", self.task_id)

    def beat(self) -> None:
        with database.session_scope() as session:
            renewed = session.execute(
                update(Task).where(Task.id == self.task_id, Task.lease_owner == self.owner,
                                   Task.status == "running")
                .values(lease_expires_at=db_now(LEASE_SECONDS)).execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]  # a CursorResult
            cancel_at = session.scalar(select(Task.cancel_requested_at).where(Task.id == self.task_id))
        if not renewed:
            self.lease_lost = True
            self.cancel.set()
        if cancel_at is not None:
            self.cancel.set()


def owner_actor(session: Session, *, owner_id: int | None) -> Actor:
    """Return the actor a job runs as: its owner, or the system for jobs nobody owns."""
    from services.identity.auth import actor_for, get_user

    if owner_id is None:
        return Actor.system("scheduler")
    user = get_user(session, user_id=owner_id)
    if user is None or not user.is_active:
        raise PermissionDenied("The job's owner is disabled or gone: it does not run on their behalf.")
    return actor_for(user)


def execute_task(task_id: int, *, owner: str | None = None) -> ClaimOutcome:
    """Claim and run one job to its end; safe to call again for the same job (it runs once)."""
    owner = owner or worker_id()
    with database.session_scope() as session:
        outcome = claim(session, task_id=task_id, owner=owner)
        if not outcome.claimed:
            logger.info("job %s not run here: %s", task_id, outcome.reason)
            return outcome
        started = _started(session, task_id=task_id, owner=owner)
    if started is not None:
        _run_claimed(task_id=task_id, owner=owner, **started)
    return outcome


def run_next(*, owner: str) -> int | None:
    """Claim the oldest runnable job and run it; return its id, or None when there was none."""
    with database.session_scope() as session:
        task_id = claim_next(session, owner=owner)
        if task_id is None:
            return None
        started = _started(session, task_id=task_id, owner=owner)
    if started is not None:
        _run_claimed(task_id=task_id, owner=owner, **started)
    return task_id


def _started(session: Session, *, task_id: int, owner: str) -> dict[str, Any] | None:
    """Log the start and return what the run needs; None when the job may not run (it is failed)."""
    task = session.get(Task, task_id)
    assert task is not None  # noqa: S101 - just claimed in this transaction
    append_log(session, task_id=task_id, line=f"started on {owner} (attempt {task.attempts})")
    try:
        actor = owner_actor(session, owner_id=task.owner_id)
    except PermissionDenied as exc:
        finish(session, task_id=task_id, owner=owner, actor=Actor.system("jobs"), status="failed", error=exc.message)
        return None
    return {"actor": actor, "kind": task.kind, "parameters": dict(task.parameters), "attempt": task.attempts}


def _run_claimed(*, task_id: int, owner: str, actor: Actor, kind: str, parameters: dict[str, Any],
                 attempt: int, report: ProgressFn | None = None) -> None:
    cancel = threading.Event()
    ctx = JobContext(task_id=task_id, actor=actor, parameters=parameters, cancel=cancel, report=report,
                     attempt=attempt)
    heartbeat = _Heartbeat(task_id=task_id, owner=owner, cancel=cancel, interval=heartbeat_seconds())
    heartbeat.start()
    started, cpu_started = time.monotonic(), time.process_time()
    status, error, summary = "succeeded", None, None
    try:
        summary = get_kind(kind).run(ctx)
        if cancel.is_set() and not heartbeat.lease_lost:
            status, error = "cancelled", "cancelled by the user"
    except JobCancelled:
        status, error = "cancelled", "cancelled by the user"
    except Exception as exc:  # every failure ends the job with its reason; the worker goes on
        logger.exception("job %s (%s) failed", task_id, kind)
        status, error = "failed", _reason(exc)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(5)
    if heartbeat.lease_lost:
        logger.warning("job %s lost its lease; another worker owns it now, this run's result is dropped", task_id)
        return
    with database.session_scope() as session:
        finish(session, task_id=task_id, owner=owner, actor=actor, status=status, error=error, summary=summary,
               wall_seconds=time.monotonic() - started,
               cpu_seconds=time.process_time() - cpu_started + ctx.child_cpu_seconds,
               peak_memory=max(ctx.child_peak_memory, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
               aws_requests=ctx.aws_requests)


def _reason(exc: Exception) -> str:
    from services.errors import DomainError

    if isinstance(exc, DomainError):
        return exc.message
    name = type(exc).__name__
    if name == "SoftTimeLimitExceeded":
        return "stopped at the time limit for jobs"
    if isinstance(exc, SQLAlchemyError):
        # Its text holds the statement and parameters: for the worker's log, not for the job's owner.
        return f"The job stopped on a database error ({name}); the details are in the worker's log."
    return f"{name}: {str(exc)[:400]}"


def finish(session: Session, *, task_id: int, owner: str | None, actor: Actor, status: str,
           error: str | None = None, summary: dict[str, object] | None = None, wall_seconds: float = 0.0,
           cpu_seconds: float = 0.0, peak_memory: int = 0, aws_requests: int = 0) -> bool:
    """End a job once, only by the worker holding its lease; record metrics and audit it."""
    guard = [Task.id == task_id, Task.status.not_in(FINISHED_STATES)]
    if owner is not None:
        guard.append(Task.lease_owner == owner)
    values: dict[str, object] = {"status": status, "error": error, "finished_at": utcnow(),
                                 "result_summary": summary, "lease_expires_at": None}
    if status == "succeeded":
        values["progress"] = 100
    done = session.execute(update(Task).where(*guard).values(**values)).rowcount  # type: ignore[attr-defined]
    if not done:
        return False
    task = session.get(Task, task_id)
    assert task is not None  # noqa: S101 - just updated
    session.refresh(task)
    # Exactly one run's results stand: those of a run cut off before it could finish go.
    session.execute(delete(TaskResult).where(TaskResult.task_id == task_id, TaskResult.attempt != task.attempts))
    append_log(session, task_id=task_id, line=f"finished: {status}" + (f" ({error})" if error else ""))
    session.merge(TaskMetrics(task_id=task_id, wall_seconds=wall_seconds, cpu_seconds=cpu_seconds,
                              peak_memory_bytes=peak_memory, aws_requests=aws_requests))
    audit.record(session, actor=actor, action=f"job.{status}", object_type="task", object_id=task_id,
                 outcome="success" if status == "succeeded" else "failure",
                 details={"kind": task.kind, **({"error": error} if error else {})})
    return True


# --- the overview page's interactive rebuild (a Dash background callback) -----------------------

def cancel_tasks_of_page(session: Session, *, actor: Actor, kind: str, page_id: str) -> int:
    """Mark the actor's unfinished jobs of one kind started from one page load as cancelled."""
    tasks = session.scalars(
        select(Task).where(Task.owner_id == actor.user_id, Task.kind == kind, Task.status.not_in(FINISHED_STATES))
    ).all()
    count = 0
    for task in tasks:
        if task.parameters.get("page_id") == page_id:
            finish(session, task_id=task.id, owner=None, actor=actor, status="cancelled",
                   error="cancelled by the user")
            count += 1
    return count


def run_here(*, actor: Actor, kind: str, parameters: dict[str, object], report: ProgressFn | None = None,
             owner: str | None = None) -> TaskView:
    """Record a job as already claimed by this process and run it here (a Dash background worker
    that shows its progress); it never enters the queue, so no other worker runs it too."""
    spec = check_may_submit(actor, kind)
    params = validate_parameters(spec, parameters)
    owner = owner or worker_id()
    now = utcnow()
    with database.session_scope() as session:
        task = Task(kind=kind, owner_id=actor.user_id, parameters=params.model_dump(mode="json"), status="running",
                    queued_at=now, started_at=now, attempts=1, lease_owner=owner, step="Started",
                    lease_expires_at=db_now(LEASE_SECONDS))
        session.add(task)
        session.flush()
        task_id = task.id
        audit.record(session, actor=actor, action="job.submit", object_type="task", object_id=task_id,
                     details={"kind": kind, "status": "running", "reasons": []})
    _run_claimed(task_id=task_id, owner=owner, actor=actor, kind=kind, parameters=params.model_dump(mode="json"),
                 attempt=1, report=report)
    with database.session_scope() as session:
        return get_task(session, actor=actor, task_id=task_id)
