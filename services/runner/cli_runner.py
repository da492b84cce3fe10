"""The CLI runner: the only place in the product that starts a process.

Users never send a command string. They pick an allow-listed command (a pydantic model of the few
parameters it takes); the model builds the argv, and the runner starts the program by its absolute
path (resolved once, against a fixed search path) with ``shell=False``, in a scratch HOME that holds
the run's AWS profiles and is deleted afterwards, with a minimal environment built from scratch
(never a copy of ``os.environ``), a time-out that kills the whole process group, an output cap,
CPU and memory limits, cancellation and line-by-line output.

``aws-finops`` exits 0 even when every AWS call failed: :func:`judge_aws_finops` decides from its
JSON export and its "Error ..." / "Warning ..." lines, and :func:`run_aws_finops_per_profile` runs
it once per profile to report progress per profile.

Pure service: no web stack, no database; the jobs layer records what the runner returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import queue
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import psutil
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

from services.aws.credentials import ProfileCredentials
from services.aws.regions import AWS_REGIONS
from services.errors import DomainError, InvalidInput, ProgramUnavailable

logger = logging.getLogger(__name__)

RunStatus = Literal["succeeded", "failed", "timed_out", "cancelled"]
OutputFn = Callable[[str], None]
ProgressFn = Callable[[int, str], None]

#: Programs the product may start: allow-list key -> executable name (or an absolute path).
DEFAULT_PROGRAMS: Mapping[str, str] = {"aws-finops": "aws-finops", "aws": "aws"}

#: Where executables are looked up (and the child's PATH): this virtualenv's bin, then the system.
DEFAULT_SEARCH_PATH: tuple[str, ...] = (str(Path(sys.prefix) / "bin"), "/usr/local/bin", "/usr/bin")

#: Variables an operator may add to every child's environment (never user input).
OPERATOR_ENV_NAMES: frozenset[str] = frozenset({
    "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
    "AWS_STS_REGIONAL_ENDPOINTS", "AWS_USE_FIPS_ENDPOINT",
})

#: Flags no built argv may ever carry, whatever a command model returns (defence in depth).
FORBIDDEN_FLAGS: frozenset[str] = frozenset({
    "--endpoint-url", "--no-verify-ssl", "--ca-bundle", "--debug", "--cli-input-json",
    "--cli-input-yaml", "--generate-cli-skeleton", "--config-file", "-C", "--s3-bucket", "-s3",
    "--s3-prefix", "-s3p", "--s3-profile", "-s3s", "--slack", "--all", "-a", "--combine", "-c",
})

_SHELL_METACHARACTERS = frozenset(";&|`$(){}[]<>\\'\"!*?~#%^\n\r\t")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MAX_LINE_BYTES = 64 * 1024
_POLL_SECONDS = 0.05


# --- strict parameter types -----------------------------------------------------------------


def _refuse_unsafe(value: str) -> str:
    """Refuse what must never reach an argv: control and invisible characters, shell
    metacharacters, a leading '-', path traversal; also text that is not valid UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text") from None
    if any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in value):
        raise ValueError("must not contain control or invisible characters")
    if value.startswith("-"):
        raise ValueError("must not start with '-'")
    if any(ch in _SHELL_METACHARACTERS for ch in value):
        raise ValueError("must not contain shell metacharacters")
    if ".." in value or "://" in value:
        raise ValueError("must not contain '..' or '://'")
    return value


def _is_region(value: str) -> str:
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
                   AfterValidator(_is_region)]
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
SecretText = Annotated[str, _STRICT, StringConstraints(pattern=r"^[A-Za-z0-9/+=]{16,128}$")]
SessionToken = Annotated[str, _STRICT, StringConstraints(pattern=r"^[A-Za-z0-9/+=]{16,8192}$")]
ExternalId = Annotated[str, _STRICT, StringConstraints(pattern=r"^[A-Za-z0-9+=,.@:/_-]{2,1224}$")]
StrictInt = Annotated[int, _STRICT]
StrictBool = Annotated[bool, _STRICT]
CostDate = Annotated[dt.date, Field(ge=dt.date(2015, 1, 1), le=dt.date(2100, 1, 1))]


# --- credentials ----------------------------------------------------------------------------


_CREDENTIAL_FIELDS = ("name", "access_key_id", "secret_access_key", "session_token", "region", "role_arn",
                      "source_profile", "external_id")


def _key_profile(profile: ProfileCredentials) -> str:
    """Name of the credentials-file section that holds the keys."""
    if profile.role_arn is None:
        return profile.name
    return profile.source_profile or f"{profile.name}-source"


