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
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from sqlalchemy import distinct, func, insert, select
from sqlalchemy.orm import Session

from models import AwsAccount, Budget, CostFact, ImportBatch, Resource, ResourceUtilisation
from services.costs.ingest import FactRow, replace_period

logger = logging.getLogger(__name__)

SOURCE = "demo"
DEFAULT_SEED = 20241101
DEFAULT_MONTHS = 14

PAYER_ACCOUNT_ID = "111111111111"
PAYER_NAME = "Acme Corp Management"
GLOBAL_REGION = "global"

#: Cost Explorer usage-type prefix of each region the demo organisation runs in.
REGION_PREFIXES: dict[str, str] = {
    "us-east-1": "USE1",
    "us-west-2": "USW2",
    "eu-west-1": "EUW1",
    "eu-west-2": "EUW2",
    "eu-central-1": "EUC1",
    "ap-southeast-1": "APS1",
    "ap-northeast-1": "APN1",
    "ap-south-1": "APS3",
}

COST_QUANTUM = Decimal("1E-10")
QUANTITY_QUANTUM = Decimal("1E-6")
CENT = Decimal("0.01")
EDP_DISCOUNT = Decimal("0.03")
SP_DISCOUNT = Decimal("0.28")
RI_DISCOUNT = Decimal("0.40")
TAX_RATE = Decimal("0.025")
#: On-demand spend of the whole organisation per day at the anchor, before growth and noise.
ORG_DAILY_COST = 9_000.0
#: Share of cost lines (by cost) nobody tagged; tax and support come on top.
UNTAGGED_LINE_SHARE = 0.09
PARTIAL_TAG_SHARE = 0.12
UTILISATION_DAYS = 30

SP_FEE_SERVICE = "Savings Plans for AWS Compute usage"
SUPPORT_SERVICE = "AWS Support (Business)"
TAX_SERVICE = "Tax"

TEAM_COST_CENTERS: dict[str, str] = {
    "platform": "CC-1001",
    "data": "CC-1002",
    "payments": "CC-1003",
    "web": "CC-1004",
    "ml": "CC-1005",
    "security": "CC-1006",
}


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


@dataclass(frozen=True)
class UsageSpec:
    """One usage type of a service: its suffix, unit and public on-demand price."""

    suffix: str
    unit: str
    price: Decimal
    #: "sp" when a Compute Savings Plan can cover it, "ri" for Reserved Instance hours.
    commitment: str = ""
    #: Whether usage follows working days (instances scaled down at weekends).
    seasonal: bool = True

    def usage_type(self, region: str) -> str:
        """Return the usage type as Cost Explorer reports it in ``region``."""
        if region == GLOBAL_REGION:
            return self.suffix
        return f"{REGION_PREFIXES[region]}-{self.suffix}"

    @property
    def noise(self) -> float:
        """Return the relative day-to-day noise of this kind of usage."""
        if not self.seasonal:
            return 0.012
        return 0.03 if self.unit == "Hrs" else 0.08


@dataclass(frozen=True)
class ServiceSpec:
    """A service as Cost Explorer names it, with its share of a typical account's spend."""

    name: str
    category: str
    weight: float
    usage: tuple[UsageSpec, ...]
    is_global: bool = False


def _u(suffix: str, unit: str, price: str, *, commitment: str = "", seasonal: bool = True
       ) -> UsageSpec:
    return UsageSpec(suffix, unit, Decimal(price), commitment, seasonal)


