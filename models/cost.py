"""Cost facts at daily grain, the batches that bring them, and the rollups dashboards read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Table, join
from sqlalchemy.orm import Mapped, column_property, declared_attr, mapped_column

from models.base import Base, utcnow
from models.cost_storage import CostFactKey, cost_fact_lines
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


_keys = CostFactKey.__table__


class CostFact(Base):
    """One line of daily cost with its key's values, as every reader sees it (lines joined to keys).

    Read-only: ``services.costs.ingest`` writes lines and keys.
    """

    __table__ = join(cost_fact_lines, _keys, cost_fact_lines.c.key_id == _keys.c.id)
    __mapper_args__ = {"primary_key": [cost_fact_lines.c.id]}

    id: Mapped[int] = column_property(cost_fact_lines.c.id)
    key_id: Mapped[int] = column_property(cost_fact_lines.c.key_id, _keys.c.id)
    usage_date: Mapped[dt.date]
    billing_period: Mapped[dt.date]
    resource_id: Mapped[str | None]
    unblended_cost: Mapped[Decimal]
    amortized_cost: Mapped[Decimal]
    net_cost: Mapped[Decimal]
    list_cost: Mapped[Decimal]
    contracted_cost: Mapped[Decimal]
    usage_quantity: Mapped[Decimal | None]
    source: Mapped[str]
    import_batch_id: Mapped[int]
    provider: Mapped[str]
    payer_account_id: Mapped[str]
    usage_account_id: Mapped[str]
    service: Mapped[str]
    service_category: Mapped[str | None]
    region: Mapped[str]
    usage_type: Mapped[str]
    charge_category: Mapped[str]
    currency: Mapped[str]
    usage_unit: Mapped[str | None]
    tags: Mapped[dict[str, str]]
    team: Mapped[str]
    cost_center: Mapped[str]
    environment: Mapped[str]


class _RollupCosts:
    """The sums every rollup holds. A rollup has one row per value of the columns it groups by,
    which are its primary key for the ORM; the database keeps no key or sequence for them (each
    import rewrites a whole period's rows, and an index less to fill makes that faster)."""

    unblended_cost: Mapped[Decimal] = mapped_column(Money)
    amortized_cost: Mapped[Decimal] = mapped_column(Money)
    net_cost: Mapped[Decimal] = mapped_column(Money)
    list_cost: Mapped[Decimal] = mapped_column(Money)
    contracted_cost: Mapped[Decimal] = mapped_column(Money)
    line_count: Mapped[int] = mapped_column(Integer)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        table = cast(Table, cls.__table__)  # type: ignore[attr-defined]
        return {"primary_key": [c for c in table.columns if c.name not in _RollupCosts.__annotations__]}


class CostDailyRollup(_RollupCosts, Base):
    """Per day x account x service (and its category) x region (and currency)."""

    __tablename__ = "cost_daily_rollups"
    __table_args__ = (
        Index("ix_cost_daily_rollups_date", "usage_date", "usage_account_id"),
        Index("ix_cost_daily_rollups_period", "billing_period"),
    )

    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(32))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    #: The FOCUS service category, "" where the source has none (Cost Explorer, aws-finops).
    service_category: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))


class CostAllocationRollup(_RollupCosts, Base):
    """Per day x account x allocation keys (team, cost centre, environment)."""

    __tablename__ = "cost_allocation_rollups"
    __table_args__ = (
        Index("ix_cost_allocation_rollups_date", "usage_date"),
        Index("ix_cost_allocation_rollups_period", "billing_period"),
    )

    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(String(64))
    cost_center: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))


class CostMonthlyRollup(_RollupCosts, Base):
    """Per month x account x service (and its category) x usage type."""

    __tablename__ = "cost_monthly_rollups"
    __table_args__ = (Index("ix_cost_monthly_rollups_period", "billing_period", "usage_account_id"),)

    billing_period: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(32))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    service_category: Mapped[str] = mapped_column(String(64))
    usage_type: Mapped[str] = mapped_column(String(128))
    charge_category: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))


class CostAccountSource(Base):
    """A source that holds an account's billing period, and whether it is the one counted there
    (the most detailed; see ``services.costs.rollups.counted_sources``). Rewritten with the
    period's rollups, so the data page says where each account-month comes from without reading facts."""

    __tablename__ = "cost_account_sources"

    billing_period: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    usage_account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    is_counted: Mapped[bool] = mapped_column(Boolean)


class CostPeriodSpan(Base):
    """The first and last charge date among a billing period's counted rows, rewritten with its
    rollups. A month rollup (keyed by billing period) answers a range of whole months only while
    no period in or around it holds a row charged outside its own month (FOCUS and CUR date some
    rows outside their billing period); otherwise the day rollups answer (see
    ``services.costs.queries``)."""

    __tablename__ = "cost_period_spans"

    billing_period: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    first_usage_date: Mapped[dt.date] = mapped_column(Date)
    last_usage_date: Mapped[dt.date] = mapped_column(Date)


class AllocationTagAlias(Base):
    """The tag keys that resolve to one allocation key (team, cost centre, environment), first
    match wins; an allocation key without a row uses the long-standing defaults
    (``services.costs.tag_aliases.DEFAULTS``). Edited by admins, audited, and re-applied to stored
    costs when changed."""

    __tablename__ = "allocation_tag_aliases"

    allocation_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    tag_keys: Mapped[list[str]] = mapped_column(JSON)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


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
    """Per month x account x service (and its category): trends and top services read a few
    thousand rows a year (a service has one category, so the category adds no rows)."""

    __tablename__ = "cost_summary_rollups"
    __table_args__ = (
        Index("ix_cost_summary_rollups_period", "billing_period", "usage_account_id"),
        Index("ix_cost_summary_rollups_account", "usage_account_id", "billing_period"),
    )

    billing_period: Mapped[dt.date] = mapped_column(Date)
    provider: Mapped[str] = mapped_column(String(32))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    service_category: Mapped[str] = mapped_column(String(64))
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

    usage_date: Mapped[dt.date] = mapped_column(Date)
    billing_period: Mapped[dt.date] = mapped_column(Date)
    service: Mapped[str] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(String(64))
    cost_center: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
