"""Background jobs: one row per job, its result files and its resource use."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.types import UTCDateTime

TASK_STATES = (
    "pending",
    "awaiting_approval",
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINISHED_STATES = frozenset({"succeeded", "failed", "cancelled"})


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: e.g. rollups.rebuild, aws_finops.cost, aws_cli.run, collect.cost_explorer
    kind: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(24), default="pending", index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("aws_profiles.id", ondelete="SET NULL"))
    parameters: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    argv: Mapped[list[str] | None] = mapped_column(JSON)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[str] = mapped_column(String(255), default="")
    log: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    #: Set when a user asks to cancel; the worker's heartbeat sees it and stops the job.
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When the job was last handed to the broker (an outbox: re-published while unclaimed).
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    result_summary: Mapped[dict[str, object] | None] = mapped_column(JSON)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approval_comment: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class TaskResult(Base):
    __tablename__ = "task_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100), default="application/json")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Small results inline; large files by storage path.
    data: Mapped[dict[str, object] | None] = mapped_column(JSON)
    storage_path: Mapped[str | None] = mapped_column(String(1024))
    #: The run that kept it: a run cut off by a killed worker leaves results that its retry replaces.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskMetrics(Base):
    __tablename__ = "task_metrics"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    peak_memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    output_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    aws_requests: Mapped[int] = mapped_column(Integer, default=0)


class Schedule(Base):
    """A saved job or report that Celery beat runs on a cron schedule."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    cron: Mapped[str] = mapped_column(String(64))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