CATALOGUE: dict[str, ServiceSpec] = {
    "ec2": ServiceSpec("Amazon Elastic Compute Cloud - Compute", "Compute", 34.0, (
        _u("BoxUsage:m5.xlarge", "Hrs", "0.192", commitment="sp"),
        _u("BoxUsage:c6i.2xlarge", "Hrs", "0.34", commitment="sp"),
        _u("BoxUsage:r6g.xlarge", "Hrs", "0.2016", commitment="sp"),
    )),
    "ec2_other": ServiceSpec("EC2 - Other", "Compute", 8.0, (
        _u("EBS:VolumeUsage.gp3", "GB-Mo", "0.08", seasonal=False),
        _u("NatGateway-Bytes", "GB", "0.045"),
        _u("DataTransfer-Out-Bytes", "GB", "0.09"),
    )),
    "rds": ServiceSpec("Amazon Relational Database Service", "Databases", 12.0, (
        _u("InstanceUsage:db.r6g.large", "Hrs", "0.225", commitment="ri", seasonal=False),
        _u("Multi-AZUsage:db.m6g.xlarge", "Hrs", "0.632", commitment="ri", seasonal=False),
        _u("RDS:GP3-Storage", "GB-Mo", "0.115", seasonal=False),
    )),
    "s3": ServiceSpec("Amazon Simple Storage Service", "Storage", 7.0, (
        _u("TimedStorage-ByteHrs", "GB-Mo", "0.023", seasonal=False),
        _u("Requests-Tier1", "Requests", "0.000005"),
        _u("TimedStorage-INT-FA-ByteHrs", "GB-Mo", "0.023", seasonal=False),
    )),
    "eks": ServiceSpec("Amazon Elastic Container Service for Kubernetes", "Containers", 4.0, (
        _u("AmazonEKS-Hours:perCluster", "Hrs", "0.10", seasonal=False),
        _u("Fargate-vCPU-Hours:perCPU", "Hrs", "0.04048"),
        _u("Fargate-GB-Hours", "GB-Hours", "0.004445"),
    )),
    "vpc": ServiceSpec("Amazon Virtual Private Cloud", "Networking", 2.0, (
        _u("VpcEndpoint-Hours", "Hrs", "0.01", seasonal=False),
        _u("PublicIPv4:InUseAddress", "Hrs", "0.005", seasonal=False),
        _u("TransitGateway-Bytes", "GB", "0.02"),
    )),
    "cloudwatch": ServiceSpec("AmazonCloudWatch", "Management and Governance", 2.5, (
        _u("DataProcessing-Bytes", "GB", "0.50"),
        _u("TimedStorage-ByteHrs", "GB-Mo", "0.03", seasonal=False),
        _u("CW:Requests", "Requests", "0.00001"),
    )),
    "elasticache": ServiceSpec("Amazon ElastiCache", "Databases", 3.0, (
        _u("NodeUsage:cache.r6g.large", "Hrs", "0.206", seasonal=False),
        _u("NodeUsage:cache.m6g.large", "Hrs", "0.149", seasonal=False),
    )),
    "opensearch": ServiceSpec("Amazon OpenSearch Service", "Analytics", 3.0, (
        _u("ESInstance:r6g.large.search", "Hrs", "0.167", seasonal=False),
        _u("ES:GP3-Storage", "GB-Mo", "0.122", seasonal=False),
    )),
    "redshift": ServiceSpec("Amazon Redshift", "Analytics", 4.0, (
        _u("Node:ra3.xlplus", "Hrs", "1.086", seasonal=False),
        _u("RMS:ra3", "GB-Mo", "0.024", seasonal=False),
    )),
    "lambda": ServiceSpec("AWS Lambda", "Compute", 1.5, (
        _u("Lambda-GB-Second", "Lambda-GB-Second", "0.0000166667"),
        _u("Request", "Requests", "0.0000002"),
    )),
    "cloudfront": ServiceSpec("Amazon CloudFront", "Networking", 2.5, (
        _u("US-DataTransfer-Out-Bytes", "GB", "0.085"),
        _u("EU-DataTransfer-Out-Bytes", "GB", "0.085"),
        _u("US-Requests-Tier2-HTTPS", "Requests", "0.000001"),
    ), is_global=True),
    "dynamodb": ServiceSpec("Amazon DynamoDB", "Databases", 2.0, (
        _u("ReadRequestUnits", "ReadRequestUnits", "0.00000025"),
        _u("WriteRequestUnits", "WriteRequestUnits", "0.00000125"),
        _u("TimedStorage-ByteHrs", "GB-Mo", "0.25", seasonal=False),
    )),
    "elb": ServiceSpec("Elastic Load Balancing", "Networking", 2.0, (
        _u("LoadBalancerUsage", "Hrs", "0.0225", seasonal=False),
        _u("LCUUsage", "LCU-Hrs", "0.008"),
    )),
    "kms": ServiceSpec("AWS Key Management Service", "Security", 0.4, (
        _u("KMS-Keys", "Keys", "1.00", seasonal=False),
        _u("KMS-Requests", "Requests", "0.000003"),
    )),
    "route53": ServiceSpec("Amazon Route 53", "Networking", 0.3, (
        _u("HostedZone", "HostedZone", "0.50", seasonal=False),
        _u("DNS-Queries", "Queries", "0.0000004"),
    ), is_global=True),
    "glue": ServiceSpec("AWS Glue", "Analytics", 1.2, (
        _u("ETL-DPU-Hour", "DPU-Hour", "0.44"),
        _u("Crawler-DPU-Hour", "DPU-Hour", "0.44"),
    )),
    "athena": ServiceSpec("Amazon Athena", "Analytics", 0.6, (
        _u("DataScannedInTB", "TB", "5.00"),
    )),
    "kinesis": ServiceSpec("Amazon Kinesis", "Analytics", 1.0, (
        _u("Storage-ShardHour", "ShardHour", "0.015", seasonal=False),
        _u("PutRequestPayloadUnits", "PutRequestPayloadUnits", "0.000000014"),
    )),
    "sqs": ServiceSpec("Amazon Simple Queue Service", "Application Integration", 0.4, (
        _u("Requests-Tier1", "Requests", "0.0000004"),
    )),
    "sns": ServiceSpec("Amazon Simple Notification Service", "Application Integration", 0.2, (
        _u("Requests-Tier1", "Requests", "0.0000005"),
        _u("DeliveryAttempts-HTTP", "Notifications", "0.0000006"),
    )),
    "secrets": ServiceSpec("AWS Secrets Manager", "Security", 0.2, (
        _u("AWSSecretsManager-Secrets", "Secrets", "0.40", seasonal=False),
        _u("AWSSecretsManager-APIRequest", "Requests", "0.000005"),
    )),
    "efs": ServiceSpec("Amazon Elastic File System", "Storage", 0.8, (
        _u("TimedStorage-ByteHrs", "GB-Mo", "0.30", seasonal=False),
        _u("IATimedStorage-ByteHrs", "GB-Mo", "0.025", seasonal=False),
    )),
    "backup": ServiceSpec("AWS Backup", "Storage", 0.8, (
        _u("WarmStorage-ByteHrs-EBS", "GB-Mo", "0.05", seasonal=False),
        _u("WarmStorage-ByteHrs-RDS", "GB-Mo", "0.095", seasonal=False),
    )),
    "sagemaker": ServiceSpec("Amazon SageMaker", "AI and Machine Learning", 2.5, (
        _u("Train:ml.p3.2xlarge", "Hrs", "3.825"),
        _u("Host:ml.m5.xlarge", "Hrs", "0.23"),
        _u("Notebk:ml.t3.medium", "Hrs", "0.05"),
    )),
    "waf": ServiceSpec("AWS WAF", "Security", 0.4, (
        _u("WebACL", "WebACL-Mo", "5.00", seasonal=False),
        _u("Request", "Requests", "0.0000006"),
    )),
    "apigw": ServiceSpec("Amazon API Gateway", "Networking", 0.6, (
        _u("ApiGatewayRequest", "Requests", "0.0000035"),
        _u("ApiGatewayHttpRequest", "Requests", "0.000001"),
    )),
    "config": ServiceSpec("AWS Config", "Management and Governance", 0.5, (
        _u("ConfigurationItemRecorded", "ConfigurationItemRecorded", "0.003"),
        _u("ConfigRuleEvaluations", "ConfigRuleEvaluations", "0.001"),
    )),
    "cloudtrail": ServiceSpec("AWS CloudTrail", "Management and Governance", 0.3, (
        _u("PaidEventsRecorded", "Events", "0.00001"),
        _u("DataEventsRecorded", "Events", "0.000001"),
    )),
    "guardduty": ServiceSpec("Amazon GuardDuty", "Security", 0.6, (
        _u("PaidCloudTrailEventsAnalyzed", "Events", "0.000004"),
        _u("PaidVPCFlowLogsAnalyzed", "GB", "1.00"),
    )),
    "stepfunctions": ServiceSpec("AWS Step Functions", "Application Integration", 0.2, (
        _u("StateTransition", "StateTransitions", "0.000025"),
    )),
    "ecr": ServiceSpec("Amazon EC2 Container Registry (ECR)", "Containers", 0.3, (
        _u("TimedStorage-ByteHrs", "GB-Mo", "0.10", seasonal=False),
    )),
    "securityhub": ServiceSpec("AWS Security Hub", "Security", 0.3, (
        _u("PaidComplianceCheck", "Checks", "0.001"),
        _u("PaidFindingsIngested", "Findings", "0.00003"),
    )),
    "ecs": ServiceSpec("Amazon Elastic Container Service", "Containers", 1.5, (
        _u("Fargate-vCPU-Hours:perCPU", "Hrs", "0.04048"),
        _u("Fargate-GB-Hours", "GB-Hours", "0.004445"),
    )),
}

