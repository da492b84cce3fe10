"""Saved dashboards and reports."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin
from models.types import UTCDateTime


class DashboardConfig(TimestampMixin, Base):
    __tablename__ = "dashboard_configs"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    page: Mapped[str] = mapped_column(String(64))
    filters: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    is_shared: Mapped[bool] = mapped_column(Boolean, default=False)


class SavedReport(TimestampMixin, Base):
    __tablename__ = "saved_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    output_format: Mapped[str] = mapped_column(String(8), default="pdf")
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_generated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
