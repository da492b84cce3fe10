"""AWS Budgets: the account's cost budgets as budgets of this product.

``DescribeBudgets`` -> ``Budget`` (source ``aws``), upserted by name; a local budget of the same
name is left alone (noted). Only COST budgets with a monthly, quarterly or annual period. Scope:
LinkedAccount -> usage_account_id, Service -> service, Region -> region, a team / cost-centre /
environment tag (by the tag aliases in force) -> team / cost_center / environment, other tags ->
``tag:<key>``, other filters -> ``aws:<filter>``; without an account filter, the profile's account
(``payer_account_id`` for a payer). AWS budgets that vanished are kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Budget
from services.aws._plumbing import KindOutcome, as_date, as_money, error_code, read_pages
from services.costs import tag_aliases

_BUDGET_PERIODS = {"MONTHLY": "monthly", "QUARTERLY": "quarterly", "ANNUALLY": "annual"}
_NO_END_YEAR = 2087  # AWS Budgets' "no end date" is 2087-06-15


def _budget_scope(filters: Mapping[str, Sequence[str]], *, account_id: str, is_payer: bool,
                  aliases: tag_aliases.TagAliases) -> dict[str, list[str]]:
    allocation = {tag_key: allocation_key for allocation_key in tag_aliases.ALLOCATION_KEYS
                  for tag_key in getattr(aliases, allocation_key)}
    scope: dict[str, list[str]] = {}
    for name, values in filters.items():
        if name == "LinkedAccount":
            scope["usage_account_id"] = list(values)
        elif name in ("Service", "Region"):
            scope[name.lower()] = list(values)
        elif name == "TagKeyValue":
            for text in values:
                key, _, value = text.removeprefix("user:").partition("$")
                scope.setdefault(allocation.get(key, f"tag:{key}"), []).append(value)
        else:
            scope[f"aws:{name}"] = list(values)
    if "usage_account_id" not in scope:
        scope["payer_account_id" if is_payer else "usage_account_id"] = [account_id]
    return scope


def collect_budgets(session: Session, *, budgets: Any, account_id: str, is_payer: bool,
                    today: dt.date) -> KindOutcome:
    """Upsert the account's AWS cost budgets by name (source ``aws``)."""
    try:
        found = [b for page in read_pages(budgets, "describe_budgets", "NextToken", AccountId=account_id)
                 for b in page.get("Budgets", [])]
    except ClientError as exc:
        if error_code(exc) != "NotFoundException":  # an account without budgets
            raise
        found = []
    skipped: list[str] = []
    written = 0
    aliases = tag_aliases.get_tag_aliases(session)
    for item in found:
        name = str(item["BudgetName"])[:128]
        period = _BUDGET_PERIODS.get(str(item.get("TimeUnit")))
        limit = item.get("BudgetLimit")
        if item.get("BudgetType") != "COST" or period is None or not limit:
            skipped.append(f"{name} (not a monthly, quarterly or annual cost budget)")
            continue
        budget = session.scalar(select(Budget).where(Budget.name == name))
        if budget is not None and budget.source != "aws":
            skipped.append(f"{name} (a local budget has that name)")
            continue
        if budget is None:
            budget = Budget(name=name, source="aws")
            session.add(budget)
        time_period = item.get("TimePeriod", {})
        ends = as_date(time_period["End"]) if time_period.get("End") else None
        budget.period = period
        budget.amount = as_money(limit["Amount"])
        budget.currency = str(limit.get("Unit") or "USD")[:3]
        budget.scope = _budget_scope(item.get("CostFilters", {}), account_id=account_id, is_payer=is_payer,
                                     aliases=aliases)
        budget.starts_on = as_date(time_period["Start"]) if time_period.get("Start") else today
        budget.ends_on = None if ends is None or ends.year >= _NO_END_YEAR else ends
        written += 1
    note = ("Not imported: " + "; ".join(skipped))[:500] if skipped else None
    return KindOutcome(written, note)