#: What every workload account runs; the organisation trail lives in the management account.
_BASELINE = ("ec2_other", "cloudwatch", "s3", "guardduty")
#: Production accounts also record configuration and pay for private networking and keys.
_PROD_BASELINE = (*_BASELINE, "config", "vpc", "kms")


@dataclass(frozen=True)
class AccountProfile:
    """A linked account: who owns it, how big it is, where it runs and what it uses."""

    account_id: str
    name: str
    environment: str
    team: str
    weight: float
    regions: tuple[str, ...]
    services: tuple[str, ...]
    #: Multipliers on the catalogue weights (a data account spends more on Redshift).
    focus: dict[str, float] = field(default_factory=dict)
    #: Several teams run workloads here, so lines carry other teams' tags too.
    shared: bool = False
    #: Opened this many days before the anchor (None: before the demo window).
    opened_days_ago: int | None = None

    @property
    def email(self) -> str:
        """Return the root e-mail address of the account."""
        return f"aws+{self.name}@example.com"

    @property
    def is_prod(self) -> bool:
        """Return whether the account runs production workloads."""
        return self.environment == "prod"


ACCOUNTS: tuple[AccountProfile, ...] = (
    AccountProfile(PAYER_ACCOUNT_ID, "acme-management", "prod", "platform", 1.2,
                   ("us-east-1",),
                   ("cloudtrail", "config", "s3", "kms", "guardduty", "cloudwatch", "route53",
                    "securityhub")),
    AccountProfile("284610375921", "acme-prod-core", "prod", "platform", 17.0,
                   ("us-east-1", "us-west-2"),
                   (*_PROD_BASELINE, "ec2", "rds", "eks", "elb", "elasticache", "dynamodb", "efs",
                    "backup", "ecr", "lambda", "sqs", "route53", "waf", "secrets"),
                   shared=True),
    AccountProfile("351207894463", "acme-prod-payments", "prod", "payments", 12.0,
                   ("us-east-1", "eu-west-1"),
                   (*_PROD_BASELINE, "ec2", "rds", "elb", "dynamodb", "elasticache", "lambda", "sqs",
                    "sns", "apigw", "waf", "kinesis", "stepfunctions", "secrets"),
                   focus={"dynamodb": 2.0}),
    AccountProfile("418539027716", "acme-prod-web", "prod", "web", 11.0,
                   ("us-east-1", "eu-west-1", "ap-southeast-1"),
                   (*_PROD_BASELINE, "ec2", "rds", "cloudfront", "elb", "elasticache", "lambda",
                    "apigw", "waf", "ecs", "secrets"),
                   focus={"cloudfront": 2.0}),
    AccountProfile("527394160058", "acme-prod-eu", "prod", "web", 8.0,
                   ("eu-central-1", "eu-west-1", "eu-west-2"),
                   (*_PROD_BASELINE, "ec2", "rds", "eks", "elb", "cloudfront", "elasticache",
                    "backup")),
    AccountProfile("603918274452", "acme-data-platform", "prod", "data", 15.0,
                   ("us-east-1", "us-west-2"),
                   (*_PROD_BASELINE, "ec2", "redshift", "glue", "athena", "kinesis", "opensearch",
                    "rds", "lambda", "stepfunctions", "dynamodb"),
                   focus={"redshift": 3.0, "glue": 3.0, "athena": 3.0, "kinesis": 2.0,
                          "s3": 1.8, "ec2": 0.6}),
    AccountProfile("719265038814", "acme-ml-research", "dev", "ml", 7.0,
                   ("us-east-1", "us-west-2"),
                   (*_BASELINE, "sagemaker", "ec2", "efs", "ecr", "lambda", "athena"),
                   focus={"sagemaker": 8.0, "s3": 1.5}),
    AccountProfile("836401752290", "acme-security", "prod", "security", 3.0,
                   ("us-east-1", "eu-west-1"),
                   (*_PROD_BASELINE, "waf", "securityhub", "kinesis", "opensearch",
                    "athena"),
                   focus={"guardduty": 4.0, "securityhub": 4.0, "opensearch": 2.0}),
    AccountProfile("940752618337", "acme-shared-services", "prod", "platform", 5.0,
                   ("us-east-1",),
                   (*_PROD_BASELINE, "ec2", "ecr", "route53", "elb", "backup", "ecs",
                    "efs"),
                   focus={"ecr": 4.0, "vpc": 3.0}, shared=True),
    AccountProfile("152836947701", "acme-log-archive", "prod", "security", 2.5,
                   ("us-east-1",),
                   ("s3", "kms", "cloudtrail", "config", "guardduty", "athena", "cloudwatch",
                    "glue"),
                   focus={"s3": 2.5}),
    AccountProfile("263947158012", "acme-staging", "staging", "platform", 6.0,
                   ("us-east-1", "eu-west-1"),
                   (*_BASELINE, "ec2", "rds", "eks", "elb", "elasticache", "ecr"),
                   shared=True),
    AccountProfile("374058269123", "acme-dev", "dev", "web", 5.0,
                   ("us-east-1", "us-west-2"),
                   (*_BASELINE, "ec2", "rds", "eks", "elb", "lambda", "dynamodb", "apigw",
                    "ecs")),
    AccountProfile("485169370234", "acme-data-dev", "dev", "data", 3.0,
                   ("us-east-1",),
                   (*_BASELINE, "ec2", "glue", "athena", "redshift", "rds", "kinesis",
                    "lambda"),
                   focus={"glue": 2.0, "athena": 2.0}),
    AccountProfile("596270481345", "acme-sandbox", "sandbox", "", 2.0,
                   ("us-east-1", "ap-northeast-1"),
                   ("ec2", "ec2_other", "s3", "lambda", "dynamodb", "vpc", "cloudwatch",
                    "sagemaker", "apigw")),
    AccountProfile("607381592456", "acme-apac-prod", "prod", "web", 5.0,
                   ("ap-southeast-1", "ap-northeast-1", "ap-south-1"),
                   (*_PROD_BASELINE, "ec2", "rds", "elb", "cloudfront", "elasticache", "lambda"),
                   opened_days_ago=270),
)

