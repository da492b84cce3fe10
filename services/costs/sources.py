"""Where each account-month's figures come from: the source counted, and the others held."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AwsAccount, CostAccountSource
from services.identity.permissions import Actor, visible_account_ids

#: How the data page names each source.
SOURCE_LABELS = {"cur2": "CUR 2.0", "focus": "FOCUS", "cost_explorer": "Cost Explorer",
                 "aws_finops": "aws-finops", "demo": "Demo data"}


@dataclass(frozen=True)
class AccountSource:
    """One account's billing period: the source(s) counted there, and the others that also hold it."""

    billing_period: dt.date
    account_id: str
    account_name: str
    counted: tuple[str, ...]
    also_held: tuple[str, ...]


def list_account_sources(session: Session, *, actor: Actor, limit: int = 500) -> list[AccountSource]:
    """Return which source each account-month the actor may see is counted from, newest month first."""
    query = select(CostAccountSource).order_by(CostAccountSource.billing_period.desc(),
                                               CostAccountSource.usage_account_id, CostAccountSource.source)
    visible = visible_account_ids(session, actor=actor)
    if visible is not None:
        query = query.where(CostAccountSource.usage_account_id.in_(sorted(visible)))
    by_key: dict[tuple[dt.date, str], tuple[list[str], list[str]]] = {}
    for row in session.scalars(query):
        counted, others = by_key.setdefault((row.billing_period, row.usage_account_id), ([], []))
        (counted if row.is_counted else others).append(row.source)
    names = dict(session.execute(select(AwsAccount.account_id, AwsAccount.name)).all())
    return [AccountSource(billing_period=period, account_id=account, account_name=names.get(account) or "",
                          counted=tuple(counted), also_held=tuple(others))
            for (period, account), (counted, others) in list(by_key.items())[:limit]]
