"""The demo organisation's plan: its cost lines, growth, step changes, spikes, commitments and
credits, drawn once from the seed and anchored on the first day of today's month.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from services.demo.catalogue import (
    ACCOUNTS,
    ACCOUNTS_BY_NAME,
    ANOMALY_CANDIDATES,
    ANOMALY_WINDOWS,
    CATALOGUE,
    GLOBAL_REGION,
    SP_DISCOUNT,
    TEAM_COST_CENTERS,
    AccountProfile,
    ServiceSpec,
    UsageSpec,
)

#: On-demand spend of the whole organisation per day at the anchor, before growth and noise.
ORG_DAILY_COST = 9_000.0
#: Share of cost lines (by cost) nobody tagged; tax and support come on top.
UNTAGGED_LINE_SHARE = 0.09
PARTIAL_TAG_SHARE = 0.12


@dataclass
class Line:
    """A stable cost line: one account, service, usage type and region, and its tags."""

    account: AccountProfile
    key: str
    service: ServiceSpec
    usage: UsageSpec
    region: str
    base: float
    team: str
    tags: dict[str, str] = field(default_factory=dict)
    starts_on: dt.date | None = None
    steps: list[tuple[dt.date, float]] = field(default_factory=list)
    usage_type: str = ""

    def __post_init__(self) -> None:
        self.usage_type = self.usage.usage_type(self.region)


@dataclass(frozen=True)
class Spike:
    """A few days on which one account's service costs several times its usual."""

    start: dt.date
    days: int
    account_id: str
    service_key: str
    factor: float

    def covers(self, day: dt.date) -> bool:
        """Return whether ``day`` is one of the spike's days."""
        return 0 <= (day - self.start).days < self.days


@dataclass(frozen=True)
class Reservation:
    """Reserved Instances for one line: hours a day, from a date, and the upfront part."""

    line: int
    starts_on: dt.date
    hours_per_day: int
    upfront_share: Decimal
    term_days: int


@dataclass
class Plan:
    """The organisation's stable structure, from which every day's rows are drawn."""

    anchor: dt.date
    lines: list[Line]
    growth: dict[str, float]
    spikes: list[Spike]
    #: Compute Savings Plans per account: (start, hourly commitment).
    savings_plans: dict[str, list[tuple[dt.date, Decimal]]]
    reservations: list[Reservation]
    #: Promotional credits: account, first and last day, share of its EC2 cost covered.
    credits: list[tuple[str, dt.date, dt.date, float]]

    def growth_factor(self, account_id: str, day: dt.date) -> float:
        """Return the account's trend multiplier on ``day`` (1 at the anchor)."""
        months = (day - self.anchor).days / 30.4375
        return float((1.0 + self.growth[account_id]) ** months)

    def expected(self, line: Line, day: dt.date, growth: dict[str, float] | None = None
                 ) -> float:
        """Return the line's on-demand cost on ``day`` without weekly pattern or noise."""
        if line.starts_on is not None and day < line.starts_on:
            return 0.0
        account_id = line.account.account_id
        factor = growth[account_id] if growth else self.growth_factor(account_id, day)
        for when, step in line.steps:
            if day >= when:
                factor *= step
        return line.base * factor


def tags_for(account: AccountProfile, team: str, mode: str) -> dict[str, str]:
    """Return a line's tags: none, team and environment (partial), or with the cost centre (full)."""
    if mode == "none" or not team:
        return {}
    tags = {"team": team, "environment": account.environment}
    if mode == "full":
        tags["cost-center"] = TEAM_COST_CENTERS[team]
    return tags


