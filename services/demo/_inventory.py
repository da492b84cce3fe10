"""The demo organisation's inventory: EC2 instances, volumes, addresses, snapshots, load balancers
and databases, with a month of utilisation for the instances and databases.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from models import Resource
from services.demo.catalogue import (
    ACCOUNTS,
    CENT,
    EC2_TYPES,
    INSTANCE_ROLES,
    PAYER_ACCOUNT_ID,
    RDS_CLASSES,
    SOURCE,
    TEAM_COST_CENTERS,
    UTILISATION_PROFILES,
    VOLUME_PRICES,
    AccountProfile,
)

UTILISATION_DAYS = 30
_HOURS_PER_MONTH = Decimal(730)


@dataclass
class Inventory:
    """The resources of the demo organisation (unsaved) and which of them report utilisation."""

    resources: list[Resource] = field(default_factory=list)
    #: Index into ``resources`` and the utilisation profile of each instance.
    profiles: list[tuple[int, str]] = field(default_factory=list)


def _hex_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-0{rng.getrandbits(64):016x}"


def _resource_tags(rng: random.Random, account: AccountProfile) -> dict[str, str]:
    roll = rng.random()
    if not account.team or roll < 0.15:
        return {}
    tags = {"team": account.team, "environment": account.environment}
    if roll > 0.25:
        tags["cost-center"] = TEAM_COST_CENTERS[account.team]
    return tags


def _pick_profile(rng: random.Random, account: AccountProfile) -> str:
    names = list(UTILISATION_PROFILES)
    weights = [UTILISATION_PROFILES[n][0] * (2.0 if n == "idle" and not account.is_prod else 1.0)
               for n in names]
    return rng.choices(names, weights)[0]


def _add_instances(rng: random.Random, inv: Inventory, account: AccountProfile,
                   today: dt.date) -> list[tuple[str, str]]:
    """Add the account's EC2 instances; return (instance id, region) of the running ones."""
    running: list[tuple[str, str]] = []
    for n in range(max(2, round(account.weight * 0.55))):
        region = account.regions[0] if rng.random() < 0.65 else rng.choice(account.regions)
        size = rng.choice(sorted(EC2_TYPES))
        vcpu, memory, price = EC2_TYPES[size]
        windows = rng.random() < 0.1
        hourly = Decimal(price) * (Decimal("1.5") if windows else 1)
        stopped = rng.random() < 0.1
        instance_id = _hex_id(rng, "i")
        tags = _resource_tags(rng, account)
        role = rng.choice(INSTANCE_ROLES)
        inv.resources.append(Resource(
            usage_account_id=account.account_id, region=region, resource_type="ec2_instance",
            resource_id=instance_id, name=f"{account.team or 'sandbox'}-{role}-{n + 1}",
            size=size, state="stopped" if stopped else "running",
            monthly_cost=Decimal(0) if stopped else (hourly * _HOURS_PER_MONTH).quantize(CENT),
            tags=tags, source=SOURCE,
            attributes={"instance_type": size, "vcpu": vcpu, "memory_gib": memory,
                        "platform": "Windows" if windows else "Linux/UNIX",
                        "availability_zone": f"{region}{rng.choice('abc')}"},
            launched_on=today - dt.timedelta(days=rng.randint(20, 900)),
        ))
        if not stopped:
            inv.profiles.append((len(inv.resources) - 1, _pick_profile(rng, account)))
            running.append((instance_id, region))
        volume_type = rng.choice(("gp2", "gp3", "gp3"))
        _add_volume(rng, inv, account, region, volume_type, rng.choice((20, 50, 100)),
                    instance_id, tags, today)
    return running


