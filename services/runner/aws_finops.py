"""aws-finops: runs over groups of profiles, judged per profile from its JSON export and its
output, never its exit code.

``aws-finops`` exits 0 even when every AWS call failed: :func:`judge_aws_finops_group` decides
from its JSON export and its "Error ..." / "Warning ..." lines. :func:`run_aws_finops_per_profile`
runs the profiles in at most ``RunnerConfig.concurrency`` groups at once, one process per group
(``--profiles a b c``), so a job pays for the tool's start once per group, not per profile.
A cost run is led by a keyless profile (``commands.SAMPLE_PROFILE``), so that its first, extra
query of costs (only to title its table) sends no request: a job makes no more Cost Explorer
requests than the tool run by hand over the same profiles.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import queue
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
    #: The process that ran this profile, with others of its group.
    run: RunResult
    #: This profile's own report files (split from the group's exports).
    files: tuple[Path, ...] = ()


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


def _read_entries(path: Path, profiles: Sequence[str], sample: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The export's entry of each profile (some may be missing); anything else is a ValueError."""
    data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise ValueError("expected a list of profiles")
    entries: dict[str, dict[str, Any]] = {}
    for entry in data:
        name = entry.get("profile")
        if name in sample:
            continue
        if name not in profiles or name in entries:
            raise ValueError("the report is about another profile")
        entries[name] = entry
    if not entries:
        raise ValueError("the report holds none of the profiles")
    return entries


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


_SAMPLE_NOISE = "Unable to locate credentials"  # botocore's words for the keyless profile's calls


def _split_exports(run: RunResult, profiles: Sequence[str]) -> dict[str, tuple[Path, ...]]:
    """Write each profile's own JSON and CSV export (its entry, its row) from the group's ones.

    The tool writes one file per format and run; a profile's results keep the files it would
    have written alone (the keyless profile left out). A PDF is never split: runs asking for one
    hold one profile (see :func:`plan_groups`).
    """
    split: dict[str, list[Path]] = {name: [] for name in profiles}
    for path in run.files:
        if path.suffix not in (".json", ".csv"):
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            text = handle.read()
        for name in profiles:
            folder = path.parent / "profiles" / name
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if path.suffix == ".json":
                entries = [e for e in json.loads(text) if isinstance(e, dict) and e.get("profile") == name]
                if not entries:
                    continue
                content = json.dumps(entries, indent=4)
            else:
                rows = list(csv.reader(io.StringIO(text, newline="")))
                mine = [row for row in rows[1:] if row and row[0] == name]
                if not mine:
                    continue
                buffer = io.StringIO(newline="")
                csv.writer(buffer).writerows([rows[0], *mine])
                content = buffer.getvalue()
            target = folder / path.name
            target.write_text(content, encoding="utf-8", newline="")
            split[name].append(target)
        path.unlink()
    return {name: tuple(files) for name, files in split.items()}


def _mentions(line: str, profile: str) -> bool:
    return re.search(rf"\bprofile '?{re.escape(profile)}'?(?![\w.-])", line) is not None


