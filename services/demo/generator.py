"""Deterministic demo data: a realistic AWS organisation's costs, budgets and inventory.

Everything derives from one seed and the day the demo is generated for. A *plan* (accounts'
cost lines, growth, step changes, anomalies, commitments, credits) is drawn once from
``random.Random(seed)`` and anchored on the first day of today's month; each month's noise comes
from its own generator seeded with the seed and the month, so months are independent of each
other and of how many months are generated.

Cost semantics follow Cost Explorer's record types:

* ``Usage``: on-demand; amortized equals unblended, list equals unblended.
* ``SavingsPlanCoveredUsage`` (EC2 in production accounts, covered line after line until the
  hourly commitment is used up): unblended and list are the on-demand cost, amortized is the
  Savings Plan rate; a matching ``SavingsPlanNegation`` row cancels the on-demand cost in
  unblended, and a daily ``SavingsPlanRecurringFee`` row (service "Savings Plans for AWS
  Compute usage") carries the commitment in unblended and its unused part in amortized.
* ``DiscountedUsage`` (RDS in production accounts): Reserved Instance hours; unblended 0,
  amortized the effective RI rate, list the on-demand cost. ``RIFee`` rows on the 1st of each
  month carry the recurring charge (amortized 0), a ``Fee`` row the upfront payment of an RI
  bought inside the window.
* ``Tax`` and ``Support`` on the 1st of the month, ``Credit`` rows negative.
* ``net_cost`` is unblended after a 3% enterprise discount (not on tax, support or credits).

The fixed tables (services and their prices, accounts, teams, budgets, instance types) are in
``catalogue``; the plan is drawn by ``_plan`` and the inventory of resources built by ``_inventory``.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from sqlalchemy import distinct, func, insert, select
from sqlalchemy.orm import Session

from models import AwsAccount, Budget, CostFact, ImportBatch, Resource, ResourceUtilisation
from services.costs.ingest import FactRow, replace_period
from services.demo._inventory import build_inventory, utilisation_rows
from services.demo._plan import Line, Plan, Reservation, draw_plan, tags_for
from services.demo.catalogue import (
    ACCOUNTS,
    ACCOUNTS_BY_NAME,
    BUDGETS,
    CATALOGUE,
    CENT,
    EDP_DISCOUNT,
    GLOBAL_REGION,
    PAYER_ACCOUNT_ID,
    PAYER_NAME,
    RI_DISCOUNT,
    SOURCE,
    SP_DISCOUNT,
    SP_FEE_SERVICE,
    SUPPORT_SERVICE,
    TAX_RATE,
    TAX_SERVICE,
    AccountProfile,
    UsageSpec,
)
from services.months import add_months, month_end

logger = logging.getLogger(__name__)

DEFAULT_SEED = 20241101
DEFAULT_MONTHS = 14
COST_QUANTUM = Decimal("1E-10")
QUANTITY_QUANTUM = Decimal("1E-6")


@dataclass(frozen=True)
class DemoSummary:
    """What the demo organisation holds once loaded."""

    accounts: int
    services: int
    regions: int
    days: int
    fact_rows: int
    resources: int
    budgets: int
    first_day: dt.date
    last_day: dt.date
    already_loaded: bool


def demo_anomalies(*, today: dt.date, seed: int = DEFAULT_SEED) -> list[tuple[dt.date, str, str]]:
    """Return every (day, usage account id, service) the demo makes spike, oldest first.

    Spikes fall 4 to 330 days before ``today``, one of them within the last 60 days; with a
    short ``months`` window the older ones precede the data.
    """
    plan = draw_plan(today=today, seed=seed)
    days = [
        (spike.start + dt.timedelta(days=offset), spike.account_id,
         CATALOGUE[spike.service_key].name)
        for spike in plan.spikes
        for offset in range(spike.days)
    ]
    return sorted(days)


# -- daily rows -----------------------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def _net(unblended: Decimal) -> Decimal:
    return _money(unblended * (1 - EDP_DISCOUNT))


def _quantity(cost: float, price: Decimal) -> Decimal:
    quantum = Decimal(1) if price < Decimal("0.0001") else QUANTITY_QUANTUM
    return (Decimal(f"{cost:.6f}") / price).quantize(quantum, rounding=ROUND_HALF_UP)


def _weekly(account: AccountProfile, usage: UsageSpec, day: dt.date) -> float:
    if not usage.seasonal or day.weekday() < 5:
        return 1.0
    if account.is_prod:
        return 0.92
    return 0.45 if day.weekday() == 5 else 0.4


def _fact(line: Line, day: dt.date, charge: str, *, unblended: Decimal, amortized: Decimal,
          list_cost: Decimal, net: Decimal, quantity: Decimal | None,
          usage_type: str | None = None) -> FactRow:
    return FactRow(
        usage_date=day,
        usage_account_id=line.account.account_id,
        payer_account_id=PAYER_ACCOUNT_ID,
        service=line.service.name,
        service_category=line.service.category,
        region=line.region,
        usage_type=line.usage_type if usage_type is None else usage_type,
        charge_category=charge,
        tags=dict(line.tags),
        unblended_cost=unblended,
        amortized_cost=amortized,
        net_cost=net,
        list_cost=list_cost,
        usage_quantity=quantity,
        usage_unit=line.usage.unit if quantity is not None else None,
    )


def _usage_fact(line: Line, day: dt.date, quantity: Decimal) -> FactRow:
    cost = _money(quantity * line.usage.price)
    return _fact(line, day, "Usage", unblended=cost, amortized=cost, list_cost=cost,
                 net=_net(cost), quantity=quantity)


def _savings_plan_facts(plan: Plan, account_id: str, day: dt.date,
                        usage: list[tuple[Line, Decimal]]) -> list[FactRow]:
    """Cover SP-eligible usage until the commitment runs out; add the daily fee.

    Like AWS, the plan applies to one usage after another, so the first lines are covered,
    one is partly covered and the rest stay on demand.
    """
    hourly = sum((h for start, h in plan.savings_plans.get(account_id, []) if day >= start),
                 Decimal(0))
    if not usage or hourly == 0:
        return [_usage_fact(line, day, qty) for line, qty in usage]
    commitment = hourly * 24
    rows: list[FactRow] = []
    used = Decimal(0)
    for line, qty in usage:
        left = commitment - used
        rate = line.usage.price * (1 - SP_DISCOUNT)
        covered_qty = qty if qty * rate <= left else (left / rate).quantize(
            QUANTITY_QUANTUM, rounding=ROUND_DOWN)
        if covered_qty <= 0:
            rows.append(_usage_fact(line, day, qty))
            continue
        covered = _money(covered_qty * line.usage.price)
        effective = _money(covered * (1 - SP_DISCOUNT))
        used += effective
        if qty > covered_qty:
            rows.append(_usage_fact(line, day, qty - covered_qty))
        rows.append(_fact(line, day, "SavingsPlanCoveredUsage", unblended=covered,
                          amortized=effective, list_cost=covered, net=_net(covered),
                          quantity=covered_qty))
        rows.append(_fact(line, day, "SavingsPlanNegation", unblended=-covered,
                          amortized=Decimal(0), list_cost=Decimal(0), net=-_net(covered),
                          quantity=None))
    account = usage[0][0].account
    rows.append(FactRow(
        usage_date=day, usage_account_id=account_id, payer_account_id=PAYER_ACCOUNT_ID,
        service=SP_FEE_SERVICE, service_category="Compute", region=GLOBAL_REGION,
        usage_type="ComputeSP:1yrNoUpfront", charge_category="SavingsPlanRecurringFee",
        tags=tags_for(account, account.team, "full"), unblended_cost=_money(commitment),
        amortized_cost=max(_money(commitment - used), Decimal(0)), net_cost=_net(commitment),
        list_cost=_money(commitment), usage_quantity=Decimal(24), usage_unit="Hrs",
    ))
    return rows


def _reservation_facts(day: dt.date, line: Line, quantity: Decimal,
                       reservations: list[Reservation]) -> list[FactRow]:
    """Split RI-eligible hours into discounted and on-demand rows, with fees on the 1st."""
    active = [r for r in reservations if day >= r.starts_on]
    if not active:
        return [_usage_fact(line, day, quantity)]
    reserved = Decimal(sum(r.hours_per_day for r in active))
    covered_qty = min(quantity, reserved)
    rows = []
    if quantity > covered_qty:
        rows.append(_usage_fact(line, day, quantity - covered_qty))
    on_demand = _money(covered_qty * line.usage.price)
    rows.append(_fact(line, day, "DiscountedUsage", unblended=Decimal(0),
                      amortized=_money(on_demand * (1 - RI_DISCOUNT)), list_cost=on_demand,
                      net=Decimal(0), quantity=covered_qty))
    fee_type = line.usage_type.replace(line.usage.suffix,
                                       "HeavyUsage:" + line.usage.suffix.split(":", 1)[1])
    rate = line.usage.price * (1 - RI_DISCOUNT)
    last_day = month_end(day).day
    for r in active:
        if day == r.starts_on:
            upfront = _money(r.hours_per_day * r.term_days * rate * r.upfront_share)
            if upfront > 0:
                rows.append(_fact(line, day, "Fee", unblended=upfront, amortized=Decimal(0),
                                  list_cost=upfront, net=_net(upfront), quantity=None,
                                  usage_type=fee_type))
        if day.day == 1 or day == r.starts_on:
            hours = Decimal(r.hours_per_day * (last_day - day.day + 1))
            fee = _money(hours * rate * (1 - r.upfront_share))
            rows.append(_fact(line, day, "RIFee", unblended=fee, amortized=Decimal(0),
                              list_cost=fee, net=_net(fee), quantity=hours,
                              usage_type=fee_type))
    return rows


def _monthly_charges(plan: Plan, period: dt.date) -> list[FactRow]:
    """Return the tax of every account and the payer's support fee, dated the 1st."""
    middle = period.replace(day=15)
    days = month_end(period).day
    by_account: dict[str, float] = defaultdict(float)
    open_on_first: set[str] = set()
    for line in plan.lines:
        by_account[line.account.account_id] += plan.expected(line, middle) * days
        if line.starts_on is None or line.starts_on <= period:
            open_on_first.add(line.account.account_id)
    rows = []
    for account in ACCOUNTS:
        # An account opened during the month is taxed from the next month on.
        if by_account[account.account_id] <= 0 or account.account_id not in open_on_first:
            continue
        tax = (Decimal(f"{by_account[account.account_id]:.2f}") * TAX_RATE).quantize(CENT)
        rows.append(FactRow(
            usage_date=period, usage_account_id=account.account_id,
            payer_account_id=PAYER_ACCOUNT_ID, service=TAX_SERVICE, service_category="Tax",
            region=GLOBAL_REGION, usage_type="", charge_category="Tax", tags={},
            unblended_cost=tax, amortized_cost=tax, net_cost=tax, list_cost=tax,
        ))
    support = _business_support(Decimal(f"{sum(by_account.values()) * 0.9:.2f}"))
    rows.append(FactRow(
        usage_date=period, usage_account_id=PAYER_ACCOUNT_ID, payer_account_id=PAYER_ACCOUNT_ID,
        service=SUPPORT_SERVICE, service_category="Support", region=GLOBAL_REGION,
        usage_type="Support-Business", charge_category="Support", tags={},
        unblended_cost=support, amortized_cost=support, net_cost=support, list_cost=support,
    ))
    return rows


