"""Inventory of resources (EC2, RDS, EBS, Elastic IPs) and their utilisation history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin
from models.types import Money


class Resource(TimestampMixin, Base):
    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("usage_account_id", "region", "resource_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    usage_account_id: Mapped[str] = mapped_column(String(128), index=True)
    region: Mapped[str] = mapped_column(String(32))
    #: ec2_instance, rds_instance, ebs_volume, elastic_ip, ebs_snapshot, load_balancer
    resource_type: Mapped[str] = mapped_column(String(32), index=True)
    resource_id: Mapped[str] = mapped_column(String(256))
    name: Mapped[str] = mapped_column(String(256), default="")
    size: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(32), default="")
    monthly_cost: Mapped[Decimal] = mapped_column(Money)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    attributes: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    launched_on: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(32), default="collector")


class ResourceUtilisation(Base):
    """Daily utilisation figures (CloudWatch averages and maxima)."""

    __tablename__ = "resource_utilisation"
    __table_args__ = (UniqueConstraint("resource_pk", "usage_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    usage_date: Mapped[dt.date] = mapped_column(Date)
    cpu_avg: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    cpu_max: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    memory_avg: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    network_in_mb: Mapped[Decimal | None] = mapped_column(Numeric(18, 3))
    network_out_mb: Mapped[Decimal | None] = mapped_column(Numeric(18, 3))
    connections_avg: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    iops_avg: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
