"""aws-finops: one run per profile, judged from its JSON export and its output, never its exit code.

``aws-finops`` exits 0 even when every AWS call failed: :func:`judge_aws_finops` decides from its
JSON export and its "Error ..." / "Warning ..." lines, and :func:`run_aws_finops_per_profile` runs
it once per profile to report progress per profile.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from services.aws.credentials import ProfileCredentials
from services.errors import InvalidInput
from services.runner.cli_runner import CliRunner, OutputFn, ProgressFn, RunResult, RunStatus
from services.runner.commands import (
    AwsFinopsAudit,
    AwsFinopsCommand,
    AwsFinopsCost,
    AwsFinopsTrend,
    CliCommand,
    revalidate,
)

logger = logging.getLogger(__name__)


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
    if not isinstance(command, AwsFinopsCommand) or len(command.profiles) != 1:
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
    checked = revalidate(command)
    assert isinstance(checked, AwsFinopsCommand)  # revalidate keeps the class
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