def judge_aws_finops_group(command: CliCommand, run: RunResult) -> list[FinopsProfileResult]:
    """Decide, for each profile of one aws-finops run, whether it worked: the exit code says little.

    A profile failed when the run failed, when the JSON export is missing or has no entry for it,
    when its entry says ``success: false`` or carries no account id ("Unknown", "Error": STS
    failed), or when the output has "Error ..." lines (a failed Cost Explorer call is exported as
    a cost of 0). An error line that names a profile counts against that one; the tool names none
    in most, and such a line counts against every profile of the run. "Warning ..." lines (a
    region or service that could not be read) are kept, not fatal. The keyless profile's lines
    and entry are left out.
    """
    if not isinstance(command, AwsFinopsCommand):
        raise InvalidInput("Judge an aws-finops run.")
    names, mode, sample = list(command.profiles), command.mode, command.keyless_profile_names()
    errors, warnings = classify_aws_finops_output(run.stdout)
    if sample:
        errors = tuple(e for e in errors if _SAMPLE_NOISE not in e)
        warnings = tuple(w for w in warnings if _SAMPLE_NOISE not in w)
    named = {name: tuple(e for e in errors if _mentions(e, name)) for name in names}
    unnamed = tuple(e for e in errors if not any(_mentions(e, name) for name in names))
    # Until the export is read, a run's files are the first profile's (they are kept with it).
    files: dict[str, tuple[Path, ...]] = {names[0]: run.files}

    def outcome(profile: str, status: RunStatus, reason: str | None, account_id: str | None = None,
                report: FinopsReport | None = None) -> FinopsProfileResult:
        return FinopsProfileResult(profile=profile, mode=mode, status=status, reason=reason,
                                   account_id=account_id, report=report, errors=named[profile] + unnamed,
                                   warnings=warnings, run=run, files=files.get(profile, ()))

    def no_trend_data(profile: str) -> bool:
        return mode == "trend" and (f"No trend data available for profile {profile}" in run.stdout
                                    or (len(names) == 1 and "No trend data available" in run.stdout))

    if run.status != "succeeded":
        return [outcome(name, run.status, run.reason) for name in names]
    exports = [f for f in run.files if f.suffix == ".json"]
    if len(exports) != 1:
        first = f": {errors[0]}" if errors else ""
        return [outcome(name, "failed", "aws-finops found no trend data for this profile") if no_trend_data(name)
                else outcome(name, "failed", f"aws-finops wrote no JSON report{first}") for name in names]
    try:
        entries = _read_entries(exports[0], names, sample)
        if len(names) > 1 or sample:
            files = _split_exports(run, names)
    except (ValueError, UnicodeDecodeError, OSError, csv.Error) as exc:
        logger.warning("unexpected aws-finops JSON in %s: %s", exports[0], exc)
        return [outcome(name, "failed", "aws-finops wrote a JSON report of an unexpected shape") for name in names]
    return [_judge_entry(name, mode, entries.get(name), outcome, no_trend_data(name)) for name in names]


def _judge_entry(name: str, mode: str, entry: dict[str, Any] | None, outcome: Any,
                 no_trend_data: bool) -> FinopsProfileResult:
    result: FinopsProfileResult
    if entry is None:
        if no_trend_data:
            result = outcome(name, "failed", "aws-finops found no trend data for this profile")
        else:
            result = outcome(name, "failed", "aws-finops wrote no report for this profile")
        return result
    try:
        if mode == "cost" and entry.get("success") is not True:
            result = outcome(name, "failed", f"aws-finops could not process the profile: {entry.get('error')}")
            return result
        report: FinopsReport
        if mode == "cost":
            report = _cost_report(entry)
        elif mode == "audit":
            report = _audit_report(entry)
        else:
            report = _trend_report(entry)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        logger.warning("unexpected aws-finops JSON for profile %s: %s", name, exc)
        result = outcome(name, "failed", "aws-finops wrote a JSON report of an unexpected shape")
        return result
    account_id = entry.get("account_id")
    checked = outcome(name, "succeeded", None, str(account_id), report)
    if account_id is None or str(account_id) in _UNKNOWN_ACCOUNTS:
        result = outcome(name, "failed", "aws-finops could not identify the account (the STS call failed)"
                         + (f": {checked.warnings[0]}" if checked.warnings else ""), None, report)
    elif checked.errors:
        result = outcome(name, "failed", f"aws-finops reported {len(checked.errors)} error(s): {checked.errors[0]}",
                         str(account_id), report)
    else:
        result = checked
    return result


def judge_aws_finops(command: CliCommand, run: RunResult) -> FinopsProfileResult:
    """Judge one aws-finops run for one profile (see :func:`judge_aws_finops_group`)."""
    if not isinstance(command, AwsFinopsCommand) or len(command.profiles) != 1:
        raise InvalidInput("Judge one aws-finops run for one profile.")
    (result,) = judge_aws_finops_group(command, run)
    return result


def plan_groups(command: AwsFinopsCommand, concurrency: int) -> list[list[str]]:
    """Split the command's profiles, in order, into at most ``concurrency`` groups of even size.

    Only cost runs are grouped: a group saves the first "sample" requests of each process. Trend
    and audit runs cost the same per profile either way, so each profile runs alone (and reports its
    own progress); so does a run asking for a PDF (a PDF cannot be split per profile). At most
    ``concurrency`` of the runs go at once whatever their number.
    """
    names = list(command.profiles)
    report_types = getattr(command, "report_types", ["json"])
    is_grouped = isinstance(command, AwsFinopsCost) and "pdf" not in report_types
    count = max(1, min(concurrency, len(names))) if is_grouped else len(names)
    size, extra = divmod(len(names), count)
    groups, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        groups.append(names[start:end])
        start = end
    return [g for g in groups if g]


