"""What may run: the allow-listed commands, as pydantic models of the few parameters each takes.

Users never send a command string. They pick an allow-listed command by name
(:func:`parse_command`); its model validates the parameters with strict types that refuse
anything that could act on a command line (control and invisible characters, shell
metacharacters, a leading '-', path traversal), and builds the argv. :func:`check_argv` checks a
built argv once more (defence in depth) before ``cli_runner`` starts anything. A command also
says which AWS profiles it needs and how to read progress from its output lines.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    model_validator,
)

from services.aws.credentials import SECRET_ACCESS_KEY_PATTERN, SESSION_TOKEN_PATTERN
from services.aws.regions import AWS_REGIONS
from services.errors import InvalidInput

#: Flags no built argv may ever carry, whatever a command model returns (defence in depth).
FORBIDDEN_FLAGS: frozenset[str] = frozenset({
    "--endpoint-url", "--no-verify-ssl", "--ca-bundle", "--debug", "--cli-input-json",
    "--cli-input-yaml", "--generate-cli-skeleton", "--config-file", "-C", "--s3-bucket", "-s3",
    "--s3-prefix", "-s3p", "--s3-profile", "-s3s", "--slack", "--all", "-a", "--combine", "-c",
})

_SHELL_METACHARACTERS = frozenset(";&|`$(){}[]<>\\'\"!*?~#%^\n\r\t")
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


# --- strict parameter types -----------------------------------------------------------------


def _refuse_unsafe(value: str) -> str:
    """Refuse what must never reach an argv: control and invisible characters, shell
    metacharacters, a leading '-', path traversal; also text that is not valid UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text") from None
    if any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in value):
        raise ValueError("must not contain control or invisible characters")
    if value.startswith("-"):
        raise ValueError("must not start with '-'")
    if any(ch in _SHELL_METACHARACTERS for ch in value):
        raise ValueError("must not contain shell metacharacters")
    if ".." in value or "://" in value:
        raise ValueError("must not contain '..' or '://'")
    return value


def is_region(value: str) -> str:
    """Return the value when it is a known AWS region code; raise ValueError otherwise."""
    if value not in AWS_REGIONS:
        raise ValueError("is not a known AWS region code")
    return value


_SAFE = AfterValidator(_refuse_unsafe)
_STRICT = Strict()

# Each is a strict str (no bytes, no coercion) of bounded length, matching an ASCII pattern, and
# refused by _refuse_unsafe for anything that could act on a command line.
ProfileName = Annotated[str, _STRICT, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$"),
                        _SAFE]