class _CredentialsCheck(BaseModel):
    """What may be written into an AWS config file: nothing that could open a new section."""

    model_config = ConfigDict(extra="forbid")

    name: ProfileName
    access_key_id: AccessKeyId
    secret_access_key: SecretText
    session_token: SessionToken | None
    region: Region
    role_arn: RoleArn | None
    source_profile: ProfileName | None
    external_id: ExternalId | None

    @model_validator(mode="after")
    def _source_is_another_profile(self) -> _CredentialsCheck:
        if self.source_profile is not None and self.source_profile == self.name:
            raise ValueError("source_profile must name another profile")
        if self.role_arn is None and (self.source_profile or self.external_id):
            raise ValueError("source_profile and external_id need a role_arn")
        return self


def _check_credentials(profiles: Sequence[ProfileCredentials]) -> None:
    key_sections: dict[str, tuple[str, str, str | None]] = {}
    for profile in profiles:
        try:
            _CredentialsCheck.model_validate({f: getattr(profile, f, None) for f in _CREDENTIAL_FIELDS})
        except ValidationError as exc:
            fields = sorted({str(e["loc"][0]) if e["loc"] else "profile" for e in exc.errors()})
            raise InvalidInput("The credentials of an AWS profile are malformed.",
                               details={"fields": fields}) from None
        keys = (profile.access_key_id, profile.secret_access_key, profile.session_token)
        if key_sections.setdefault(_key_profile(profile), keys) != keys:
            raise InvalidInput(f"Two profiles give different keys for '{_key_profile(profile)}'.")
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise InvalidInput("Profile names must be unique.")


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

    def build_args(self, *, output_dir: Path) -> list[str]:
        """Return the arguments after the executable."""
        raise NotImplementedError

    def progress_from_line(self, line: str) -> tuple[int, str] | None:
        """Return (percent, step) when an output line tells progress."""
        return None


def _unique(values: Sequence[str], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")


_RICH_BAR = re.compile(r"^(?P<step>[A-Za-z][^━]*?)\s*━+\s*(?P<pct>\d{1,3})%")


class _AwsFinopsCommand(CliCommand):
    program: ClassVar[str] = "aws-finops"
    mode: ClassVar[Literal["cost", "trend", "audit"]]

    profiles: list[ProfileName] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _profiles_unique(self) -> _AwsFinopsCommand:
        _unique(self.profiles, "profiles")
        return self

    def profile_names(self) -> tuple[str, ...]:
        return tuple(self.profiles)

    def progress_from_line(self, line: str) -> tuple[int, str] | None:
        match = _RICH_BAR.match(line.strip())
        if match:
            return min(int(match["pct"]), 100), match["step"].rstrip(". ")
        return None

    def _common_args(self, regions: Sequence[str], report_name: str, report_types: Sequence[str],
                     output_dir: Path) -> list[str]:
        # --regions always: without it the tool probes every region, two calls each.
        return ["--profiles", *self.profiles, "--regions", *regions, "--report-name", report_name,
                "--report-type", *report_types, "--dir", str(output_dir)]


ReportType = Literal["csv", "json", "pdf"]


def _json_report() -> list[ReportType]:
    return ["json"]


def _with_json(report_types: Sequence[str]) -> list[str]:
    """The JSON export is how a run is judged: it is always written."""
    return list(dict.fromkeys(["json", *report_types]))


class AwsFinopsCost(_AwsFinopsCommand):
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

    @model_validator(mode="after")
    def _one_time_range(self) -> AwsFinopsCost:
        _unique(self.regions, "regions")
        _unique(self.report_types, "report types")
        if self.time_range_days is not None and self.last_month:
            raise ValueError("choose either time_range_days or last_month")
        return self

    def build_args(self, *, output_dir: Path) -> list[str]:
        args = self._common_args(self.regions, self.report_name, _with_json(self.report_types), output_dir)
        if self.last_month:
            args += ["--time-range", "last-month"]
        elif self.time_range_days is not None:
            args += ["--time-range", str(self.time_range_days)]
        if self.tags:
            args += ["--tag", *(f"{key}={value}" for key, value in self.tags.items())]
        return args


class AwsFinopsTrend(_AwsFinopsCommand):
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


class AwsFinopsAudit(_AwsFinopsCommand):
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


def _revalidated(command: CliCommand) -> CliCommand:
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


def _check_argv(argv: Sequence[str]) -> None:
    for arg in argv:
        if not isinstance(arg, str) or not arg or len(arg) > 4096:
            raise InvalidInput("A command argument is malformed.")
        if any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in arg) or "://" in arg:
            raise InvalidInput("A command argument is malformed.")
        if arg.split("=", 1)[0] in FORBIDDEN_FLAGS:
            raise InvalidInput("A command argument is not allowed.")


# --- runner ---------------------------------------------------------------------------------


class CancelToken(threading.Event):
    """Set it (``cancel()``) from any thread to stop a run: the whole process group is killed."""

    def cancel(self) -> None:
        """Ask the run to stop."""
        self.set()