def _business_support(monthly_spend: Decimal) -> Decimal:
    """Return AWS Business Support's tiered fee for a month's spend."""
    tiers = ((Decimal(10_000), Decimal("0.10")), (Decimal(80_000), Decimal("0.07")),
             (Decimal(250_000), Decimal("0.05")), (None, Decimal("0.03")))
    fee, floor = Decimal(0), Decimal(0)
    for ceiling, rate in tiers:
        top = monthly_spend if ceiling is None else min(monthly_spend, ceiling)
        if top > floor:
            fee += (top - floor) * rate
        if ceiling is None or monthly_spend <= ceiling:
            break
        floor = ceiling
    return max(fee, Decimal(100)).quantize(CENT)


def _day_rows(plan: Plan, rng: random.Random, day: dt.date,
              reservations: dict[int, list[Reservation]]) -> list[FactRow]:
    rows: list[FactRow] = []
    sp_usage: dict[str, list[tuple[Line, Decimal]]] = defaultdict(list)
    ec2_cost: dict[str, float] = defaultdict(float)
    growth = {account_id: plan.growth_factor(account_id, day) for account_id in plan.growth}
    spiking = {(s.account_id, s.service_key): s.factor for s in plan.spikes if s.covers(day)}
    for index, line in enumerate(plan.lines):
        noise = max(0.7, min(1.3, rng.gauss(1.0, line.usage.noise)))
        expected = plan.expected(line, day, growth)
        if expected <= 0:
            continue
        # A spike replaces the weekly pattern, so it stands out even on a quiet weekend.
        weekly = spiking.get((line.account.account_id, line.key)) or _weekly(
            line.account, line.usage, day)
        quantity = _quantity(expected * weekly * noise, line.usage.price)
        if quantity <= 0:
            continue
        if line.key == "ec2":
            ec2_cost[line.account.account_id] += float(quantity * line.usage.price)
        if line.usage.commitment == "sp" and line.account.is_prod:
            sp_usage[line.account.account_id].append((line, quantity))
        elif index in reservations:
            rows.extend(_reservation_facts(day, line, quantity, reservations[index]))
        else:
            rows.append(_usage_fact(line, day, quantity))
    for account_id, usage in sp_usage.items():
        rows.extend(_savings_plan_facts(plan, account_id, day, usage))
    rows.extend(_credit_facts(plan, day, ec2_cost))
    if day.day == 1:
        rows.extend(_monthly_charges(plan, day))
    return rows