ACCOUNTS_BY_NAME: dict[str, AccountProfile] = {a.name: a for a in ACCOUNTS}

#: (account, service) pairs a spike may hit: usage-priced, no commitments, no credits.
_ANOMALY_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("acme-data-platform", "glue"),
    ("acme-dev", "ec2"),
    ("acme-ml-research", "sagemaker"),
    ("acme-prod-web", "cloudfront"),
    ("acme-prod-core", "dynamodb"),
    ("acme-prod-payments", "lambda"),
    ("acme-staging", "ec2_other"),
    ("acme-data-platform", "athena"),
)
#: Days-before-today ranges for the spikes: one recent, one inside 60 days, two older.
_ANOMALY_WINDOWS: tuple[tuple[int, int], ...] = ((4, 20), (25, 55), (80, 170), (190, 330))


# -- the plan -------------------------------------------------------------------------------


@dataclass
class _Line:
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
class _Spike:
    start: dt.date
    days: int
    account_id: str
    service_key: str
    factor: float

    def covers(self, day: dt.date) -> bool:
        """Return whether ``day`` is one of the spike's days."""
        return 0 <= (day - self.start).days < self.days


@dataclass(frozen=True)
class _Reservation:
    """Reserved Instances for one line: hours a day, from a date, and the upfront part."""

    line: int
    starts_on: dt.date
    hours_per_day: int
    upfront_share: Decimal
    term_days: int