def _line_keys(rng: random.Random, account: AccountProfile, spec: ServiceSpec
               ) -> list[tuple[UsageSpec, str]]:
    """Pick the (usage type, region) pairs an account runs a service with."""
    if spec.is_global:
        count = 2 if spec.weight >= 2.5 else 1
        return [(u, GLOBAL_REGION) for u in rng.sample(spec.usage, count)]
    primary, others = account.regions[0], account.regions[1:]
    if spec.weight >= 7.0:
        # The big services: in production the main usage type and maybe another at home, the
        # main one in some other regions, compute in every region the account uses; elsewhere
        # just the main usage type at home.
        if not account.is_prod:
            return [(spec.usage[0], primary)]
        is_compute = spec.weight >= 30.0
        extra = rng.sample(spec.usage[1:], 1 if is_compute and account.weight >= 10.0
                           else rng.randint(0, 1))
        pairs = [(u, primary) for u in (spec.usage[0], *extra)]
        return pairs + [(spec.usage[0], region) for region in others
                        if is_compute or rng.random() < 0.2]
    usage = rng.choice(spec.usage)
    if others and rng.random() < 0.3:
        return [(usage, rng.choice(others))]
    return [(usage, primary)]


def _account_lines(rng: random.Random, account: AccountProfile, daily: float) -> list[Line]:
    weights = {k: CATALOGUE[k].weight * account.focus.get(k, 1.0) for k in account.services}
    total_weight = sum(weights.values())
    lines: list[Line] = []
    for key in account.services:
        spec = CATALOGUE[key]
        service_cost = daily * weights[key] / total_weight
        # The primary region and the first usage type carry most of a service's cost.
        shares = [(rng.uniform(0.5, 1.5) * (2.0 if region == account.regions[0] else 1.0), u,
                   region) for u, region in _line_keys(rng, account, spec)]
        share_total = sum(s for s, _, _ in shares)
        for share, usage, region in shares:
            team = account.team
            if account.shared and rng.random() < 0.4:
                team = rng.choice(sorted(TEAM_COST_CENTERS))
            lines.append(Line(account, key, spec, usage, region,
                              service_cost * share / share_total, team))
    return lines


def _assign_tags(rng: random.Random, lines: list[Line]) -> None:
    """Leave about UNTAGGED_LINE_SHARE of the cost untagged and some lines partly tagged."""
    total = sum(line.base for line in lines)
    # Sandbox and audit services are the usual untagged spend; then a random pick of the rest.
    untaggable = {"cloudtrail", "config", "guardduty", "kms"}
    order = sorted(
        range(len(lines)),
        key=lambda i: (0 if not lines[i].account.team else 1 if lines[i].key in untaggable else 2,
                       rng.random()),
    )
    untagged = 0.0
    modes = ["full"] * len(lines)
    for i in order:
        if untagged + lines[i].base > UNTAGGED_LINE_SHARE * total and lines[i].account.team:
            continue
        modes[i] = "none"
        untagged += lines[i].base
    for i, line in enumerate(lines):
        if modes[i] == "full" and rng.random() < PARTIAL_TAG_SHARE:
            modes[i] = "partial"
        line.tags = tags_for(line.account, line.team, modes[i])


def _pick_spikes(rng: random.Random, today: dt.date) -> list[Spike]:
    pairs = rng.sample(ANOMALY_CANDIDATES, len(ANOMALY_WINDOWS))
    spikes = []
    for (account_name, key), (low, high) in zip(pairs, ANOMALY_WINDOWS, strict=True):
        days = rng.randint(1, 3)
        start = today - dt.timedelta(days=rng.randint(low, high))
        spikes.append(Spike(start, days, ACCOUNTS_BY_NAME[account_name].account_id, key,
                            rng.uniform(4.5, 8.0)))
    return spikes


def _pick_steps(rng: random.Random, plan: Plan) -> None:
    # Keep steps off the lines a spike may hit, so a spike stands out against its own history.
    spike_prone = set(ANOMALY_CANDIDATES)
    candidates = [
        line for line in plan.lines
        if not line.usage.commitment and line.account.opened_days_ago is None
        and (line.account.name, line.key) not in spike_prone and line.base > 60.0
    ]
    # One line per account and service, so two steps never stack on one service.
    candidates = list({(line.account.name, line.key): line for line in candidates}.values())
    factors = (rng.uniform(1.4, 1.9), rng.uniform(0.55, 0.75), rng.uniform(1.3, 1.6),
               rng.uniform(0.6, 0.8))
    for line, factor in zip(rng.sample(candidates, len(factors)), factors, strict=True):
        line.steps.append((plan.anchor - dt.timedelta(days=rng.randint(40, 330)), factor))