def _credit_facts(plan: Plan, day: dt.date, ec2_cost: dict[str, float]) -> list[FactRow]:
    rows = []
    for account_id, first, last, share in plan.credits:
        if not first <= day <= last or ec2_cost.get(account_id, 0.0) <= 0:
            continue
        account = next(a for a in ACCOUNTS if a.account_id == account_id)
        credit = -_money(Decimal(f"{ec2_cost[account_id] * share:.6f}"))
        rows.append(FactRow(
            usage_date=day, usage_account_id=account_id, payer_account_id=PAYER_ACCOUNT_ID,
            service=CATALOGUE["ec2"].name, service_category=CATALOGUE["ec2"].category,
            region=account.regions[0], usage_type="", charge_category="Credit", tags={},
            unblended_cost=credit, amortized_cost=credit, net_cost=credit,
            list_cost=Decimal(0),
        ))
    return rows


def generate_facts(*, today: dt.date, seed: int = DEFAULT_SEED, months: int = DEFAULT_MONTHS
                   ) -> Iterator[tuple[dt.date, list[FactRow]]]:
    """Yield each billing period of the demo and its daily rows, oldest month first."""
    if months < 1:
        raise ValueError("months must be at least 1")
    plan = draw_plan(today=today, seed=seed)
    reservations: dict[int, list[Reservation]] = defaultdict(list)
    for reservation in plan.reservations:
        reservations[reservation.line].append(reservation)
    first = add_months(plan.anchor, -(months - 1))
    for offset in range(months):
        period = add_months(first, offset)
        rng = random.Random(f"{seed}:{period.isoformat()}")
        rows: list[FactRow] = []
        day = period
        while day <= min(month_end(period), today):
            rows.extend(_day_rows(plan, rng, day, reservations))
            day += dt.timedelta(days=1)
        # Rows without a quantity (negations, fees, tax) last: a bulk insert batches rows that
        # leave the same columns empty, so mixing them would split it into tiny statements.
        rows.sort(key=lambda row: row.usage_quantity is None)
        yield period, rows