Region = Annotated[str, _STRICT, StringConstraints(max_length=20, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$"), _SAFE,
                   AfterValidator(is_region)]
ReportName = Annotated[str, _STRICT, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"),
                       _SAFE]
TagKey = Annotated[str, _STRICT, StringConstraints(
    max_length=128, pattern=r"^[A-Za-z0-9_.:+@][A-Za-z0-9_.:+@-]{0,127}$"), _SAFE]
TagValue = Annotated[str, _STRICT, StringConstraints(
    max_length=256, pattern=r"^[A-Za-z0-9_.:+=@](?:[A-Za-z0-9 _.:+=@-]{0,254}[A-Za-z0-9_.:+=@-])?$"), _SAFE]
AccountId = Annotated[str, _STRICT, StringConstraints(max_length=12, pattern=r"^\d{12}$"), _SAFE]
RoleArn = Annotated[str, _STRICT, StringConstraints(
    max_length=600, pattern=r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")]
AccessKeyId = Annotated[str, _STRICT, StringConstraints(pattern=r"^[A-Z0-9]{16,128}$")]
# The secrets' one rule, which the profiles' API applies too: what is saved can be written.
SecretText = Annotated[str, _STRICT, StringConstraints(pattern=SECRET_ACCESS_KEY_PATTERN)]
SessionToken = Annotated[str, _STRICT, StringConstraints(pattern=SESSION_TOKEN_PATTERN)]
ExternalId = Annotated[str, _STRICT, StringConstraints(pattern=r"^[A-Za-z0-9+=,.@:/_-]{2,1224}$")]
StrictInt = Annotated[int, _STRICT]
StrictBool = Annotated[bool, _STRICT]
CostDate = Annotated[dt.date, Field(ge=dt.date(2015, 1, 1), le=dt.date(2100, 1, 1))]


# --- commands -------------------------------------------------------------------------------


class CliCommand(BaseModel):
    """An allow-listed command: its fields are the only parameters a user may set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Key of the program in the runner's allow-list.
    program: ClassVar[str]
    #: Stable name of the command (job kind, audit records).
    name: ClassVar[str]

    def profile_names(self) -> tuple[str, ...]:
        """Return the AWS profiles the command uses (their credentials must be supplied)."""
        return ()

    def keyless_profile_names(self) -> tuple[str, ...]:
        """Return the profiles the runner writes without credentials (no request of theirs is sent)."""
        return ()

    def build_args(self, *, output_dir: Path) -> list[str]:
        """Return the arguments after the executable."""
        raise NotImplementedError

    def progress_from_line(self, line: str) -> tuple[int, str] | None:
        """Return (percent, step) when an output line tells progress."""
        return None


def _unique(values: Sequence[str], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")


#: A profile the runner writes with no credentials (our profile names start with a letter or
#: digit, so none is called so). aws-finops titles its cost table with the dates of a first,
#: extra query of the first profile's costs, four Cost Explorer requests per run; led by this
#: profile, that query fails inside botocore before anything is sent, with the same dates.
SAMPLE_PROFILE = "_sample"

_RICH_BAR = re.compile(r"^(?P<step>[A-Za-z][^━]*?)\s*━+\s*(?P<pct>\d{1,3})%")


class AwsFinopsCommand(CliCommand):
    program: ClassVar[str] = "aws-finops"
    mode: ClassVar[Literal["cost", "trend", "audit"]]

    profiles: list[ProfileName] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _profiles_unique(self) -> AwsFinopsCommand:
        _unique(self.profiles, "profiles")
        return self

    def profile_names(self) -> tuple[str, ...]:
        return tuple(self.profiles)

    def progress_from_line(self, line: str) -> tuple[int, str] | None:
        match = _RICH_BAR.match(line.strip())
        if match:
            return min(int(match["pct"]), 100), match["step"].rstrip(". ")
        return None

    def _argv_profiles(self) -> list[str]:
        return list(self.profiles)

    def _common_args(self, regions: Sequence[str], report_name: str, report_types: Sequence[str],
                     output_dir: Path) -> list[str]:
        # --regions always: without it the tool probes every region, two calls each.
        return ["--profiles", *self._argv_profiles(), "--regions", *regions, "--report-name", report_name,
                "--report-type", *report_types, "--dir", str(output_dir)]


ReportType = Literal["csv", "json", "pdf"]


def _json_report() -> list[ReportType]:
    return ["json"]


def _with_json(report_types: Sequence[str]) -> list[str]:
    """The JSON export is how a run is judged: it is always written."""
    return list(dict.fromkeys(["json", *report_types]))


class AwsFinopsCost(AwsFinopsCommand):
    """``aws-finops``: cost by service for the current and previous period, budgets, EC2 summary."""

    name: ClassVar[str] = "aws_finops.cost"
    mode: ClassVar[Literal["cost", "trend", "audit"]] = "cost"

    regions: list[Region] = Field(default_factory=lambda: ["us-east-1"], min_length=1, max_length=20)
    #: Days back from today (the previous period is as long); default: the current month.
    time_range_days: StrictInt | None = Field(default=None, ge=1, le=365)
    #: The previous calendar month instead (cannot combine with time_range_days).
    last_month: StrictBool = False
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=10)
    report_name: ReportName = "aws-finops-cost"
    report_types: list[ReportType] = Field(default_factory=_json_report, min_length=1, max_length=3)
    #: Lead the run with SAMPLE_PROFILE (set by the runner's grouping, never a job parameter): its
    #: row is in the tool's table and exports, which the caller then leaves out.
    lead_with_sample: StrictBool = False

    @model_validator(mode="after")
    def _one_time_range(self) -> AwsFinopsCost:
        _unique(self.regions, "regions")
        _unique(self.report_types, "report types")
        if self.time_range_days is not None and self.last_month:
            raise ValueError("choose either time_range_days or last_month")
        if SAMPLE_PROFILE in self.profiles:
            raise ValueError(f"{SAMPLE_PROFILE} is not a profile")
        return self

    def keyless_profile_names(self) -> tuple[str, ...]:
        return (SAMPLE_PROFILE,) if self.lead_with_sample else ()

    def _argv_profiles(self) -> list[str]:
        return [*self.keyless_profile_names(), *self.profiles]

    def build_args(self, *, output_dir: Path) -> list[str]:
        args = self._common_args(self.regions, self.report_name, _with_json(self.report_types), output_dir)
        if self.last_month:
            args += ["--time-range", "last-month"]
        elif self.time_range_days is not None:
            args += ["--time-range", str(self.time_range_days)]
        if self.tags:
            args += ["--tag", *(f"{key}={value}" for key, value in self.tags.items())]
        return args


class AwsFinopsTrend(AwsFinopsCommand):
    """``aws-finops --trend``: monthly cost of the last six months (JSON only)."""

    name: ClassVar[str] = "aws_finops.trend"
    mode: ClassVar[Literal["cost", "trend", "audit"]] = "trend"

    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=10)
    report_name: ReportName = "aws-finops-trend"

    def build_args(self, *, output_dir: Path) -> list[str]:
        # The trend ignores regions; a fixed one keeps the tool from probing them all.
        args = ["--trend", *self._common_args(["us-east-1"], self.report_name, ["json"], output_dir)]
        if self.tags:
            args += ["--tag", *(f"{key}={value}" for key, value in self.tags.items())]
        return args


class AwsFinopsAudit(AwsFinopsCommand):
    """``aws-finops --audit``: untagged resources, stopped instances, unused volumes and EIPs, budgets."""

    name: ClassVar[str] = "aws_finops.audit"
    mode: ClassVar[Literal["cost", "trend", "audit"]] = "audit"

    regions: list[Region] = Field(default_factory=lambda: ["us-east-1"], min_length=1, max_length=20)
    report_name: ReportName = "aws-finops-audit"
    report_types: list[ReportType] = Field(default_factory=_json_report, min_length=1, max_length=3)

    @model_validator(mode="after")
    def _unique_lists(self) -> AwsFinopsAudit:
        _unique(self.regions, "regions")
        _unique(self.report_types, "report types")
        return self

    def build_args(self, *, output_dir: Path) -> list[str]:
        return ["--audit", *self._common_args(self.regions, self.report_name,
                                              _with_json(self.report_types), output_dir)]


class _AwsCliCommand(CliCommand):
    """A read-only ``aws`` CLI call with JSON output."""

    program: ClassVar[str] = "aws"
    #: e.g. ("ec2", "describe-instances")
    operation: ClassVar[tuple[str, str]]

    profile: ProfileName

    def profile_names(self) -> tuple[str, ...]:
        return (self.profile,)

    def call_region(self) -> str:
        """Region of the call (global services answer in us-east-1)."""
        return "us-east-1"

    def operation_args(self) -> list[str]:
        return []

    def build_args(self, *, output_dir: Path) -> list[str]:
        return [*self.operation, *self.operation_args(), "--profile", self.profile,
                "--region", self.call_region(), "--output", "json"]


class AwsStsGetCallerIdentity(_AwsCliCommand):
    name: ClassVar[str] = "aws.sts.get-caller-identity"
    operation: ClassVar[tuple[str, str]] = ("sts", "get-caller-identity")


CostMetric = Literal["UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost",
                     "NetAmortizedCost", "UsageQuantity", "NormalizedUsageAmount"]
CostDimension = Literal["SERVICE", "LINKED_ACCOUNT", "REGION", "USAGE_TYPE", "INSTANCE_TYPE",
                        "RECORD_TYPE", "OPERATION", "PURCHASE_TYPE"]


def _unblended() -> list[CostMetric]:
    return ["UnblendedCost"]


class AwsCeGetCostAndUsage(_AwsCliCommand):
    name: ClassVar[str] = "aws.ce.get-cost-and-usage"
    operation: ClassVar[tuple[str, str]] = ("ce", "get-cost-and-usage")

    start: CostDate
    #: Exclusive, as Cost Explorer takes it.
    end: CostDate
    granularity: Literal["DAILY", "MONTHLY"] = "MONTHLY"
    metrics: list[CostMetric] = Field(default_factory=_unblended, min_length=1, max_length=3)
    group_by: CostDimension | None = None

    @model_validator(mode="after")
    def _period(self) -> AwsCeGetCostAndUsage:
        _unique(self.metrics, "metrics")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if (self.end - self.start).days > 400:
            raise ValueError("the period must not exceed 400 days")
        return self

    def operation_args(self) -> list[str]:
        args = ["--time-period", f"Start={self.start.isoformat()},End={self.end.isoformat()}",
                "--granularity", self.granularity, "--metrics", *self.metrics]
        if self.group_by:
            args += ["--group-by", f"Type=DIMENSION,Key={self.group_by}"]
        return args


class _RegionalAwsCliCommand(_AwsCliCommand):
    region: Region = "us-east-1"
    max_items: StrictInt | None = Field(default=None, ge=1, le=1000)

    def call_region(self) -> str:
        return self.region

    def _max_items(self) -> list[str]:
        return ["--max-items", str(self.max_items)] if self.max_items is not None else []


class AwsEc2DescribeInstances(_RegionalAwsCliCommand):
    name: ClassVar[str] = "aws.ec2.describe-instances"
    operation: ClassVar[tuple[str, str]] = ("ec2", "describe-instances")

    states: list[Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]] = \
        Field(default_factory=list, max_length=6)

    def operation_args(self) -> list[str]:
        filters = ["--filters", "Name=instance-state-name,Values=" + ",".join(self.states)] if self.states else []
        return filters + self._max_items()


class AwsEc2DescribeVolumes(_RegionalAwsCliCommand):
    name: ClassVar[str] = "aws.ec2.describe-volumes"
    operation: ClassVar[tuple[str, str]] = ("ec2", "describe-volumes")

    statuses: list[Literal["creating", "available", "in-use", "deleting", "deleted", "error"]] = \
        Field(default_factory=list, max_length=6)

    def operation_args(self) -> list[str]:
        filters = ["--filters", "Name=status,Values=" + ",".join(self.statuses)] if self.statuses else []
        return filters + self._max_items()


class AwsEc2DescribeAddresses(_AwsCliCommand):
    name: ClassVar[str] = "aws.ec2.describe-addresses"
    operation: ClassVar[tuple[str, str]] = ("ec2", "describe-addresses")

    region: Region = "us-east-1"

    def call_region(self) -> str:
        return self.region


class AwsRdsDescribeDbInstances(_RegionalAwsCliCommand):
    name: ClassVar[str] = "aws.rds.describe-db-instances"
    operation: ClassVar[tuple[str, str]] = ("rds", "describe-db-instances")

    def operation_args(self) -> list[str]:
        return self._max_items()


class AwsBudgetsDescribeBudgets(_AwsCliCommand):
    name: ClassVar[str] = "aws.budgets.describe-budgets"
    operation: ClassVar[tuple[str, str]] = ("budgets", "describe-budgets")

    account_id: AccountId
    max_items: StrictInt | None = Field(default=None, ge=1, le=1000)

    def operation_args(self) -> list[str]:
        args = ["--account-id", self.account_id]
        return args + (["--max-items", str(self.max_items)] if self.max_items is not None else [])


class AwsOrganizationsListAccounts(_AwsCliCommand):
    name: ClassVar[str] = "aws.organizations.list-accounts"
    operation: ClassVar[tuple[str, str]] = ("organizations", "list-accounts")

    max_items: StrictInt | None = Field(default=None, ge=1, le=1000)

    def operation_args(self) -> list[str]:
        return ["--max-items", str(self.max_items)] if self.max_items is not None else []


#: Every command a user may ask for, by name.
COMMANDS: Mapping[str, type[CliCommand]] = {cls.name: cls for cls in (
    AwsFinopsCost, AwsFinopsTrend, AwsFinopsAudit, AwsStsGetCallerIdentity, AwsCeGetCostAndUsage,
    AwsEc2DescribeInstances, AwsEc2DescribeVolumes, AwsEc2DescribeAddresses, AwsRdsDescribeDbInstances,
    AwsBudgetsDescribeBudgets, AwsOrganizationsListAccounts,
)}


def _safe_loc(loc: tuple[int | str, ...]) -> str:
    """A location path that never echoes user text (dict keys are user input)."""
    return ".".join(str(p) if isinstance(p, int) or re.fullmatch(r"[a-z_]{1,40}|\[key\]", p) else "<key>"
                    for p in loc)


def _invalid(exc: ValidationError, command: str) -> InvalidInput:
    errors = [{"field": _safe_loc(tuple(e["loc"])), "message": e["msg"]}
              for e in exc.errors(include_input=False, include_url=False)]
    return InvalidInput(f"Invalid parameters for {command}.", details={"errors": errors})


def parse_command(name: str, parameters: Mapping[str, object]) -> CliCommand:
    """Validate a user's parameters for an allow-listed command; raise InvalidInput otherwise."""
    cls = COMMANDS.get(name)
    if cls is None:
        raise InvalidInput("This command is not allowed.")
    try:
        return cls.model_validate(dict(parameters))
    except ValidationError as exc:
        raise _invalid(exc, name) from None


def revalidate(command: CliCommand) -> CliCommand:
    """Validate again: a model built with model_construct() skipped validation."""
    if not isinstance(command, CliCommand):
        raise InvalidInput("This command is not allowed.")
    cls = type(command)
    try:
        return cls.model_validate({name: getattr(command, name) for name in cls.model_fields})
    except ValidationError as exc:
        raise _invalid(exc, cls.name) from None
    except AttributeError:
        raise InvalidInput(f"Invalid parameters for {cls.name}.") from None


def check_argv(argv: Sequence[str]) -> None:
    """Refuse a built argv with a malformed argument or a forbidden flag."""
    for arg in argv:
        if not isinstance(arg, str) or not arg or len(arg) > 4096:
            raise InvalidInput("A command argument is malformed.")
        if any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in arg) or "://" in arg:
            raise InvalidInput("A command argument is malformed.")
        if arg.split("=", 1)[0] in FORBIDDEN_FLAGS:
            raise InvalidInput("A command argument is not allowed.")
