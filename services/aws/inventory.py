"""Inventory and utilisation: EC2, EBS, Elastic IPs, ELBv2 and RDS per region, CPU from CloudWatch.

inventory
    per region, concurrently: EC2 instances, volumes, snapshots (owned by the account), Elastic
    IPs, ELBv2 load balancers, RDS instances -> ``Resource``, upserted by account + region +
    resource id. A resource that vanished is kept with state ``deleted`` (its utilisation history
    stays; deleting the row would cascade to it), but only when its region and type were listed
    without error. ``monthly_cost`` is 0 on new rows and never overwritten: the collector does not
    price resources.
utilisation
    CloudWatch ``GetMetricData``: daily average and maximum CPUUtilization of the last 14 whole
    days, for the account's known EC2 and RDS instances -> ``ResourceUtilisation``, upserted per
    resource and day.

``scan_region`` and ``read_cpu`` run in worker threads: AWS only, no database. The other
functions run in the calling thread.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Resource, ResourceUtilisation
from services.aws._plumbing import as_date, as_percent, call, jsonable, read_pages, tag_map

logger = logging.getLogger(__name__)

UTILISATION_DAYS = 14
CPU_TARGETS = {"ec2_instance": ("AWS/EC2", "InstanceId"), "rds_instance": ("AWS/RDS", "DBInstanceIdentifier")}
GONE_STATES = ("deleted", "terminated")
_METRIC_QUERIES_PER_REQUEST = 500


@dataclass(frozen=True)
class _Found:
    region: str
    resource_type: str
    resource_id: str
    name: str
    size: str
    state: str
    tags: dict[str, str]
    attributes: dict[str, object]
    launched_on: dt.date | None


@dataclass
class RegionScan:
    """What one region's listing found, the resource types listed in full, and the failures."""

    region: str
    found: list[_Found] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    errors: dict[str, Exception] = field(default_factory=dict)


def _instances(ec2: Any, region: str) -> list[_Found]:
    found = []
    for page in read_pages(ec2, "describe_instances", "NextToken"):
        for reservation in page.get("Reservations", []):
            for i in reservation.get("Instances", []):
                tags = tag_map(i.get("Tags"))
                found.append(_Found(
                    region, "ec2_instance", i["InstanceId"], tags.get("Name", ""), i.get("InstanceType", ""),
                    i.get("State", {}).get("Name", ""), tags,
                    {"instance_type": i.get("InstanceType"), "platform": i.get("PlatformDetails") or "Linux/UNIX",
                     "availability_zone": i.get("Placement", {}).get("AvailabilityZone"),
                     "lifecycle": i.get("InstanceLifecycle", "on-demand"), "vpc_id": i.get("VpcId")},
                    as_date(i["LaunchTime"]) if i.get("LaunchTime") else None))
    return found


def _volumes(ec2: Any, region: str) -> list[_Found]:
    found = []
    for page in read_pages(ec2, "describe_volumes", "NextToken"):
        for v in page.get("Volumes", []):
            tags = tag_map(v.get("Tags"))
            attached = next((a.get("InstanceId") for a in v.get("Attachments", []) if a.get("InstanceId")), None)
            found.append(_Found(
                region, "ebs_volume", v["VolumeId"], tags.get("Name", ""), v.get("VolumeType", ""), v.get("State", ""),
                tags, {"volume_type": v.get("VolumeType"), "size_gib": v.get("Size"), "iops": v.get("Iops"),
                       "attached_instance_id": attached, "availability_zone": v.get("AvailabilityZone"),
                       "encrypted": v.get("Encrypted")},
                as_date(v["CreateTime"]) if v.get("CreateTime") else None))
    return found


def _snapshots(ec2: Any, region: str, account_id: str) -> list[_Found]:
    found = []
    # The owner-id filter repeats "self" for moto, which answers OwnerIds=["self"] with every
    # owner's snapshots (those behind its public AMIs too); AWS gives the same answer either way.
    for page in read_pages(ec2, "describe_snapshots", "NextToken", OwnerIds=["self"],
                           Filters=[{"Name": "owner-id", "Values": [account_id]}]):
        for s in page.get("Snapshots", []):
            if s.get("OwnerId") not in (None, account_id):
                continue
            tags = tag_map(s.get("Tags"))
            found.append(_Found(
                region, "ebs_snapshot", s["SnapshotId"], tags.get("Name", ""), f"{s.get('VolumeSize', 0)} GiB",
                s.get("State", ""), tags,
                {"size_gib": s.get("VolumeSize"), "volume_id": s.get("VolumeId"),
                 "start_time": str(s.get("StartTime", "")), "description": s.get("Description", ""),
                 "storage_tier": s.get("StorageTier")},
                as_date(s["StartTime"]) if s.get("StartTime") else None))
    return found