# -- budgets ------------------------------------------------------------------------------


def _budget_key(kind: str, value: str) -> str:
    return f"{kind}:{value}"


def _add_spend(totals: dict[str, Decimal], rows: list[FactRow]) -> None:
    for row in rows:
        totals[_budget_key("org", "")] += row.unblended_cost
        totals[_budget_key("team", row.tags.get("team", ""))] += row.unblended_cost
        totals[_budget_key("account", row.usage_account_id)] += row.unblended_cost


def _budgets(totals: dict[str, Decimal], starts_on: dt.date) -> list[Budget]:
    budgets = []
    for name, kind, value, factor in BUDGETS:
        scope: dict[str, list[str]] = {}
        key_value = value
        if kind == "team":
            scope = {"team": [value]}
        elif kind == "account":
            key_value = ACCOUNTS_BY_NAME[value].account_id
            scope = {"usage_account_id": [key_value]}
        actual = totals.get(_budget_key(kind, key_value), Decimal(0))
        amount = max((actual * Decimal(str(factor)) / 100).quantize(Decimal(1)) * 100,
                     Decimal(100))
        budgets.append(Budget(name=name, period="monthly", amount=amount, currency="USD",
                              scope=scope, alert_thresholds=[50, 80, 100], starts_on=starts_on,
                              source=SOURCE))
    return budgets