@dataclass(frozen=True)
class RunnerConfig:
    """Operator settings (never user input)."""

    timeout_seconds: float = 900.0
    kill_grace_seconds: float = 5.0
    output_cap_bytes: int = 1_000_000
    cpu_seconds: int | None = 900
    memory_bytes: int | None = 1024 * 1024 * 1024
    file_size_bytes: int | None = 256 * 1024 * 1024
    #: e.g. a moto server in tests; the AWS tools honour AWS_ENDPOINT_URL.
    endpoint_url: str | None = None
    #: Each run's report directory is created inside (default: the system temp directory).
    output_root: Path | None = None
    #: Scratch HOMEs are created inside (default: the system temp directory).
    scratch_root: Path | None = None
    search_path: tuple[str, ...] = DEFAULT_SEARCH_PATH
    #: Operator-supplied variables, names from OPERATOR_ENV_NAMES only (proxies, CA bundle).
    extra_env: Mapping[str, str] = field(default_factory=dict)
    default_region: str = "us-east-1"

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.kill_grace_seconds <= 0 or self.output_cap_bytes <= 0:
            raise ValueError("timeout, grace and output cap must be positive")
        if self.endpoint_url is not None and not re.fullmatch(
                r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?", self.endpoint_url):
            raise ValueError("endpoint_url must be a plain http(s) URL")
        for name, value in self.extra_env.items():
            if name not in OPERATOR_ENV_NAMES or any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in value):
                raise ValueError(f"extra_env may not set {name!r}")
        if not all(os.path.isabs(p) for p in self.search_path):
            raise ValueError("search_path entries must be absolute")
        _is_region(self.default_region)


@dataclass(frozen=True)
class RunResult:
    """What one process did."""

    program: str
    command: str
    argv: tuple[str, ...]
    status: RunStatus
    exit_code: int | None
    #: Why the run did not succeed (None when it did).
    reason: str | None
    stdout: str
    truncated: bool
    wall_seconds: float
    cpu_seconds: float
    #: VmHWM of the process tree, sampled every 50 ms while it runs
    peak_rss_bytes: int
    #: The run's own report directory (the caller keeps or deletes it); None when it stayed empty.
    output_dir: Path | None
    files: tuple[Path, ...]
    messages: tuple[str, ...] = ()

    @property
    def is_success(self) -> bool:
        return self.status == "succeeded"


_EOF = object()
_CUT = object()


def _pump(stream: Any, lines: queue.Queue[object], cap: int) -> None:
    """Read the child's output; keep the first ``cap`` bytes, drain the rest so it never blocks."""
    kept, cut = 0, False
    try:
        while chunk := stream.readline(_MAX_LINE_BYTES):
            if cut:
                continue
            if kept + len(chunk) > cap:
                if kept < cap:
                    lines.put(chunk[: cap - kept])
                lines.put(_CUT)
                kept, cut = cap, True
                continue
            kept += len(chunk)
            lines.put(chunk)
    except (OSError, ValueError):
        logger.debug("output pipe closed while reading", exc_info=True)
    finally:
        lines.put(_EOF)