@dataclass
class _Plan:
    anchor: dt.date
    lines: list[_Line]
    growth: dict[str, float]
    spikes: list[_Spike]
    #: Compute Savings Plans per account: (start, hourly commitment).
    savings_plans: dict[str, list[tuple[dt.date, Decimal]]]
    reservations: list[_Reservation]
    #: Promotional credits: account, first and last day, share of its EC2 cost covered.
    credits: list[tuple[str, dt.date, dt.date, float]]

    def growth_factor(self, account_id: str, day: dt.date) -> float:
        """Return the account's trend multiplier on ``day`` (1 at the anchor)."""
        months = (day - self.anchor).days / 30.4375
        return float((1.0 + self.growth[account_id]) ** months)

    def expected(self, line: _Line, day: dt.date, growth: dict[str, float] | None = None
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


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_end(period: dt.date) -> dt.date:
    return period.replace(day=calendar.monthrange(period.year, period.month)[1])


def _tags_for(account: AccountProfile, team: str, mode: str) -> dict[str, str]:
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


def _account_lines(rng: random.Random, account: AccountProfile, daily: float) -> list[_Line]:
    weights = {k: CATALOGUE[k].weight * account.focus.get(k, 1.0) for k in account.services}
    total_weight = sum(weights.values())
    lines: list[_Line] = []
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
            lines.append(_Line(account, key, spec, usage, region,
                               service_cost * share / share_total, team))
    return lines


def _assign_tags(rng: random.Random, lines: list[_Line]) -> None:
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
        line.tags = _tags_for(line.account, line.team, modes[i])


def _pick_spikes(rng: random.Random, today: dt.date) -> list[_Spike]:
    pairs = rng.sample(_ANOMALY_CANDIDATES, len(_ANOMALY_WINDOWS))
    spikes = []
    for (account_name, key), (low, high) in zip(pairs, _ANOMALY_WINDOWS, strict=True):
        days = rng.randint(1, 3)
        start = today - dt.timedelta(days=rng.randint(low, high))
        spikes.append(_Spike(start, days, ACCOUNTS_BY_NAME[account_name].account_id, key,
                             rng.uniform(4.5, 8.0)))
    return spikes


def _pick_steps(rng: random.Random, plan: _Plan) -> None:
    # Keep steps off the lines a spike may hit, so a spike stands out against its own history.
    spike_prone = set(_ANOMALY_CANDIDATES)
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


def _sp_cost(plan: _Plan, account_id: str, day: dt.date) -> float:
    return sum(plan.expected(line, day) for line in plan.lines
               if line.account.account_id == account_id and line.usage.commitment == "sp")


#: What a Savings Plan dollar buys against on-demand, for sizing commitments.
_SP_RATE = float(1 - SP_DISCOUNT)


def _pick_commitments(rng: random.Random, plan: _Plan) -> None:
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
        plan.reservations.append(_Reservation(
            index, purchase_day if in_window else before_window, instances * 24,
            Decimal("0.5") if in_window else Decimal(0), 365 if in_window else 3 * 365))


def _plan(*, today: dt.date, seed: int) -> _Plan:
    """Draw the organisation's stable structure from the seed, anchored on today's month."""
    rng = random.Random(seed)
    anchor = today.replace(day=1)
    total_weight = sum(a.weight for a in ACCOUNTS)
    lines: list[_Line] = []
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
    plan = _Plan(anchor, lines, growth, _pick_spikes(rng, today), {}, [], [])
    _pick_steps(rng, plan)
    _pick_commitments(rng, plan)
    sandbox = ACCOUNTS_BY_NAME["acme-sandbox"].account_id
    plan.credits.append((sandbox, anchor - dt.timedelta(days=rng.randint(280, 320)),
                         anchor - dt.timedelta(days=rng.randint(100, 140)), 0.8))
    return plan


def demo_anomalies(*, today: dt.date, seed: int = DEFAULT_SEED) -> list[tuple[dt.date, str, str]]:
    """Return every (day, usage account id, service) the demo makes spike, oldest first.

    Spikes fall 4 to 330 days before ``today``, one of them within the last 60 days; with a
    short ``months`` window the older ones precede the data.
    """
    plan = _plan(today=today, seed=seed)
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


def _fact(line: _Line, day: dt.date, charge: str, *, unblended: Decimal, amortized: Decimal,
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


def _usage_fact(line: _Line, day: dt.date, quantity: Decimal) -> FactRow:
    cost = _money(quantity * line.usage.price)
    return _fact(line, day, "Usage", unblended=cost, amortized=cost, list_cost=cost,
                 net=_net(cost), quantity=quantity)


def _savings_plan_facts(plan: _Plan, account_id: str, day: dt.date,
                        usage: list[tuple[_Line, Decimal]]) -> list[FactRow]:
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
        tags=_tags_for(account, account.team, "full"), unblended_cost=_money(commitment),
        amortized_cost=max(_money(commitment - used), Decimal(0)), net_cost=_net(commitment),
        list_cost=_money(commitment), usage_quantity=Decimal(24), usage_unit="Hrs",
    ))
    return rows