def _add_volume(rng: random.Random, inv: Inventory, account: AccountProfile, region: str,
                volume_type: str, size: int, instance_id: str | None, tags: dict[str, str],
                today: dt.date) -> str:
    volume_id = _hex_id(rng, "vol")
    iops = 3000 if volume_type != "io1" else rng.choice((2000, 5000))
    cost = Decimal(size) * VOLUME_PRICES[volume_type]
    if volume_type == "io1":
        cost += Decimal(iops) * Decimal("0.065")
    inv.resources.append(Resource(
        usage_account_id=account.account_id, region=region, resource_type="ebs_volume",
        resource_id=volume_id, name="", size=volume_type,
        state="in-use" if instance_id else "available", monthly_cost=cost.quantize(CENT),
        tags=dict(tags), source=SOURCE,
        attributes={"volume_type": volume_type, "size_gib": size, "iops": iops,
                    "attached_instance_id": instance_id},
        launched_on=today - dt.timedelta(days=rng.randint(10, 900)),
    ))
    return volume_id


def _add_account_extras(rng: random.Random, inv: Inventory, account: AccountProfile,
                        running: list[tuple[str, str]], today: dt.date) -> None:
    region = account.regions[0]
    for _ in range(rng.randint(0, 2) + (1 if not account.is_prod else 0)):
        _add_volume(rng, inv, account, rng.choice(account.regions),
                    rng.choice(("gp2", "gp3", "io1")), rng.choice((100, 200, 500, 1000)),
                    None, _resource_tags(rng, account), today)
    for _ in range(rng.randint(1, 2)):
        associated = bool(running) and rng.random() < 0.7
        instance_id, eip_region = rng.choice(running) if associated else (None, region)
        inv.resources.append(Resource(
            usage_account_id=account.account_id, region=eip_region, resource_type="elastic_ip",
            resource_id=_hex_id(rng, "eipalloc"), name="",
            state="associated" if associated else "unassociated",
            monthly_cost=(Decimal("0.005") * _HOURS_PER_MONTH).quantize(CENT),
            tags=_resource_tags(rng, account), source=SOURCE,
            attributes={"public_ip": f"203.0.113.{rng.randint(1, 254)}",
                        "instance_id": instance_id,
                        "association_id": _hex_id(rng, "eipassoc") if associated else None},
        ))
    for _ in range(rng.randint(2, 4)):
        size = rng.choice((20, 50, 100, 500))
        age = rng.randint(5, 800)
        inv.resources.append(Resource(
            usage_account_id=account.account_id, region=rng.choice(account.regions),
            resource_type="ebs_snapshot", resource_id=_hex_id(rng, "snap"), name="",
            size=f"{size} GiB", state="completed",
            monthly_cost=(Decimal(size) * Decimal("0.05")).quantize(CENT),
            tags=_resource_tags(rng, account), source=SOURCE,
            attributes={"size_gib": size, "volume_id": _hex_id(rng, "vol"),
                        "start_time": (today - dt.timedelta(days=age)).isoformat()},
            launched_on=today - dt.timedelta(days=age),
        ))
    if "elb" in account.services:
        for n in range(rng.randint(1, 3)):
            kind = rng.choice(("application", "application", "network"))
            targets = 0 if rng.random() < 0.25 else rng.randint(2, 12)
            lb_region = rng.choice(account.regions)
            name = f"{account.name.removeprefix('acme-')}-{kind[:3]}-{n + 1}"
            lb_id = f"{name}/{rng.getrandbits(64):016x}"
            arn = (f"arn:aws:elasticloadbalancing:{lb_region}:{account.account_id}:"
                   f"loadbalancer/{'app' if kind == 'application' else 'net'}/{lb_id}")
            inv.resources.append(Resource(
                usage_account_id=account.account_id, region=lb_region,
                resource_type="load_balancer", resource_id=arn, name=name, size=kind,
                state="active",
                monthly_cost=(Decimal("0.0225") * _HOURS_PER_MONTH
                              + Decimal(targets) * Decimal("2.92")).quantize(CENT),
                tags=_resource_tags(rng, account), source=SOURCE,
                attributes={"type": kind, "scheme": "internet-facing", "target_count": targets,
                            "healthy_targets": targets},
                launched_on=today - dt.timedelta(days=rng.randint(30, 900)),
            ))