def _sp_cost(plan: Plan, account_id: str, day: dt.date) -> float:
    return sum(plan.expected(line, day) for line in plan.lines
               if line.account.account_id == account_id and line.usage.commitment == "sp")


#: What a Savings Plan dollar buys against on-demand, for sizing commitments.
_SP_RATE = float(1 - SP_DISCOUNT)


def _pick_commitments(rng: random.Random, plan: Plan) -> None:
    """Size Savings Plans and Reserved Instances on usage before (and inside) the window."""
    before_window = dt.date(1970, 1, 1)
    reference = plan.anchor - dt.timedelta(days=400)
    prod = [a for a in ACCOUNTS if a.is_prod and "ec2" in a.services]
    for account in prod:
        start, sized_on = before_window, reference
        if account.opened_days_ago is not None:
            start = plan.anchor - dt.timedelta(days=account.opened_days_ago - 45)
            sized_on = start
        hourly = 0.55 * _sp_cost(plan, account.account_id, sized_on) * _SP_RATE / 24
        plan.savings_plans[account.account_id] = [(start, Decimal(f"{hourly:.3f}"))]
    for account in rng.sample([a for a in prod if a.opened_days_ago is None], 2):
        bought = plan.anchor - dt.timedelta(days=rng.randint(90, 240))
        hourly = 0.2 * _sp_cost(plan, account.account_id, bought) * _SP_RATE / 24
        plan.savings_plans[account.account_id].append((bought, Decimal(f"{hourly:.3f}")))
    bought_in_window = ACCOUNTS_BY_NAME["acme-data-platform"].account_id
    purchase_day = plan.anchor - dt.timedelta(days=rng.randint(100, 150))
    for index, line in enumerate(plan.lines):
        if line.usage.commitment != "ri" or not line.account.is_prod:
            continue
        if line.account.opened_days_ago is not None:
            continue
        in_window = line.account.account_id == bought_in_window
        sized_on = purchase_day if in_window else reference
        instances = int(0.75 * plan.expected(line, sized_on) / float(line.usage.price) / 24)
        if instances < 1:
            continue
        plan.reservations.append(Reservation(
            index, purchase_day if in_window else before_window, instances * 24,
            Decimal("0.5") if in_window else Decimal(0), 365 if in_window else 3 * 365))


def draw_plan(*, today: dt.date, seed: int) -> Plan:
    """Draw the organisation's stable structure from the seed, anchored on today's month."""
    rng = random.Random(seed)
    anchor = today.replace(day=1)
    total_weight = sum(a.weight for a in ACCOUNTS)
    lines: list[Line] = []
    growth: dict[str, float] = {}
    for account in ACCOUNTS:
        growth[account.account_id] = (rng.uniform(0.0, 0.005) if account.environment == "sandbox"
                                      else rng.uniform(0.01, 0.03))
        account_lines = _account_lines(rng, account, ORG_DAILY_COST * account.weight / total_weight)
        if account.opened_days_ago is not None:
            opened = anchor - dt.timedelta(days=account.opened_days_ago)
            for line in account_lines:
                line.starts_on = opened
        lines.extend(account_lines)
    _assign_tags(rng, lines)
    plan = Plan(anchor, lines, growth, _pick_spikes(rng, today), {}, [], [])
    _pick_steps(rng, plan)
    _pick_commitments(rng, plan)
    sandbox = ACCOUNTS_BY_NAME["acme-sandbox"].account_id
    plan.credits.append((sandbox, anchor - dt.timedelta(days=rng.randint(280, 320)),
                         anchor - dt.timedelta(days=rng.randint(100, 140)), 0.8))
    return plan
