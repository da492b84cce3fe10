"""One source per account-month: the most detailed one counts, whatever order the sources came in."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from services.costs import cache, ingest, queries, sources
from services.identity.permissions import Actor
from tests.factories import fact

FINANCE = Actor(user_id=None, username="fin", roles=frozenset({"finance"}))
PAYER = "999999999999"
LINKED = ("111111111111", "222222222222")
PERIODS = (dt.date(2026, 9, 1), dt.date(2026, 10, 1))
#: What each linked account really cost in each month, by service.
SEEDED = {(period, account): {"Amazon EC2": Decimal(f"{10 + i}.25"), "Amazon S3": Decimal(f"{3 + i}.5")}
          for period in PERIODS for i, account in enumerate(LINKED)}


def _aws_finops(session, period):
    """What an aws-finops cost job stores: per profile (one linked account), its own payer."""
    for account in LINKED:
        rows = [fact(period, account, service, str(amount), payer_account_id=account, billing_period=period)
                for service, amount in SEEDED[(period, account)].items()]
        ingest.replace_period(session, source="aws_finops", billing_period=period, rows=rows,
                              payer_account_ids={account})


def _daily(period, account, service, amount, *, payer=PAYER):
    """A month's amount spread over three days, as Cost Explorer or a FOCUS file has it."""
    third = (amount / 3).quantize(Decimal("0.00000000001"))
    parts = (third, third, amount - 2 * third)
    return [fact(period + dt.timedelta(days=d), account, service, str(part), payer_account_id=payer)
            for d, part in zip((0, 9, 17), parts, strict=True)]


def _cost_explorer(session, period):
    """What the payer's Cost Explorer collection stores: the organisation under its real payer."""
    rows = [row for (p, account), services in SEEDED.items() if p == period
            for service, amount in services.items() for row in _daily(period, account, service, amount)]
    ingest.replace_period(session, source="cost_explorer", billing_period=period, rows=rows,
                          payer_account_ids={PAYER})


def _focus(session, period):
    rows = [row for (p, account), services in SEEDED.items() if p == period
            for service, amount in services.items() for row in _daily(period, account, service, amount)]
    ingest.replace_period(session, source="focus", billing_period=period, rows=rows, payer_account_ids="loaded")


LOADERS = {"aws_finops": _aws_finops, "cost_explorer": _cost_explorer, "focus": _focus}
ORDERS = [*itertools.permutations(("aws_finops", "cost_explorer")),
          *itertools.permutations(("aws_finops", "cost_explorer", "focus"))]


def _by_account_month(session):
    query = queries.parse_query({"start": "2026-09-01", "end": "2026-10-31", "granularity": "month",
                                 "group_by": ["account"]})
    return {(r.period, r.keys[0]): r.amount for r in queries.query_costs(session, actor=FINANCE, query=query).rows}


@pytest.mark.parametrize("order", ORDERS, ids="-then-".join)
def test_a_linked_accounts_month_counts_from_one_source_whatever_the_order(session, order):
    cache.configure(None)
    for name in order:
        for period in PERIODS:
            LOADERS[name](session, period)
    session.commit()
    assert _by_account_month(session) == {key: sum(services.values()) for key, services in SEEDED.items()}
    best = "focus" if "focus" in order else "cost_explorer"
    shown = sources.list_account_sources(session, actor=FINANCE)
    assert {(s.billing_period, s.account_id): (s.counted, s.also_held) for s in shown} == {
        key: ((best,), tuple(sorted(set(order) - {best}))) for key in SEEDED}