def _addresses(ec2: Any, region: str) -> list[_Found]:
    found = []
    for a in call(ec2, "describe_addresses").get("Addresses", []):  # no paginator: one answer
        tags = tag_map(a.get("Tags"))
        instance_id = a.get("InstanceId") or None
        associated = bool(a.get("AssociationId") or instance_id or a.get("NetworkInterfaceId"))
        found.append(_Found(
            region, "elastic_ip", a.get("AllocationId") or a["PublicIp"], tags.get("Name", ""), "",
            "associated" if associated else "unassociated", tags,
            {"public_ip": a.get("PublicIp"), "instance_id": instance_id,
             "association_id": a.get("AssociationId") or None, "domain": a.get("Domain")},
            None))
    return found


def _load_balancers(elbv2: Any, region: str) -> list[_Found]:
    balancers = [lb for page in read_pages(elbv2, "describe_load_balancers", "Marker", page_field="NextMarker")
                 for lb in page.get("LoadBalancers", [])]
    tags: dict[str, dict[str, str]] = {}
    arns = [lb["LoadBalancerArn"] for lb in balancers]
    for start in range(0, len(arns), 20):  # DescribeTags takes 20 ARNs at most
        described = call(elbv2, "describe_tags", ResourceArns=arns[start:start + 20])
        for description in described.get("TagDescriptions", []):
            tags[description["ResourceArn"]] = tag_map(description.get("Tags"))
    return [_Found(
        region, "load_balancer", lb["LoadBalancerArn"], lb.get("LoadBalancerName", ""), lb.get("Type", ""),
        lb.get("State", {}).get("Code", ""), tags.get(lb["LoadBalancerArn"], {}),
        {"type": lb.get("Type"), "scheme": lb.get("Scheme"), "dns_name": lb.get("DNSName"), "vpc_id": lb.get("VpcId")},
        as_date(lb["CreatedTime"]) if lb.get("CreatedTime") else None) for lb in balancers]


def _databases(rds: Any, region: str) -> list[_Found]:
    found = []
    for page in read_pages(rds, "describe_db_instances", "Marker"):
        for d in page.get("DBInstances", []):
            found.append(_Found(
                region, "rds_instance", d["DBInstanceIdentifier"], d["DBInstanceIdentifier"],
                d.get("DBInstanceClass", ""), d.get("DBInstanceStatus", ""), tag_map(d.get("TagList")),
                {"db_instance_class": d.get("DBInstanceClass"), "engine": d.get("Engine"),
                 "engine_version": d.get("EngineVersion"), "multi_az": d.get("MultiAZ"),
                 "allocated_storage_gib": d.get("AllocatedStorage"), "storage_type": d.get("StorageType"),
                 "availability_zone": d.get("AvailabilityZone"), "arn": d.get("DBInstanceArn")},
                as_date(d["InstanceCreateTime"]) if d.get("InstanceCreateTime") else None))
    return found


def scan_region(region: str, clients: Mapping[str, Any], account_id: str) -> RegionScan:
    """List one region's resources (runs in a worker thread: AWS only, no database)."""
    scan = RegionScan(region)
    listers: list[tuple[str, Callable[[], list[_Found]]]] = [
        ("ec2_instance", lambda: _instances(clients["ec2"], region)),
        ("ebs_volume", lambda: _volumes(clients["ec2"], region)),
        ("ebs_snapshot", lambda: _snapshots(clients["ec2"], region, account_id)),
        ("elastic_ip", lambda: _addresses(clients["ec2"], region)),
        ("load_balancer", lambda: _load_balancers(clients["elbv2"], region)),
        ("rds_instance", lambda: _databases(clients["rds"], region)),
    ]
    for resource_type, lister in listers:
        try:
            scan.found.extend(lister())
            scan.listed.add(resource_type)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("listing %s in %s failed: %s", resource_type, region, exc)
            scan.errors[resource_type] = exc
    return scan


