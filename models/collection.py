"""What the collectors bring besides daily costs: breakdowns, forecasts, commitments, advice, runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.types import Money, UTCDateTime


class CostDimensionDaily(Base):
    """Daily cost by account and one more dimension (region, usage type, a tag key, ...).

    Cost Explorer groups by two dimensions per request, so its breakdowns other than
    account x service (kept in cost_facts) land here, one dimension per row set, never summed
    across dimensions.
    """

    __tablename__ = "cost_dimension_daily"
    __table_args__ = (Index("ix_cost_dimension_daily_lookup", "dimension", "usage_date", "usage_account_id"),
                      Index("ix_cost_dimension_daily_period", "billing_period", "source", "payer_account_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    payer_account_id: Mapped[str] = mapped_column(String(128))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    #: region, usage_type, charge_category, or tag:<key>
    dimension: Mapped[str] = mapped_column(String(160))
    value: Mapped[str] = mapped_column(String(256))
    unblended_cost: Mapped[Decimal] = mapped_column(Money)
    amortized_cost: Mapped[Decimal] = mapped_column(Money)
    net_cost: Mapped[Decimal] = mapped_column(Money)
    usage_quantity: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    source: Mapped[str] = mapped_column(String(32))
    import_batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"), index=True)


class CostForecast(Base):
    __tablename__ = "cost_forecasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("aws_profiles.id", ondelete="SET NULL"))
    payer_account_id: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    mean: Mapped[Decimal] = mapped_column(Money)
    lower_bound: Mapped[Decimal | None] = mapped_column(Money)
    upper_bound: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    generated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommitmentReport(Base):
    """Reserved Instance and Savings Plans utilisation or coverage for a period, as AWS reports it."""

    __tablename__ = "commitment_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("aws_profiles.id", ondelete="SET NULL"))
    payer_account_id: Mapped[str] = mapped_column(String(128))
    #: ri_utilisation, ri_coverage, sp_utilisation, sp_coverage
    kind: Mapped[str] = mapped_column(String(32), index=True)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    percentage: Mapped[Decimal | None] = mapped_column(Money)
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    generated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Recommendation(Base):
    """Advice from AWS or from our own analysis: rightsizing, RI or Savings Plans purchases."""

    __tablename__ = "recommendations"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("aws_profiles.id", ondelete="SET NULL"))
    #: rightsizing, ri_purchase, sp_purchase, idle
    kind: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(32), default="aws")
    usage_account_id: Mapped[str | None] = mapped_column(String(128))
    resource_id: Mapped[str | None] = mapped_column(String(512))
    summary: Mapped[str] = mapped_column(String(512), default="")
    estimated_monthly_savings: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    generated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CollectionRun(Base):
    """One collection of one profile: what it fetched and what its Cost Explorer requests cost."""

    __tablename__ = "collection_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("aws_profiles.id", ondelete="SET NULL"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="running")
    ce_requests: Mapped[int] = mapped_column(Integer, default=0)
    ce_pages: Mapped[int] = mapped_column(Integer, default=0)
    ce_cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    other_requests: Mapped[int] = mapped_column(Integer, default=0)
    rows_written: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(4000))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
