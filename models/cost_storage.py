"""Where cost facts are stored: the keys lines repeat, and the narrow lines.

Written only by ``services.costs.ingest`` (an import-linter contract keeps it so); every reader
reads ``models.cost.CostFact``, the lines joined to their keys.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, Index, Integer, Numeric, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.types import Money


class CostFactKey(Base):
    """What a line of cost is for: everything but its day, resource and amounts.

    Lines of a month repeat a few thousand of these, so a line stores the key's id and the
    database takes a narrow row per line (a bulk load runs about twice as fast). The id is a hash of
    the key's values (``services.costs.ingest.key_id``), so a loader names keys without asking the
    database; two ids for the same values would only repeat a row here, never change a sum.
    """

    __tablename__ = "cost_fact_keys"
    __table_args__ = (Index("ix_cost_fact_keys_payer", "payer_account_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    provider: Mapped[str] = mapped_column(String(32))
    payer_account_id: Mapped[str] = mapped_column(String(128))
    usage_account_id: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    service_category: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32))
    usage_type: Mapped[str] = mapped_column(String(128))
    charge_category: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    usage_unit: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[dict[str, str]] = mapped_column(JSON)
    #: Allocation keys resolved from the tags at import; "" means untagged (an explicit bucket).
    team: Mapped[str] = mapped_column(String(64))
    cost_center: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(32))


#: One line of daily cost, narrow: its key, day, resource and amounts. No primary key and no
#: B-tree index on purpose: each would cost an index write per loaded line. Lines are loaded and
#: replaced a billing period at a time, so a BRIN index over (billing period, day) finds them.
#: ``id`` is unique all the same (the batch id in the high 32 bits, the line's number in the low).
#: ``import_batch_id`` is lineage without a foreign key (a trigger call per row otherwise).
cost_fact_lines = Table(
    "cost_fact_lines",
    Base.metadata,
    Column("id", BigInteger, nullable=False),
    Column("usage_date", Date, nullable=False),
    Column("billing_period", Date, nullable=False),
    Column("key_id", BigInteger, nullable=False),
    Column("resource_id", String(512)),
    Column("unblended_cost", Money, nullable=False),
    Column("amortized_cost", Money, nullable=False),
    Column("net_cost", Money, nullable=False),
    Column("list_cost", Money, nullable=False),
    Column("contracted_cost", Money, nullable=False),
    Column("usage_quantity", Numeric(38, 15)),
    Column("source", String(32), nullable=False),
    Column("import_batch_id", Integer, nullable=False),
    Index("ix_cost_fact_lines_period_date", "billing_period", "usage_date", postgresql_using="brin"),
)