def _reservation_facts(day: dt.date, line: _Line, quantity: Decimal,
                       reservations: list[_Reservation]) -> list[FactRow]:
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
    last_day = _month_end(day).day
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


def _monthly_charges(plan: _Plan, period: dt.date) -> list[FactRow]:
    """Return the tax of every account and the payer's support fee, dated the 1st."""
    middle = period.replace(day=15)
    days = _month_end(period).day
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


def _day_rows(plan: _Plan, rng: random.Random, day: dt.date,
              reservations: dict[int, list[_Reservation]]) -> list[FactRow]:
    rows: list[FactRow] = []
    sp_usage: dict[str, list[tuple[_Line, Decimal]]] = defaultdict(list)
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


def _credit_facts(plan: _Plan, day: dt.date, ec2_cost: dict[str, float]) -> list[FactRow]:
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
    plan = _plan(today=today, seed=seed)
    reservations: dict[int, list[_Reservation]] = defaultdict(list)
    for reservation in plan.reservations:
        reservations[reservation.line].append(reservation)
    first = _add_months(plan.anchor, -(months - 1))
    for offset in range(months):
        period = _add_months(first, offset)
        rng = random.Random(f"{seed}:{period.isoformat()}")
        rows: list[FactRow] = []
        day = period
        while day <= min(_month_end(period), today):
            rows.extend(_day_rows(plan, rng, day, reservations))
            day += dt.timedelta(days=1)
        # Rows without a quantity (negations, fees, tax) last: a bulk insert batches rows that
        # leave the same columns empty, so mixing them would split it into tiny statements.
        rows.sort(key=lambda row: row.usage_quantity is None)
        yield period, rows


