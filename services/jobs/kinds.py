"""Kinds of job and what a running job gets: its context (progress, log, results), cancel, and the
registry of kinds that pages, the API and workers look them up in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, update
from sqlalchemy.orm import Session

from models import Task, TaskResult
from models.base import utcnow
from models.types import text_tail
from services import database
from services.errors import InvalidInput
from services.identity.permissions import Actor

MAX_LOG_CHARS = 200_000
ProgressFn = Callable[[int, str], None]


def _appended(line: str) -> ColumnElement[str]:
    """The log with a line added, as SQL: the database appends under its row lock, so writers at the
    same time lose nothing (a read, then a write of the whole log, kept only the last writer's line).
    Only the newest MAX_LOG_CHARS characters stay."""
    stamp = utcnow().strftime("%H:%M:%S")
    return text_tail(func.coalesce(Task.log, "") + f"{stamp} {line}\n", MAX_LOG_CHARS)


def append_log(session: Session, *, task_id: int, line: str) -> None:
    """Append a line to a job's log in one statement."""
    session.execute(update(Task).where(Task.id == task_id).values(log=_appended(line))
                    .execution_options(synchronize_session=False))


def set_progress(session: Session, *, task_id: int, progress: int, step: str) -> None:
    """Store a job's progress percentage and current step, and log the step."""
    session.execute(update(Task).where(Task.id == task_id)
                    .values(progress=max(0, min(100, progress)), step=step[:255], log=_appended(step))
                    .execution_options(synchronize_session=False))



class JobContext:
    """What an executor gets: its parameters, and ways to report progress, log, store results."""

    def __init__(self, *, task_id: int, actor: Actor, parameters: dict[str, Any], cancel: threading.Event,
                 report: ProgressFn | None = None, attempt: int = 1) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.report = report
        self.actor = actor
        self.parameters = parameters
        self.cancel_event = cancel
        self.aws_requests = 0
        self.child_cpu_seconds = 0.0
        self.child_peak_memory = 0

    def is_cancelled(self) -> bool:
        """Tell whether the user asked to cancel (or the lease was lost)."""
        return self.cancel_event.is_set()

    def progress(self, pct: int, step: str) -> None:
        """Store progress and the current step (also appended to the log)."""
        with database.session_scope() as session:
            set_progress(session, task_id=self.task_id, progress=pct, step=step)
        if self.report is not None:
            self.report(pct, step)

    def log(self, line: str) -> None:
        """Append a line to the job's log, readable while it runs."""
        with database.session_scope() as session:
            append_log(session, task_id=self.task_id, line=line)

    def add_result(self, name: str, *, data: dict[str, object] | None = None, path: str | None = None,
                   content_type: str = "application/json", size: int = 0) -> None:
        """Keep a result (inline data or a file) for download."""
        with database.session_scope() as session:
            session.add(TaskResult(task_id=self.task_id, name=name, data=data, storage_path=path,
                                   content_type=content_type, size_bytes=size, attempt=self.attempt))


class JobCancelled(Exception):
    """Raised by an executor that stopped because it was asked to."""


@dataclass(frozen=True)
class JobKind:
    """A kind of job: who may run it, what parameters it takes, how it runs, what it may cost."""

    name: str
    label: str
    roles: tuple[str, ...]
    parameters: type[BaseModel]
    run: Callable[[JobContext], dict[str, object]]
    #: Cost Explorer requests the job is expected to make (USD 0.01 each), for approval rules.
    estimate_ce_requests: Callable[[BaseModel], int] = lambda _p: 0
    profile_ids: Callable[[BaseModel], list[int]] = lambda _p: []
    changes_aws: bool = False

    def form_schema(self) -> dict[str, Any]:
        """Return the parameters' JSON schema with every default filled in, including those a factory
        makes (which the schema leaves out), so that a form starts from what the job would use."""
        schema = self.parameters.model_json_schema()
        for name, info in self.parameters.model_fields.items():
            prop = schema.get("properties", {}).get(name)
            if prop is not None and "default" not in prop and info.default_factory is not None:
                prop["default"] = info.get_default(call_default_factory=True, validated_data={})
        return schema


_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind) -> JobKind:
    """Make a kind of job available to submit."""
    _KINDS[kind.name] = kind
    return kind


def list_kinds(*, actor: Actor) -> list[JobKind]:
    """Return the kinds of job the actor may start."""
    return [k for k in _KINDS.values() if actor.has_role(*k.roles)]


def get_kind(name: str) -> JobKind:
    """Return a registered kind or raise InvalidInput."""
    try:
        return _KINDS[name]
    except KeyError:
        raise InvalidInput(f"kind: there is no kind of job called '{name}'") from None