def _add_databases(rng: random.Random, inv: Inventory, account: AccountProfile,
                   today: dt.date) -> None:
    for n in range(max(1, round(account.weight * 0.15))):
        db_class = rng.choice(sorted(RDS_CLASSES))
        vcpu, memory, price = RDS_CLASSES[db_class]
        multi_az = account.is_prod and rng.random() < 0.6
        storage = rng.choice((100, 200, 500, 1000))
        hourly = Decimal(price) * (2 if multi_az else 1)
        engine = rng.choice(("postgres", "postgres", "mysql", "aurora-postgresql"))
        purpose = rng.choice(("orders", "users", "ledger", "events", "catalog"))
        name = f"{account.team or 'sandbox'}-{purpose}-db-{n + 1}"
        inv.resources.append(Resource(
            usage_account_id=account.account_id, region=account.regions[0],
            resource_type="rds_instance", resource_id=name, name=name, size=db_class,
            state="available",
            monthly_cost=(hourly * _HOURS_PER_MONTH + Decimal(storage) * Decimal("0.115"))
            .quantize(CENT),
            tags=_resource_tags(rng, account), source=SOURCE,
            attributes={"db_instance_class": db_class, "engine": engine, "vcpu": vcpu,
                        "memory_gib": memory, "multi_az": multi_az,
                        "allocated_storage_gib": storage},
            launched_on=today - dt.timedelta(days=rng.randint(60, 1200)),
        ))
        inv.profiles.append((len(inv.resources) - 1, _pick_profile(rng, account)))


def build_inventory(*, today: dt.date, seed: int) -> Inventory:
    """Build the demo organisation's resources (unsaved) and their utilisation profiles."""
    rng = random.Random(f"{seed}:inventory")
    inv = Inventory()
    for account in ACCOUNTS:
        if account.account_id == PAYER_ACCOUNT_ID:
            continue
        running: list[tuple[str, str]] = []
        if "ec2" in account.services:
            running = _add_instances(rng, inv, account, today)
        if "rds" in account.services:
            _add_databases(rng, inv, account, today)
        _add_account_extras(rng, inv, account, running, today)
    return inv


def _utilisation(rng: random.Random, profile: str, *, is_database: bool) -> dict[str, Decimal | None]:
    _, (avg_low, avg_high), (max_low, max_high) = UTILISATION_PROFILES[profile]
    cpu_avg = rng.uniform(avg_low, avg_high)
    cpu_max = max(rng.uniform(max_low, max_high), cpu_avg)
    idle = profile == "idle"
    traffic = 0.5 if idle else {"oversized": 200.0, "normal": 2_000.0, "busy": 9_000.0}[profile]
    connections = iops = None
    if is_database:
        connections = Decimal(0) if idle else Decimal(f"{rng.uniform(5, 300):.2f}")
        iops = Decimal("2.00") if idle else Decimal(f"{rng.uniform(50, 3000):.2f}")
    return {
        "cpu_avg": Decimal(f"{cpu_avg:.2f}"),
        "cpu_max": Decimal(f"{cpu_max:.2f}"),
        "memory_avg": None,
        "network_in_mb": Decimal(f"{traffic * rng.uniform(0.6, 1.4):.3f}"),
        "network_out_mb": Decimal(f"{traffic * rng.uniform(0.3, 1.1):.3f}"),
        "connections_avg": connections,
        "iops_avg": iops,
    }


def utilisation_rows(inv: Inventory, *, today: dt.date, seed: int) -> list[dict[str, object]]:
    """Return a month of daily utilisation rows for every instance and database of the inventory."""
    rows: list[dict[str, object]] = []
    for index, profile in inv.profiles:
        resource = inv.resources[index]
        rng = random.Random(f"{seed}:{resource.resource_id}")
        for back in range(UTILISATION_DAYS - 1, -1, -1):
            day = today - dt.timedelta(days=back)
            values = _utilisation(rng, profile, is_database=resource.resource_type == "rds_instance")
            rows.append({"resource_pk": resource.id, "usage_date": day, **values})
    return rows