# -- budgets and inventory ------------------------------------------------------------------


#: name, scope kind, scope value, amount as a multiple of the reference month's spend.
_BUDGETS: tuple[tuple[str, str, str, float], ...] = (
    ("Acme organisation", "org", "", 1.06),
    ("Team platform", "team", "platform", 0.93),
    ("Team data", "team", "data", 1.12),
    ("Team payments", "team", "payments", 0.98),
    ("Team ml", "team", "ml", 0.85),
    ("Account acme-prod-core", "account", "acme-prod-core", 1.08),
    ("Account acme-sandbox", "account", "acme-sandbox", 1.3),
)


def _budget_key(kind: str, value: str) -> str:
    return f"{kind}:{value}"


def _add_spend(totals: dict[str, Decimal], rows: list[FactRow]) -> None:
    for row in rows:
        totals[_budget_key("org", "")] += row.unblended_cost
        totals[_budget_key("team", row.tags.get("team", ""))] += row.unblended_cost
        totals[_budget_key("account", row.usage_account_id)] += row.unblended_cost


def _budgets(totals: dict[str, Decimal], starts_on: dt.date) -> list[Budget]:
    budgets = []
    for name, kind, value, factor in _BUDGETS:
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


_EC2_TYPES: dict[str, tuple[int, int, str]] = {
    "t3.medium": (2, 4, "0.0416"),
    "m5.large": (2, 8, "0.096"),
    "m5.xlarge": (4, 16, "0.192"),
    "m5.2xlarge": (8, 32, "0.384"),
    "c6i.xlarge": (4, 8, "0.17"),
    "c6i.2xlarge": (8, 16, "0.34"),
    "r6g.xlarge": (4, 32, "0.2016"),
    "r6g.2xlarge": (8, 64, "0.4032"),
    "m6i.4xlarge": (16, 64, "0.768"),
    "g5.xlarge": (4, 16, "1.006"),
}
_RDS_CLASSES: dict[str, tuple[int, int, str]] = {
    "db.t4g.medium": (2, 4, "0.065"),
    "db.r6g.large": (2, 16, "0.225"),
    "db.r6g.xlarge": (4, 32, "0.45"),
    "db.m6g.xlarge": (4, 16, "0.316"),
    "db.r6g.2xlarge": (8, 64, "0.90"),
}
_VOLUME_PRICES = {"gp2": Decimal("0.10"), "gp3": Decimal("0.08"), "io1": Decimal("0.125")}
_HOURS_PER_MONTH = Decimal(730)
_ROLES = ("api", "worker", "web", "batch", "etl", "cache", "ingest", "bastion", "jenkins")

