"""Cost facts at daily grain, the batches that bring them, and the rollups dashboards read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.types import Money, UTCDateTime


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: demo, cost_explorer, cur2, focus, aws_finops
    source: Mapped[str] = mapped_column(String(32))
    billing_period: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="running")
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    file_name: Mapped[str | None] = mapped_column(String(512))
    checksum: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(4000))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CostFact(Base):
    """One line of daily cost; every source lands here."""

    __tablename__ = "cost_facts"
    __table_args__ = (
        Index("ix_cost_facts_period_source", "billing_period", "source"),
        Index("ix_cost_facts_date_account", "usage_date", "usage_account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(32), default="AWS")
    payer_account_id: Mapped[str] = mapped_column(String(128))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    service_category: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32), default="global")
    usage_type: Mapped[str] = mapped_column(String(128), default="")
    charge_category: Mapped[str] = mapped_column(String(32), default="Usage")
    resource_id: Mapped[str | None] = mapped_column(String(512))
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: Allocation keys resolved from the tags at import; "" means untagged (an explicit bucket).
    team: Mapped[str] = mapped_column(String(64), default="")
    cost_center: Mapped[str] = mapped_column(String(64), default="")
    environment: Mapped[str] = mapped_column(String(32), default="")
    unblended_cost: Mapped[Decimal] = mapped_column(Money)
    amortized_cost: Mapped[Decimal] = mapped_column(Money)
    net_cost: Mapped[Decimal] = mapped_column(Money)
    list_cost: Mapped[Decimal] = mapped_column(Money)
    usage_quantity: Mapped[Decimal | None] = mapped_column(Numeric(38, 15))
    usage_unit: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    source: Mapped[str] = mapped_column(String(32))
    #: The batch that loaded the row (lineage). No foreign key and no index on purpose: checking
    #: one costs a trigger call per loaded row; facts are only written with their batch, in
    #: its transaction, and nothing looks facts up by batch.
    import_batch_id: Mapped[int] = mapped_column(Integer)


class _RollupCosts:
    unblended_cost: Mapped[Decimal] = mapped_column(Money)
    amortized_cost: Mapped[Decimal] = mapped_column(Money)
    net_cost: Mapped[Decimal] = mapped_column(Money)
    list_cost: Mapped[Decimal] = mapped_column(Money)
    line_count: Mapped[int] = mapped_column(Integer)


class CostDailyRollup(_RollupCosts, Base):
    """Per day x account x service x region (and currency)."""

    __tablename__ = "cost_daily_rollups"
    __table_args__ = (
        Index("ix_cost_daily_rollups_date", "usage_date", "usage_account_id"),
        Index("ix_cost_daily_rollups_period", "billing_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(32))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))


class CostAllocationRollup(_RollupCosts, Base):
    """Per day x account x allocation keys (team, cost centre, environment)."""

    __tablename__ = "cost_allocation_rollups"
    __table_args__ = (
        Index("ix_cost_allocation_rollups_date", "usage_date"),
        Index("ix_cost_allocation_rollups_period", "billing_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(String(64))
    cost_center: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))


class CostMonthlyRollup(_RollupCosts, Base):
    """Per month x account x service x usage type."""

    __tablename__ = "cost_monthly_rollups"
    __table_args__ = (Index("ix_cost_monthly_rollups_period", "billing_period", "usage_account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(32))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    usage_type: Mapped[str] = mapped_column(String(128))
    charge_category: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))


class DataVersion(Base):
    """A counter every import bumps; cached query results are keyed by it."""

    __tablename__ = "data_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CostAnomaly(Base):
    __tablename__ = "cost_anomalies"

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_date: Mapped[dt.date] = mapped_column(Date, index=True)
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    expected_cost: Mapped[Decimal] = mapped_column(Money)
    actual_cost: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[str] = mapped_column(String(32), default="detector")
    status: Mapped[str] = mapped_column(String(16), default="open")
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CostSummaryRollup(_RollupCosts, Base):
    """Per month x account x service: trends and top services read a few thousand rows a year."""

    __tablename__ = "cost_summary_rollups"
    __table_args__ = (
        Index("ix_cost_summary_rollups_period", "billing_period", "usage_account_id"),
        Index("ix_cost_summary_rollups_account", "usage_account_id", "billing_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(32))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))


class CostTeamDailyRollup(_RollupCosts, Base):
    """Per day x service x allocation keys, over every account: chargeback series for people who
    may see the whole organisation (no account column, so never used for a narrower scope)."""

    __tablename__ = "cost_team_daily_rollups"
    __table_args__ = (
        Index("ix_cost_team_daily_rollups_service_date", "service", "usage_date"),
        # Not on the date alone: rows lie in date order, so PostgreSQL would take a date-only index
        # for "one service over 90 days" and filter out every other service (4x slower, measured).
        Index("ix_cost_team_daily_rollups_date_service", "usage_date", "service"),
        Index("ix_cost_team_daily_rollups_period", "billing_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    service: Mapped[str] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(String(64))
    cost_center: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
