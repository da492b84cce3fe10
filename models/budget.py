"""Budgets with a monthly amount and a scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin
from models.types import Money


class Budget(TimestampMixin, Base):
    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    #: monthly, quarterly, annual
    period: Mapped[str] = mapped_column(String(16), default="monthly")
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    #: Filter the budget applies to, e.g. {"usage_account_id": [...], "team": [...]}.
    scope: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    alert_thresholds: Mapped[list[int]] = mapped_column(JSON, default=lambda: [80, 100])
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(32), default="local")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