#: Utilisation profile: (weight, cpu average range, cpu maximum range).
_PROFILES: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "idle": (0.14, (0.2, 1.6), (1.0, 4.5)),
    "oversized": (0.26, (3.0, 9.0), (8.0, 18.5)),
    "normal": (0.38, (20.0, 45.0), (50.0, 80.0)),
    "busy": (0.22, (55.0, 80.0), (85.0, 100.0)),
}


@dataclass
class _Inventory:
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
    names = list(_PROFILES)
    weights = [_PROFILES[n][0] * (2.0 if n == "idle" and not account.is_prod else 1.0)
               for n in names]
    return rng.choices(names, weights)[0]


def _add_instances(rng: random.Random, inv: _Inventory, account: AccountProfile,
                   today: dt.date) -> list[tuple[str, str]]:
    """Add the account's EC2 instances; return (instance id, region) of the running ones."""
    running: list[tuple[str, str]] = []
    for n in range(max(2, round(account.weight * 0.55))):
        region = account.regions[0] if rng.random() < 0.65 else rng.choice(account.regions)
        size = rng.choice(sorted(_EC2_TYPES))
        vcpu, memory, price = _EC2_TYPES[size]
        windows = rng.random() < 0.1
        hourly = Decimal(price) * (Decimal("1.5") if windows else 1)
        stopped = rng.random() < 0.1
        instance_id = _hex_id(rng, "i")
        tags = _resource_tags(rng, account)
        role = rng.choice(_ROLES)
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


def _add_volume(rng: random.Random, inv: _Inventory, account: AccountProfile, region: str,
                volume_type: str, size: int, instance_id: str | None, tags: dict[str, str],
                today: dt.date) -> str:
    volume_id = _hex_id(rng, "vol")
    iops = 3000 if volume_type != "io1" else rng.choice((2000, 5000))
    cost = Decimal(size) * _VOLUME_PRICES[volume_type]
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


def _add_account_extras(rng: random.Random, inv: _Inventory, account: AccountProfile,
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


def _add_databases(rng: random.Random, inv: _Inventory, account: AccountProfile,
                   today: dt.date) -> None:
    for n in range(max(1, round(account.weight * 0.15))):
        db_class = rng.choice(sorted(_RDS_CLASSES))
        vcpu, memory, price = _RDS_CLASSES[db_class]
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


def _build_inventory(*, today: dt.date, seed: int) -> _Inventory:
    """Build the demo organisation's resources (unsaved) and their utilisation profiles."""
    rng = random.Random(f"{seed}:inventory")
    inv = _Inventory()
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
    _, (avg_low, avg_high), (max_low, max_high) = _PROFILES[profile]
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


def _utilisation_rows(inv: _Inventory, *, today: dt.date, seed: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for index, profile in inv.profiles:
        resource = inv.resources[index]
        rng = random.Random(f"{seed}:{resource.resource_id}")
        for back in range(UTILISATION_DAYS - 1, -1, -1):
            day = today - dt.timedelta(days=back)
            values = _utilisation(rng, profile, is_database=resource.resource_type == "rds_instance")
            rows.append({"resource_pk": resource.id, "usage_date": day, **values})
    return rows


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
    reference = _add_months(today.replace(day=1), -1 if months > 1 else 0)
    first_period = _add_months(today.replace(day=1), -(months - 1))
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
    inventory = _build_inventory(today=today, seed=seed)
    session.add_all(inventory.resources)
    session.flush()
    utilisation = _utilisation_rows(inventory, today=today, seed=seed)
    session.execute(insert(ResourceUtilisation), utilisation)
    session.flush()
    summary = _summarise(session, today=today, already_loaded=False)
    logger.info("loaded demo data: %s fact rows over %s days, %s resources, %s budgets",
                summary.fact_rows, summary.days, summary.resources, summary.budgets)
    return summary
