"""account sources, period spans, contracted cost and service category in the rollups, tag aliases

A linked account's month now counts from one source only, chosen per usage account (an aws-finops
job stores each account under itself as payer, Cost Explorer under the real payer, and both used
to count). ``cost_account_sources`` records the choice; every period's rollups are rebuilt from
the facts with it.

``cost_period_spans`` holds each period's first and last charge date, so that a month rollup
(keyed by billing period) answers a range only when it sums the same rows as the day rollups.

Contracted cost becomes a money column of the lines (the list cost where a source does not say
it, as FOCUS defines it without negotiated rates) and of every rollup; the service category a
grouping column of the day, month and summary rollups. The rollups are rebuilt to fill them.

``allocation_tag_aliases`` holds the tag keys an admin set for each allocation key (none: the
defaults, so nothing changes on upgrade).

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-03 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.types

revision = '0015'
down_revision = '0012'
branch_labels = None
depends_on = None

_COSTS = ("unblended_cost", "amortized_cost", "net_cost", "list_cost", "contracted_cost")
#: The sources in the order they count (services.costs.rollups.SOURCE_PRIORITY when written).
_PRIORITY = ("cur2", "focus", "cost_explorer", "aws_finops", "demo")
#: Each rollup's grouping columns as of this revision, finer rollups first.
_ROLLUPS = {
    "cost_daily_rollups": ("usage_date", "billing_period", "provider", "usage_account_id", "service",
                           "service_category", "region", "currency"),
    "cost_allocation_rollups": ("usage_date", "billing_period", "usage_account_id", "service", "team",
                                "cost_center", "environment", "currency"),
    "cost_monthly_rollups": ("billing_period", "provider", "usage_account_id", "service", "service_category",
                             "usage_type", "charge_category", "currency"),
    "cost_summary_rollups": ("billing_period", "provider", "usage_account_id", "service", "service_category",
                             "currency"),
    "cost_team_daily_rollups": ("usage_date", "billing_period", "service", "team", "cost_center", "environment",
                                "currency"),
}


def upgrade() -> None:
    op.create_table('cost_account_sources',
    sa.Column('billing_period', sa.Date(), nullable=False),
    sa.Column('usage_account_id', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('is_counted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('billing_period', 'usage_account_id', 'source', name=op.f('pk_cost_account_sources'))
    )
    op.create_table('cost_period_spans',
    sa.Column('billing_period', sa.Date(), nullable=False),
    sa.Column('first_usage_date', sa.Date(), nullable=False),
    sa.Column('last_usage_date', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('billing_period', name=op.f('pk_cost_period_spans'))
    )
    op.create_table('allocation_tag_aliases',
    sa.Column('allocation_key', sa.String(length=32), nullable=False),
    sa.Column('tag_keys', sa.JSON(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', models.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_allocation_tag_aliases_updated_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('allocation_key', name=op.f('pk_allocation_tag_aliases'))
    )
    _add_contracted_cost_and_service_category()
    _rebuild_rollups()
    _fill_spans()


def _add_contracted_cost_and_service_category() -> None:
    with op.batch_alter_table('cost_fact_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contracted_cost', models.types.Money(precision=38, scale=11), nullable=True))
    op.execute("UPDATE cost_fact_lines SET contracted_cost = list_cost")
    with op.batch_alter_table('cost_fact_lines', schema=None) as batch_op:
        batch_op.alter_column('contracted_cost', existing_type=models.types.Money(precision=38, scale=11),
                              nullable=False)
    # Filled here (the list cost, no category), then rebuilt below for every period with facts.
    for table_name, grouping in _ROLLUPS.items():
        categorised = "service_category" in grouping
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.add_column(sa.Column('contracted_cost', models.types.Money(precision=38, scale=11),
                                          nullable=True))
            if categorised:
                batch_op.add_column(sa.Column('service_category', sa.String(length=64), nullable=True))
        op.execute(f"UPDATE {table_name} SET contracted_cost = list_cost"  # noqa: S608 - this revision's tables
                   + (", service_category = ''" if categorised else ""))
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.alter_column('contracted_cost', existing_type=models.types.Money(precision=38, scale=11),
                                  nullable=False)
            if categorised:
                batch_op.alter_column('service_category', existing_type=sa.String(length=64), nullable=False)


def _fill_spans() -> None:
    """Record each period's first and last charge date, from its day rollup just rebuilt."""
    daily = sa.table("cost_daily_rollups", sa.column("billing_period", sa.Date()), sa.column("usage_date", sa.Date()))
    spans = sa.table("cost_period_spans", sa.column("billing_period"), sa.column("first_usage_date"),
                     sa.column("last_usage_date"))
    op.execute(sa.insert(spans).from_select(
        ["billing_period", "first_usage_date", "last_usage_date"],
        sa.select(daily.c.billing_period, sa.func.min(daily.c.usage_date), sa.func.max(daily.c.usage_date))
        .group_by(daily.c.billing_period)))