def write_resources(session: Session, *, account_id: str, scans: Sequence[RegionScan], today: dt.date) -> int:
    """Upsert what the scans found; mark gone what a clean listing no longer shows; return rows written."""
    regions = [scan.region for scan in scans]
    existing = {(r.region, r.resource_id): r for r in session.scalars(
        select(Resource).where(Resource.usage_account_id == account_id, Resource.region.in_(regions)))}
    seen: set[tuple[str, str]] = set()
    written = 0
    for scan in scans:
        for item in scan.found:
            key = (item.region, item.resource_id[:256])
            seen.add(key)
            resource = existing.get(key)
            if resource is None:
                resource = Resource(usage_account_id=account_id, region=item.region, resource_id=key[1],
                                    monthly_cost=Decimal(0))
                session.add(resource)
                existing[key] = resource
            resource.resource_type = item.resource_type
            resource.name, resource.size, resource.state = item.name[:256], item.size[:64], item.state[:32]
            resource.tags = item.tags
            resource.attributes = jsonable(item.attributes)
            resource.launched_on = item.launched_on
            resource.source = "collector"
            written += 1
    listed = {(scan.region, t) for scan in scans for t in scan.listed}
    for key, resource in existing.items():
        if (key not in seen and resource.source == "collector" and resource.state != "deleted"
                and (resource.region, resource.resource_type) in listed):
            resource.state = "deleted"
            resource.attributes = {**resource.attributes, "deleted_seen_on": today.isoformat()}
            written += 1
    return written


def _cpu_queries(targets: Sequence[tuple[int, str, str]]) -> list[dict[str, Any]]:
    queries = []
    for index, (_pk, resource_type, resource_id) in enumerate(targets):
        namespace, dimension = CPU_TARGETS[resource_type]
        metric = {"Namespace": namespace, "MetricName": "CPUUtilization",
                  "Dimensions": [{"Name": dimension, "Value": resource_id}]}
        for prefix, stat in (("a", "Average"), ("m", "Maximum")):
            queries.append({"Id": f"{prefix}{index}", "ReturnData": True,
                            "MetricStat": {"Metric": metric, "Period": 86_400, "Stat": stat}})
    return queries


def read_cpu(cloudwatch: Any, targets: Sequence[tuple[int, str, str]], *, start: dt.datetime,
             end: dt.datetime) -> list[tuple[int, dt.date, str, Decimal]]:
    """Return (resource pk, day, "a" or "m", value) for the targets (runs in a worker thread)."""
    per_request = _METRIC_QUERIES_PER_REQUEST // 2
    values: list[tuple[int, dt.date, str, Decimal]] = []
    for offset in range(0, len(targets), per_request):
        batch = targets[offset:offset + per_request]
        for page in read_pages(cloudwatch, "get_metric_data", "NextToken", MetricDataQueries=_cpu_queries(batch),
                               StartTime=start, EndTime=end, ScanBy="TimestampAscending"):
            for result in page.get("MetricDataResults", []):
                stat, index = result["Id"][0], int(result["Id"][1:])
                for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    values.append((batch[index][0], as_date(stamp), stat, as_percent(value) or Decimal(0)))
    return values



def cpu_targets(session: Session, *, account_id: str, regions: Sequence[str]) -> dict[str, list[tuple[int, str, str]]]:
    """Return, per region, (resource pk, type, id) of the account's known EC2 and RDS instances."""
    targets: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for pk, region, resource_type, resource_id in session.execute(
            select(Resource.id, Resource.region, Resource.resource_type, Resource.resource_id).where(
                Resource.usage_account_id == account_id, Resource.region.in_(regions),
                Resource.resource_type.in_(CPU_TARGETS), Resource.state.not_in(GONE_STATES))
            .order_by(Resource.id)):
        targets[region].append((pk, resource_type, resource_id))
    return targets


def write_utilisation(session: Session, *, results: Sequence[Sequence[tuple[int, dt.date, str, Decimal]]],
                      since: dt.date) -> int:
    """Upsert the daily CPU average and maximum that ``read_cpu`` returned; return the days written."""
    daily: dict[tuple[int, dt.date], dict[str, Decimal]] = defaultdict(dict)
    for values in results:
        for pk, day, stat, value in values:
            daily[(pk, day)][stat] = value
    pks = sorted({pk for pk, _day_ in daily})
    existing = {(u.resource_pk, u.usage_date): u for u in session.scalars(select(ResourceUtilisation).where(
        ResourceUtilisation.resource_pk.in_(pks), ResourceUtilisation.usage_date >= since))}
    for (pk, day), stats in sorted(daily.items()):
        row = existing.get((pk, day))
        if row is None:
            row = ResourceUtilisation(resource_pk=pk, usage_date=day)
            session.add(row)
        row.cpu_avg, row.cpu_max = stats.get("a"), stats.get("m")
    return len(daily)