# -- loading --------------------------------------------------------------------------------


def is_demo_loaded(session: Session) -> bool:
    """Return whether demo data has been imported."""
    found = session.scalar(select(ImportBatch.id).where(ImportBatch.source == SOURCE).limit(1))
    return found is not None


def _add_accounts(session: Session) -> None:
    for account in ACCOUNTS:
        if session.get(AwsAccount, account.account_id) is not None:
            continue
        is_payer = account.account_id == PAYER_ACCOUNT_ID
        session.add(AwsAccount(
            account_id=account.account_id, name=PAYER_NAME if is_payer else account.name,
            payer_account_id=None if is_payer else PAYER_ACCOUNT_ID, provider="AWS",
            email=account.email, status="ACTIVE",
        ))


def _summarise(session: Session, *, today: dt.date, already_loaded: bool) -> DemoSummary:
    is_demo = CostFact.source == SOURCE
    facts = session.execute(
        select(
            func.count(),
            func.count(distinct(CostFact.usage_account_id)),
            func.count(distinct(CostFact.service)),
            func.count(distinct(CostFact.usage_date)),
            func.min(CostFact.usage_date),
            func.max(CostFact.usage_date),
        ).where(is_demo)
    ).one()
    regions = session.scalar(
        select(func.count(distinct(CostFact.region))).where(is_demo,
                                                            CostFact.region != GLOBAL_REGION)
    )
    resources = session.scalar(select(func.count()).select_from(Resource)
                               .where(Resource.source == SOURCE))
    budgets = session.scalar(select(func.count()).select_from(Budget)
                             .where(Budget.source == SOURCE))
    return DemoSummary(
        accounts=facts[1], services=facts[2], regions=regions or 0, days=facts[3],
        fact_rows=facts[0], resources=resources or 0, budgets=budgets or 0,
        first_day=facts[4] or today, last_day=facts[5] or today,
        already_loaded=already_loaded,
    )


def load_demo(
    session: Session,
    *,
    today: dt.date,
    seed: int = DEFAULT_SEED,
    months: int = DEFAULT_MONTHS,
    on_progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Load the demo organisation in the caller's transaction, once; report after each month."""
    if months < 1:
        raise ValueError("months must be at least 1")
    if is_demo_loaded(session):
        logger.info("demo data already loaded; nothing written")
        return _summarise(session, today=today, already_loaded=True)
    _add_accounts(session)
    # Budgets are sized on the last complete month, the one a finance team would look at.
    reference = add_months(today.replace(day=1), -1 if months > 1 else 0)
    first_period = add_months(today.replace(day=1), -(months - 1))
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for done, (period, rows) in enumerate(
        generate_facts(today=today, seed=seed, months=months), start=1
    ):
        if period == reference:
            _add_spend(spend, rows)
        replace_period(session, source=SOURCE, billing_period=period, rows=rows,
                       file_name=f"demo-seed-{seed}")
        if on_progress is not None:
            on_progress(done, months)
    existing = set(session.scalars(select(Budget.name)))
    session.add_all(b for b in _budgets(spend, first_period) if b.name not in existing)
    inventory = build_inventory(today=today, seed=seed)
    session.add_all(inventory.resources)
    session.flush()
    utilisation = utilisation_rows(inventory, today=today, seed=seed)
    session.execute(insert(ResourceUtilisation), utilisation)
    session.flush()
    summary = _summarise(session, today=today, already_loaded=False)
    logger.info("loaded demo data: %s fact rows over %s days, %s resources, %s budgets",
                summary.fact_rows, summary.days, summary.resources, summary.budgets)
    return summary