def _best(held: set[str]) -> set[str]:
    rank = {name: i for i, name in enumerate(_PRIORITY)}
    top = min(rank.get(s, len(_PRIORITY)) for s in held)
    return {s for s in held if rank.get(s, len(_PRIORITY)) == top}


def _rebuild_rollups() -> None:
    """Rebuild every period's rollups from the facts, counting one source per account-month."""
    bind = op.get_bind()
    lines = sa.table("cost_fact_lines", sa.column("billing_period", sa.Date()), sa.column("usage_date", sa.Date()),
                     sa.column("key_id"), sa.column("source"),
                     *(sa.column(c, models.types.Money()) for c in _COSTS))
    key_columns = {c for keys in _ROLLUPS.values() for c in keys} - {"usage_date", "billing_period"}
    keys = sa.table("cost_fact_keys", sa.column("id"), *(sa.column(c) for c in sorted(key_columns)))
    facts = lines.join(keys, lines.c.key_id == keys.c.id)

    def column(name: str) -> sa.ColumnElement[object]:
        if name == "service_category":
            return sa.func.coalesce(keys.c[name], "")
        return lines.c[name] if name in ("usage_date", "billing_period") else keys.c[name]

    sources = sa.table("cost_account_sources", sa.column("billing_period", sa.Date()),
                       sa.column("usage_account_id"), sa.column("source"), sa.column("is_counted", sa.Boolean()))
    held: dict[object, dict[str, set[str]]] = {}
    for period, account, source in bind.execute(
            sa.select(lines.c.billing_period, keys.c.usage_account_id, lines.c.source).select_from(facts).distinct()):
        held.setdefault(period, {}).setdefault(account, set()).add(source)
    for period, by_account in sorted(held.items()):
        rows = [{"billing_period": period, "usage_account_id": account, "source": source,
                 "is_counted": source in _best(found)}
                for account, found in sorted(by_account.items()) for source in sorted(found)]
        op.bulk_insert(sources, rows)  # type: ignore[arg-type]  # a lightweight table is enough here
        groups: dict[tuple[str, ...], list[str]] = {}
        for account, found in by_account.items():
            groups.setdefault(tuple(sorted(_best(found))), []).append(account)
        counted = sa.or_(sa.false(), *(sa.and_(lines.c.source.in_(chosen), keys.c.usage_account_id.in_(accounts))
                                        for chosen, accounts in groups.items()))
        for table_name, grouping in _ROLLUPS.items():
            target = sa.table(table_name, sa.column("billing_period", sa.Date()))
            op.execute(sa.delete(target).where(target.c.billing_period == period))
            selected = [column(c) for c in grouping]
            query = (sa.select(*selected, *(models.types.money_sum(lines.c[c]) for c in _COSTS), sa.func.count())
                     .select_from(facts).where(lines.c.billing_period == period, counted).group_by(*selected))
            insert_into = sa.table(table_name, *(sa.column(c) for c in (*grouping, *_COSTS, "line_count")))
            op.execute(sa.insert(insert_into).from_select([*grouping, *_COSTS, "line_count"], query))


def downgrade() -> None:
    # The rollups keep their sums without the new columns (rows that differed by category alone stay apart).
    for table_name, grouping in _ROLLUPS.items():
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            batch_op.drop_column('contracted_cost')
            if "service_category" in grouping:
                batch_op.drop_column('service_category')
    with op.batch_alter_table('cost_fact_lines', schema=None) as batch_op:
        batch_op.drop_column('contracted_cost')
    op.drop_table('cost_period_spans')
    op.drop_table('allocation_tag_aliases')
    op.drop_table('cost_account_sources')