def leads_with_sample(command: AwsFinopsCommand) -> bool:
    """Whether a run of this command is led by the keyless profile (a cost run without a PDF,
    whose table would show that profile's empty row)."""
    return isinstance(command, AwsFinopsCost) and "pdf" not in command.report_types


def expected_ce_requests(command: AwsFinopsCommand, concurrency: int) -> int:
    """Cost Explorer requests a job of this command makes (measured against moto, aws-finops 2.3.0).

    Cost: 4 per profile, and 4 more per run when the run is not led by the keyless profile (the
    tool's table title query of the first profile). Trend: 1 per profile. Audit: none.
    """
    profiles = len(command.profiles)
    if isinstance(command, AwsFinopsCost):
        runs = 0 if leads_with_sample(command) else len(plan_groups(command, concurrency))
        return 4 * profiles + 4 * runs
    if isinstance(command, AwsFinopsTrend):
        return profiles
    return 0


def run_aws_finops_per_profile(*, runner: CliRunner, command: AwsFinopsCost | AwsFinopsTrend | AwsFinopsAudit,
                               profiles: Sequence[ProfileCredentials], timeout_per_profile: float | None = None,
                               cancel: threading.Event | None = None, on_output: OutputFn | None = None,
                               on_progress: ProgressFn | None = None) -> Iterator[FinopsProfileResult]:
    """Run aws-finops over the command's profiles in groups, at most ``runner.config.concurrency``
    processes at once, each in its own output dir; yield each profile's judged result, in order.

    A group's profiles complete together; progress is the share of profiles done (and of the
    running groups' own progress bars). Callbacks run in the calling thread. After a cancel, or
    when the caller stops iterating, the running processes are stopped.
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
    groups = plan_groups(checked, runner.config.concurrency)
    update: dict[str, object] = {"lead_with_sample": True} if leads_with_sample(checked) else {}
    stop = threading.Event()
    events: queue.Queue[tuple[str, int, object]] = queue.Queue()
    done_runs: dict[int, RunResult | BaseException] = {}
    share = [0.0] * len(groups)  # each group's part done, in profiles
    reported = -1

    slots = threading.BoundedSemaphore(max(1, runner.config.concurrency))

    def work(index: int) -> None:
        group = groups[index]
        single = checked.model_copy(update={"profiles": group, **update})
        try:
            with slots:  # at most `concurrency` processes at once (a stop ends the running ones)
                events.put(("start", index, None))
                run = runner.run(single, profiles=[by_name[n] for n in group],
                                 timeout=None if timeout_per_profile is None else timeout_per_profile * len(group),
                                 cancel=stop, on_output=lambda line: events.put(("line", index, line)),
                                 on_progress=lambda pct, _step: events.put(("progress", index, pct)))
            events.put(("done", index, run))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
            events.put(("done", index, exc))

    def progress(step: str) -> None:
        nonlocal reported
        percent = int(sum(share) * 100 // total)
        if on_progress is not None and percent >= reported:
            reported = percent
            on_progress(percent, step)

    def label(group: list[str]) -> str:
        first = names.index(group[0]) + 1
        if len(group) == 1:
            return f"profile {group[0]} ({first}/{total})"
        return f"profiles {', '.join(group)} ({first}-{first + len(group) - 1}/{total})"

    threads = [threading.Thread(target=work, args=(i,), name=f"aws-finops-group-{i}", daemon=True)
               for i in range(len(groups))]
    try:
        for thread in threads:
            thread.start()
        for index, group in enumerate(groups):
            while index not in done_runs:
                if cancel is not None and cancel.is_set():
                    stop.set()
                try:
                    kind, source, value = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if kind == "start":
                    progress(label(groups[source]))
                elif kind == "line" and on_output is not None:
                    on_output(str(value))
                elif kind == "progress" and isinstance(value, int):
                    share[source] = max(share[source], len(groups[source]) * min(value, 99) / 100)
                    progress(f"{label(groups[source])}: running")
                elif kind == "done":
                    done_runs[source] = value  # type: ignore[assignment]
            outcome = done_runs[index]
            if isinstance(outcome, BaseException):
                raise outcome
            share[index] = 0.0
            for position, judged in enumerate(judge_aws_finops_group(
                    checked.model_copy(update={"profiles": group, **update}), outcome)):
                share[index] = position + 1
                progress(f"profile {judged.profile}: {judged.status}")
                yield judged
            if outcome.status == "cancelled":
                return
    finally:
        stop.set()
        for thread in threads:
            if thread.is_alive() or thread.ident is not None:
                thread.join()
