"""The demo organisation's fixed tables: services and their prices, accounts, teams and cost
centres, the budgets it sets, the instance types and utilisation profiles of its inventory.

Data only: what the generator draws from (``generator``, ``_plan``, ``_inventory``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

#: The source every demo row carries: facts, budgets and resources.
SOURCE = "demo"

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

#: Charges billed to the cent (tax, support, resources' monthly costs) round to this.
CENT = Decimal("0.01")
EDP_DISCOUNT = Decimal("0.03")
SP_DISCOUNT = Decimal("0.28")
RI_DISCOUNT = Decimal("0.40")
TAX_RATE = Decimal("0.025")

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
ANOMALY_CANDIDATES: tuple[tuple[str, str], ...] = (
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
ANOMALY_WINDOWS: tuple[tuple[int, int], ...] = ((4, 20), (25, 55), (80, 170), (190, 330))


#: name, scope kind, scope value, amount as a multiple of the reference month's spend.
BUDGETS: tuple[tuple[str, str, str, float], ...] = (
    ("Acme organisation", "org", "", 1.06),
    ("Team platform", "team", "platform", 0.93),
    ("Team data", "team", "data", 1.12),
    ("Team payments", "team", "payments", 0.98),
    ("Team ml", "team", "ml", 0.85),
    ("Account acme-prod-core", "account", "acme-prod-core", 1.08),
    ("Account acme-sandbox", "account", "acme-sandbox", 1.3),
)


EC2_TYPES: dict[str, tuple[int, int, str]] = {
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
RDS_CLASSES: dict[str, tuple[int, int, str]] = {
    "db.t4g.medium": (2, 4, "0.065"),
    "db.r6g.large": (2, 16, "0.225"),
    "db.r6g.xlarge": (4, 32, "0.45"),
    "db.m6g.xlarge": (4, 16, "0.316"),
    "db.r6g.2xlarge": (8, 64, "0.90"),
}
VOLUME_PRICES = {"gp2": Decimal("0.10"), "gp3": Decimal("0.08"), "io1": Decimal("0.125")}
INSTANCE_ROLES = ("api", "worker", "web", "batch", "etl", "cache", "ingest", "bastion", "jenkins")

#: Utilisation profile: (weight, cpu average range, cpu maximum range).
UTILISATION_PROFILES: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "idle": (0.14, (0.2, 1.6), (1.0, 4.5)),
    "oversized": (0.26, (3.0, 9.0), (8.0, 18.5)),
    "normal": (0.38, (20.0, 45.0), (50.0, 80.0)),
    "busy": (0.22, (55.0, 80.0), (85.0, 100.0)),
}