def _has_exited(pid: int) -> bool:
    """True once the child has exited; it stays a zombie (its pid and group id reserved) until reaped."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        logger.warning("not allowed to signal process group %s", pgid)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_processes(processes: Sequence[psutil.Process], sig: signal.Signals) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)  # psutil checks that the pid was not reused


def _high_water_rss(pid: int, tree: Sequence[psutil.Process]) -> int:
    """Peak resident memory (VmHWM, bytes) of a process and its live descendants.

    Sampled from /proc while the program runs: the rusage of a reaped child is no good here, since
    Linux starts a forked child's ru_maxrss at its parent's (the worker's) high-water mark.
    """
    total = 0
    for candidate in [pid, *(p.pid for p in tree)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        total += int(match[1]) * 1024 if match else 0
    return total


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _list_files(directory: Path) -> tuple[Path, ...]:
    """Regular files only: a symlink planted by a program is never offered as a result."""
    found: list[Path] = []
    for root, _dirs, names in os.walk(directory, followlinks=False):
        for name in names:
            path = Path(root) / name
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path)
    return tuple(sorted(found))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_aws_files(aws_dir: Path, profiles: Sequence[ProfileCredentials]) -> tuple[Path, Path]:
    """Write an AWS config and credentials file (mode 0600) holding the given profiles."""
    _check_credentials(profiles)
    config_lines: list[str] = []
    credential_lines: list[str] = []
    written_keys: set[str] = set()
    for profile in profiles:
        config_lines += [f"[profile {profile.name}]", f"region = {profile.region}", "output = json"]
        if profile.role_arn is not None:
            config_lines += [f"role_arn = {profile.role_arn}", f"source_profile = {_key_profile(profile)}"]
            if profile.external_id is not None:
                config_lines.append(f"external_id = {profile.external_id}")
        config_lines.append("")
        if _key_profile(profile) not in written_keys:
            written_keys.add(_key_profile(profile))
            credential_lines += [f"[{_key_profile(profile)}]", f"aws_access_key_id = {profile.access_key_id}",
                                 f"aws_secret_access_key = {profile.secret_access_key}"]
            if profile.session_token is not None:
                credential_lines.append(f"aws_session_token = {profile.session_token}")
            credential_lines.append("")
    aws_dir.mkdir(mode=0o700, exist_ok=True)
    config, credentials = aws_dir / "config", aws_dir / "credentials"
    _write_private(config, "\n".join(config_lines))
    _write_private(credentials, "\n".join(credential_lines))
    return config, credentials


class CliRunner:
    """Starts allow-listed programs; executables are resolved once, when the runner is built.

    Tests may pass extra ``programs`` (key -> executable name or absolute path); the production
    allow-list is :data:`DEFAULT_PROGRAMS`.
    """

    def __init__(self, config: RunnerConfig | None = None, *, programs: Mapping[str, str] | None = None) -> None:
        self.config = config or RunnerConfig()
        self._programs = dict(DEFAULT_PROGRAMS if programs is None else programs)
        self._executables = {key: self._resolve(target) for key, target in self._programs.items()}
        self._lock = threading.Lock()
        self._spawn_count = 0
        for key, path in self._executables.items():
            if path is None:
                logger.warning("program %s (%s) not found in %s", key, self._programs[key],
                               os.pathsep.join(self.config.search_path))

    def _resolve(self, target: str) -> str | None:
        if os.path.isabs(target):
            return target if os.path.isfile(target) and os.access(target, os.X_OK) else None
        found = shutil.which(target, path=os.pathsep.join(self.config.search_path))
        return os.path.abspath(found) if found else None

    @property
    def spawn_count(self) -> int:
        """How many processes this runner has started."""
        return self._spawn_count

    def available_programs(self) -> dict[str, str | None]:
        """Return each allow-listed program's absolute path, or None when it is not installed."""
        return dict(self._executables)

    def executable(self, program: str) -> str:
        """Return a program's absolute path; raise when it is not allow-listed or not installed."""
        if program not in self._executables:
            raise InvalidInput("This program is not allowed.")
        path = self._executables[program]
        if path is None:
            raise ProgramUnavailable(
                f"The '{program}' program is not installed on this server.",
                details={"program": program, "searched": list(self.config.search_path)})
        return path

    def build_argv(self, command: CliCommand, *, output_dir: Path) -> list[str]:
        """Validate the command again and return its full argv (absolute executable first)."""
        command = _revalidated(command)
        argv = [self.executable(command.program), *command.build_args(output_dir=output_dir)]
        _check_argv(argv[1:])
        return argv

    def _environment(self, home: Path, tmp: Path, config: Path, credentials: Path,
                     profiles: Sequence[ProfileCredentials]) -> dict[str, str]:
        """The child's whole environment, from scratch: no application secret can leak into it."""
        env = {
            "PATH": os.pathsep.join(self.config.search_path),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_DEFAULT_REGION": profiles[0].region if profiles else self.config.default_region,
            "AWS_EC2_METADATA_DISABLED": "true",  # never fall back to the host's instance role
            "AWS_PAGER": "",
            "PYTHONUNBUFFERED": "1",  # lines arrive as they are printed: live progress
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "200",  # Rich wraps at 80 columns otherwise, splitting "Error ..." lines
        }
        if self.config.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.config.endpoint_url
        env.update(self.config.extra_env)
        return env

    def _limit(self, pid: int) -> None:
        """CPU, memory, file-size and core limits on the started child, through prlimit(2).

        Applied right after the spawn rather than in a ``preexec_fn`` (which is not safe in a
        threaded worker); the program runs a few microseconds unlimited, which is acceptable
        for allow-listed programs: the limits guard against runaways, not a hostile binary.
        """
        cfg = self.config
        limits: list[tuple[int, tuple[int, int]]] = [(resource.RLIMIT_CORE, (0, 0))]
        if cfg.cpu_seconds is not None:
            grace = max(1, int(cfg.kill_grace_seconds))
            limits.append((resource.RLIMIT_CPU, (cfg.cpu_seconds, cfg.cpu_seconds + grace)))
        if cfg.memory_bytes is not None:
            limits.append((resource.RLIMIT_AS, (cfg.memory_bytes, cfg.memory_bytes)))
        if cfg.file_size_bytes is not None:
            limits.append((resource.RLIMIT_FSIZE, (cfg.file_size_bytes, cfg.file_size_bytes)))
        for which, values in limits:
            try:
                psutil.Process(pid).rlimit(which, values)
            except psutil.NoSuchProcess:
                return
            except (psutil.AccessDenied, OSError, ValueError):
                logger.warning("could not set resource limit %s on pid %s", which, pid, exc_info=True)

    def _spawn(self, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        with self._lock:
            self._spawn_count += 1
        try:
            return subprocess.Popen(  # noqa: S603 - argv list from an allow-listed, validated command model
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=cwd, env=env, shell=False, close_fds=True, start_new_session=True)
        except OSError as exc:
            logger.error("could not start %s: %s", argv[0], exc)
            raise ProgramUnavailable("The program could not be started on this server.",
                                     details={"program": os.path.basename(argv[0])}) from exc

    def _stop(self, proc: subprocess.Popen[bytes], seen: set[psutil.Process]) -> bool:
        """Stop the whole process tree: SIGTERM, then SIGKILL after the grace. True if SIGKILL was needed."""
        tree = list(seen | set(_descendants(proc.pid)))  # also those that left the group with setsid()
        _signal_group(proc.pid, signal.SIGTERM)
        _signal_processes(tree, signal.SIGTERM)
        deadline = time.monotonic() + self.config.kill_grace_seconds
        while time.monotonic() < deadline and not _has_exited(proc.pid):
            time.sleep(_POLL_SECONDS)
        needed_kill = not _has_exited(proc.pid)
        # The leader is at most a zombie here, so its group id cannot have been reused.
        _signal_group(proc.pid, signal.SIGKILL)
        _signal_processes(tree, signal.SIGKILL)
        return needed_kill

    def run(self, command: CliCommand, *, profiles: Sequence[ProfileCredentials] = (),
            timeout: float | None = None, cancel: threading.Event | None = None,
            on_output: OutputFn | None = None, on_progress: ProgressFn | None = None) -> RunResult:
        """Run an allow-listed command with the given profiles and return what it did.

        Callbacks run in the calling thread. Raises InvalidInput for a bad command or missing
        credentials, ProgramUnavailable when the program is not installed; nothing is started then.
        """
        command = _revalidated(command)
        executable = self.executable(command.program)
        needed = command.profile_names()
        supplied = {p.name: p for p in profiles}
        missing = [name for name in needed if name not in supplied]
        if missing:
            raise InvalidInput("No credentials were supplied for a profile of this command.",
                               details={"profiles": missing})
        _check_credentials(profiles)
        used = [supplied[name] for name in needed]
        limit = min(timeout, self.config.timeout_seconds) if timeout else self.config.timeout_seconds

        output_dir = Path(tempfile.mkdtemp(prefix=f"{command.program}-", dir=self.config.output_root))
        scratch = Path(tempfile.mkdtemp(prefix="finops-run-", dir=self.config.scratch_root))
        proc: subprocess.Popen[bytes] | None = None
        reader: threading.Thread | None = None
        try:
            home, tmp = scratch / "home", scratch / "tmp"
            home.mkdir(mode=0o700)
            tmp.mkdir(mode=0o700)
            config, credentials = _write_aws_files(home / ".aws", used)
            argv = [executable, *command.build_args(output_dir=output_dir)]
            _check_argv(argv[1:])
            env = self._environment(home, tmp, config, credentials, used)
            logger.info("starting %s: %s", command.name, argv)
            started = time.monotonic()
            proc = self._spawn(argv, env, home)
            self._limit(proc.pid)
            lines: queue.Queue[object] = queue.Queue()
            reader = threading.Thread(target=_pump, args=(proc.stdout, lines, self.config.output_cap_bytes),
                                      name=f"cli-runner-{proc.pid}", daemon=True)
            reader.start()
            return self._supervise(command, proc, reader, lines, argv=argv, started=started, limit=limit,
                                   cancel=cancel, on_output=on_output, on_progress=on_progress,
                                   output_dir=output_dir)
        finally:
            if proc is None:
                shutil.rmtree(output_dir, ignore_errors=True)
            elif proc.returncode is None:
                # A callback raised, or the worker is shutting down: no process outlives the run.
                _signal_group(proc.pid, signal.SIGKILL)
                _signal_processes(_descendants(proc.pid), signal.SIGKILL)
                proc.wait()
            if reader is not None:
                reader.join(timeout=self.config.kill_grace_seconds)
            if proc is not None and proc.stdout is not None and not (reader and reader.is_alive()):
                # Closing while the reader still reads would block on the buffer's lock.
                proc.stdout.close()
            shutil.rmtree(scratch, ignore_errors=True)
            if scratch.exists():
                logger.error("scratch HOME %s could not be removed", scratch)

    def _supervise(self, command: CliCommand, proc: subprocess.Popen[bytes], reader: threading.Thread,
                   lines: queue.Queue[object], *, argv: list[str], started: float, limit: float,
                   cancel: threading.Event | None, on_output: OutputFn | None,
                   on_progress: ProgressFn | None, output_dir: Path) -> RunResult:
        cap = self.config.output_cap_bytes
        grace = self.config.kill_grace_seconds
        chunks: list[bytes] = []
        pending = b""
        truncated = eof = exited = False
        stopped: Literal["timed_out", "cancelled"] | None = None
        needed_kill = False
        exited_at = 0.0
        peak = 0
        seen: set[psutil.Process] = set()  # every descendant sampled, even one that called setsid()

        def emit(raw: bytes) -> None:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if on_output is not None:
                on_output(line)
            if on_progress is not None:
                progress = command.progress_from_line(line)
                if progress is not None:
                    on_progress(*progress)

        while True:
            if not exited:
                tree = _descendants(proc.pid)
                seen.update(tree)
                peak = max(peak, _high_water_rss(proc.pid, tree))
            try:
                item = lines.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                item = None
            while item is not None:
                if item is _EOF:
                    eof = True
                elif item is _CUT:
                    truncated = True
                elif isinstance(item, bytes):
                    chunks.append(item)
                    pending += item
                    if pending.endswith(b"\n") or len(pending) >= _MAX_LINE_BYTES:
                        emit(pending)
                        pending = b""
                try:
                    item = lines.get_nowait()
                except queue.Empty:
                    item = None
            if not exited and _has_exited(proc.pid):
                exited, exited_at = True, time.monotonic()
                # Leftovers (a child still holding the pipe, in the group or not) go with the leader.
                _signal_group(proc.pid, signal.SIGKILL)
                _signal_processes(list(seen), signal.SIGKILL)
            if exited and (eof or time.monotonic() - exited_at > grace):
                break
            if not exited and stopped is None:
                if cancel is not None and cancel.is_set():
                    stopped = "cancelled"
                elif time.monotonic() - started > limit:
                    stopped = "timed_out"
                if stopped is not None:
                    needed_kill = self._stop(proc, seen)
        if pending:
            emit(pending)
        if not eof:
            logger.warning("output of pid %s still open after exit; a descendant escaped the group", proc.pid)

        rusage = None
        try:
            _, wait_status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(wait_status)
        except ChildProcessError:
            proc.returncode = proc.returncode if proc.returncode is not None else -1
        wall = time.monotonic() - started
        reader.join(timeout=grace)

        stdout = b"".join(chunks).decode("utf-8", errors="replace")
        messages: list[str] = []
        if truncated:
            cut = f"output cut at {cap} bytes"
            messages.append(cut)
            stdout += f"\n[{cut}]\n"
        exit_code = proc.returncode
        status: RunStatus
        reason: str | None
        if stopped == "cancelled":
            status, reason = "cancelled", "cancelled; the process group was killed"
        elif stopped == "timed_out":
            how = f"SIGTERM, then SIGKILL after {grace:g} s" if needed_kill else "SIGTERM"
            status, reason = "timed_out", f"timed out after {limit:g} s; the process group was stopped ({how})"
        elif exit_code is not None and exit_code < 0:
            name = _signal_name(-exit_code)
            if name == "SIGXCPU":
                detail = f"CPU time limit of {self.config.cpu_seconds} s exceeded"
            elif name == "SIGKILL":
                detail = "killed by SIGKILL (CPU or memory limit, or out of memory)"
            else:
                detail = f"killed by {name}"
            status, reason = "failed", detail
        elif exit_code != 0:
            status, reason = "failed", f"exited with code {exit_code}"
        else:
            status, reason = "succeeded", None
        if reason:
            messages.insert(0, reason)
        cpu = (rusage.ru_utime + rusage.ru_stime) if rusage else 0.0
        files = _list_files(output_dir)
        if not any(output_dir.iterdir()):
            output_dir.rmdir()  # nothing to keep (an aws CLI call writes no file)
        result = RunResult(program=command.program, command=command.name, argv=tuple(argv), status=status,
                           exit_code=exit_code, reason=reason, stdout=stdout, truncated=truncated,
                           wall_seconds=round(wall, 3), cpu_seconds=round(cpu, 3), peak_rss_bytes=peak,
                           output_dir=output_dir if files else None, files=files, messages=tuple(messages))
        logger.info("%s finished: %s (exit %s, %.2f s wall, %.2f s CPU, %d MiB peak)", command.name, status,
                    exit_code, wall, cpu, peak // (1024 * 1024))
        return result


def parse_aws_json(result: RunResult) -> Any:
    """Return the JSON an ``aws`` CLI run printed; raise when the run failed or was cut."""
    if not result.is_success:
        raise DomainError(f"The AWS CLI call failed: {result.reason}.")
    if result.truncated:
        raise DomainError("The AWS CLI output was too large and was cut.")
    try:
        return json.loads(result.stdout or "null", parse_float=Decimal)
    except json.JSONDecodeError:
        raise DomainError("The AWS CLI printed something other than JSON.") from None


# --- aws-finops: judging a run and reading its JSON -----------------------------------------


@dataclass(frozen=True)
class FinopsBudget:
    name: str
    limit: Decimal
    actual: Decimal
    forecast: Decimal | None

    @property
    def is_exceeded(self) -> bool:
        return self.actual > self.limit


@dataclass(frozen=True)
class FinopsCostReport:
    """One profile's cost dashboard, as aws-finops exported it."""

    profile: str
    account_id: str
    current_period_name: str
    previous_period_name: str
    current_total: Decimal
    previous_total: Decimal
    current_by_service: dict[str, Decimal]
    previous_by_service: dict[str, Decimal]
    budget_lines: tuple[str, ...]
    ec2_instances_by_state: dict[str, int]
    percent_change: Decimal | None


@dataclass(frozen=True)
class FinopsAuditReport:
    """One profile's audit: resource ids per region."""

    profile: str
    account_id: str
    untagged_resources: dict[str, dict[str, tuple[str, ...]]]
    stopped_instances: dict[str, tuple[str, ...]]
    unused_volumes: dict[str, tuple[str, ...]]
    unused_eips: dict[str, tuple[str, ...]]
    budgets: tuple[FinopsBudget, ...]

    @property
    def budget_alerts(self) -> tuple[FinopsBudget, ...]:
        return tuple(b for b in self.budgets if b.is_exceeded)


@dataclass(frozen=True)
class FinopsTrendReport:
    """One profile's monthly costs (label such as "Jan 2025", amount)."""

    profile: str
    account_id: str
    monthly_costs: tuple[tuple[str, Decimal], ...]


FinopsReport = FinopsCostReport | FinopsAuditReport | FinopsTrendReport


@dataclass(frozen=True)
class FinopsProfileResult:
    """The judged outcome of one aws-finops run for one profile."""

    profile: str
    mode: Literal["cost", "trend", "audit"]
    status: RunStatus
    reason: str | None
    account_id: str | None
    report: FinopsReport | None
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    run: RunResult

    @property
    def files(self) -> tuple[Path, ...]:
        return self.run.files


_LOG_TIME = re.compile(r"^\s*(?:\[\d{2}:\d{2}:\d{2}\]\s*)?")
_LOG_SOURCE = re.compile(r"\s{2,}[\w.]+\.py:\d+\s*$")
_UNKNOWN_ACCOUNTS = frozenset({"", "Unknown", "Error"})


def classify_aws_finops_output(stdout: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the "Error ..." and "Warning ..." lines of aws-finops output (Rich log prefixes removed)."""
    errors: list[str] = []
    warnings: list[str] = []
    for raw in stdout.splitlines():
        line = _LOG_SOURCE.sub("", _LOG_TIME.sub("", raw, count=1)).strip()
        if re.match(r"Error\b", line) or line.startswith("None of the specified profiles"):
            errors.append(line)
        elif re.match(r"Warning\b", line):
            warnings.append(line)
    return tuple(errors), tuple(warnings)


def _dec(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError("not a number")
    return Decimal(str(value))


def _ids_by_region(value: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ValueError("not a mapping")
    return {str(region): tuple(str(i) for i in ids) for region, ids in value.items()}


def _service_costs(value: object) -> dict[str, Decimal]:
    if not isinstance(value, list):
        raise ValueError("not a list")
    return {str(service): _dec(amount) for service, amount in value}


def _read_entry(path: Path, profile: str) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
        raise ValueError("expected a list with one profile")
    entry = data[0]
    if entry.get("profile") != profile:
        raise ValueError("the report is about another profile")
    return entry


def _cost_report(entry: dict[str, Any]) -> FinopsCostReport:
    change = entry.get("percent_change_in_total_cost")
    return FinopsCostReport(
        profile=str(entry["profile"]), account_id=str(entry["account_id"]),
        current_period_name=str(entry["current_period_name"]),
        previous_period_name=str(entry["previous_period_name"]),
        current_total=_dec(entry["current_month"]), previous_total=_dec(entry["last_month"]),
        current_by_service=_service_costs(entry["service_costs"]),
        previous_by_service=_service_costs(entry["previous_service_costs"]),
        budget_lines=tuple(str(line) for line in entry["budget_info"]),
        ec2_instances_by_state={str(k): int(v) for k, v in entry["ec2_summary"].items()},
        percent_change=None if change is None else _dec(change))


def _audit_report(entry: dict[str, Any]) -> FinopsAuditReport:
    budgets = tuple(
        FinopsBudget(name=str(b["name"]), limit=_dec(b["limit"]), actual=_dec(b["actual"]),
                     forecast=None if b.get("forecast") is None else _dec(b["forecast"]))
        for b in entry["budget_alerts"])  # despite its name, the export holds every budget
    return FinopsAuditReport(
        profile=str(entry["profile"]), account_id=str(entry["account_id"]),
        untagged_resources={str(s): _ids_by_region(m) for s, m in entry["untagged_resources"].items()},
        stopped_instances=_ids_by_region(entry["stopped_instances"]),
        unused_volumes=_ids_by_region(entry["unused_volumes"]),
        unused_eips=_ids_by_region(entry["unused_eips"]), budgets=budgets)


def _trend_report(entry: dict[str, Any]) -> FinopsTrendReport:
    return FinopsTrendReport(profile=str(entry["profile"]), account_id=str(entry["account_id"]),
                             monthly_costs=tuple((str(m), _dec(c)) for m, c in entry["monthly_costs"]))


def judge_aws_finops(command: CliCommand, run: RunResult) -> FinopsProfileResult:
    """Decide whether one aws-finops run (one profile) worked: its exit code says little.

    Failed when the run failed, when no JSON export was written, when the export says
    ``success: false`` or carries no account id ("Unknown", "Error": STS failed), or when the
    output has "Error ..." lines (a failed Cost Explorer call is exported as a cost of 0).
    "Warning ..." lines (a region or service that could not be read) are kept, not fatal.
    """
    if not isinstance(command, _AwsFinopsCommand) or len(command.profiles) != 1:
        raise InvalidInput("Judge one aws-finops run for one profile.")
    profile, mode = command.profiles[0], command.mode
    errors, warnings = classify_aws_finops_output(run.stdout)

    def outcome(status: RunStatus, reason: str | None, account_id: str | None = None,
                report: FinopsReport | None = None) -> FinopsProfileResult:
        return FinopsProfileResult(profile=profile, mode=mode, status=status, reason=reason,
                                   account_id=account_id, report=report, errors=errors,
                                   warnings=warnings, run=run)

    if run.status != "succeeded":
        return outcome(run.status, run.reason)
    exports = [f for f in run.files if f.suffix == ".json"]
    if len(exports) != 1:
        if mode == "trend" and "No trend data available" in run.stdout:
            return outcome("failed", "aws-finops found no trend data for this profile")
        first = f": {errors[0]}" if errors else ""
        return outcome("failed", f"aws-finops wrote no JSON report{first}")
    try:
        entry = _read_entry(exports[0], profile)
        if mode == "cost" and entry.get("success") is not True:
            return outcome("failed", f"aws-finops could not process the profile: {entry.get('error')}")
        report: FinopsReport
        if mode == "cost":
            report = _cost_report(entry)
        elif mode == "audit":
            report = _audit_report(entry)
        else:
            report = _trend_report(entry)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError, UnicodeDecodeError) as exc:
        logger.warning("unexpected aws-finops JSON in %s: %s", exports[0], exc)
        return outcome("failed", "aws-finops wrote a JSON report of an unexpected shape")
    account_id = entry.get("account_id")
    if account_id is None or str(account_id) in _UNKNOWN_ACCOUNTS:
        return outcome("failed", "aws-finops could not identify the account (the STS call failed)"
                       + (f": {warnings[0]}" if warnings else ""), None, report)
    if errors:
        return outcome("failed", f"aws-finops reported {len(errors)} error(s): {errors[0]}", str(account_id), report)
    return outcome("succeeded", None, str(account_id), report)


def run_aws_finops_per_profile(*, runner: CliRunner, command: AwsFinopsCost | AwsFinopsTrend | AwsFinopsAudit,
                               profiles: Sequence[ProfileCredentials], timeout_per_profile: float | None = None,
                               cancel: threading.Event | None = None, on_output: OutputFn | None = None,
                               on_progress: ProgressFn | None = None) -> Iterator[FinopsProfileResult]:
    """Run aws-finops once per profile of the command, each in its own output dir; yield judged results.

    Progress goes from 0 to 100 over the profiles. After a cancelled run the remaining profiles
    are not started.
    """
    checked = _revalidated(command)
    assert isinstance(checked, _AwsFinopsCommand)  # _revalidated keeps the class
    names = checked.profiles
    by_name = {p.name: p for p in profiles}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise InvalidInput("No credentials were supplied for a profile of this command.",
                           details={"profiles": missing})
    total = len(names)
    for index, name in enumerate(names):
        if cancel is not None and cancel.is_set():
            return
        if on_progress is not None:
            on_progress(index * 100 // total, f"profile {name} ({index + 1}/{total})")

        def inner_progress(percent: int, step: str, _index: int = index, _name: str = name) -> None:
            if on_progress is not None:
                on_progress((_index * 100 + percent) // total, f"profile {_name}: {step}")

        single = checked.model_copy(update={"profiles": [name]})
        run = runner.run(single, profiles=[by_name[name]], timeout=timeout_per_profile, cancel=cancel,
                         on_output=on_output, on_progress=inner_progress)
        judged = judge_aws_finops(single, run)
        if on_progress is not None:
            on_progress((index + 1) * 100 // total, f"profile {name}: {judged.status}")
        yield judged
        if judged.status == "cancelled":
            return
