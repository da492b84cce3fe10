"""Celery task adapters over services.jobs.lifecycle, publishing after commit, and the embedded job worker."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery

from services import audit, database
from services.jobs import lifecycle, schedules

logger = logging.getLogger(__name__)

REPUBLISH_SECONDS = 30.0
SCHEDULE_CHECK_SECONDS = 30.0
#: How often beat chains audit rows of views that no later writer chained in passing.
AUDIT_SEAL_SECONDS = 10.0
AUDIT_CHECKPOINT_SECONDS = 300.0


def register_tasks(celery: Celery, *, republish_seconds: float = REPUBLISH_SECONDS,
                   checkpoint_seconds: float = AUDIT_CHECKPOINT_SECONDS) -> None:
    """Define the job tasks (explicit names) and the beat schedule on the Celery app."""

    @celery.task(name="jobs.run_task", bind=True, acks_late=True, reject_on_worker_lost=True,
                 max_retries=None, ignore_result=True)
    def run_task(self: Any, task_id: int) -> None:
        outcome = lifecycle.execute_task(int(task_id))
        if outcome.retry_in is not None:
            # Another worker holds a live lease (a redelivered message): look again when it ends.
            raise self.retry(countdown=outcome.retry_in)

    @celery.task(name="jobs.publish_pending", ignore_result=True)
    def publish_pending() -> int:
        with database.session_scope() as session:
            task_ids = lifecycle.stale_task_ids(session)
        return publish_with(celery, task_ids).published

    @celery.task(name="schedules.run_due", ignore_result=True)
    def run_due_schedules() -> int:
        with database.session_scope() as session:
            queued = schedules.run_due(session)
        return publish_with(celery, queued).published

    @celery.task(name="audit.seal_pending", ignore_result=True)
    def seal_pending() -> int:
        with database.session_scope() as session:
            return audit.seal_pending(session)

    @celery.task(name="audit.write_checkpoint", ignore_result=True)
    def write_checkpoint() -> int:
        with database.session_scope() as session:
            return audit.write_checkpoint(session).seq

    celery.conf.beat_schedule = {
        "jobs.publish_pending": {"task": "jobs.publish_pending", "schedule": republish_seconds},
        "schedules.run_due": {"task": "schedules.run_due", "schedule": SCHEDULE_CHECK_SECONDS},
        "audit.seal_pending": {"task": "audit.seal_pending", "schedule": AUDIT_SEAL_SECONDS},
        "audit.write_checkpoint": {"task": "audit.write_checkpoint", "schedule": checkpoint_seconds},
    }


@dataclass(frozen=True)
class PublishResult:
    published: int
    failed: int

    @property
    def is_ok(self) -> bool:
        return self.failed == 0


def publish_with(celery: Celery, task_ids: list[int]) -> PublishResult:
    """Hand committed jobs to the broker; a broker outage leaves them queued for the re-publisher."""
    sent: list[int] = []
    for task_id in task_ids:
        try:
            celery.send_task("jobs.run_task", args=[task_id], retry=False)
        except Exception as exc:  # noqa: BLE001 - any broker error: the job stays queued, nothing is lost
            logger.warning("could not publish job %s: %s", task_id, exc)
            continue
        sent.append(task_id)
    with database.session_scope() as session:
        lifecycle.mark_published(session, task_ids=sent)
    return PublishResult(published=len(sent), failed=len(task_ids) - len(sent))


def run_embedded_worker(poll_seconds: float = 1.0, stop: threading.Event | None = None,
                        checkpoint_seconds: float = AUDIT_CHECKPOINT_SECONDS) -> None:
    """The embedded default's job worker: claim queued jobs from the table and run them, and
    write the audit checkpoints (there is no beat)."""
    database.after_fork()
    stop = stop or threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    owner = lifecycle.worker_id()
    logger.info("embedded job worker %s started", owner)
    next_schedule_check = next_checkpoint = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_schedule_check:
                with database.session_scope() as session:
                    schedules.run_due(session)  # the table is the queue: nothing to publish
                next_schedule_check = time.monotonic() + SCHEDULE_CHECK_SECONDS
            if time.monotonic() >= next_checkpoint:
                next_checkpoint = time.monotonic() + checkpoint_seconds  # a failure waits its turn too
                with database.session_scope() as session:
                    audit.write_checkpoint(session)
            task_id = lifecycle.run_next(owner=owner)
        except Exception:  # noqa: BLE001 - a locked or restarting database: try again shortly
            logger.exception("embedded job worker could not poll")
            task_id = None
        if task_id is None:
            stop.wait(poll_seconds)
