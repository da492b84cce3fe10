"""Job kinds that run the allow-listed CLIs: aws-finops per profile, and read-only aws commands.

Every command of ``services.runner.commands.COMMANDS`` becomes a kind of job whose parameters are the
command's own, with our profile ids in place of profile names: users choose profiles they may
use, never type a name, a command or a credential.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import shutil
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from services import database, months
from services.aws import profiles
from services.aws.credentials import ProfileCredentials
from services.costs import ingest
from services.errors import InvalidInput
from services.jobs.kinds import JobCancelled, JobContext, JobKind, register_kind
from services.runner import aws_finops, commands
from services.runner.cli_runner import CliRunner, RunnerConfig, RunResult
from services.runner.commands import COMMANDS, CliCommand

logger = logging.getLogger(__name__)

_config = RunnerConfig()
_results_root: Path | None = None
_runner: CliRunner | None = None
_lock = threading.Lock()
LABELS = {
    "aws_finops.cost": "AWS FinOps: cost by service",
    "aws_finops.trend": "AWS FinOps: six-month trend",
    "aws_finops.audit": "AWS FinOps: audit (untagged, idle, unused)",
}


def configure(config: RunnerConfig, *, results_root: Path) -> None:
    """Set the operator's runner settings and where result files are kept."""
    global _config, _results_root, _runner
    with _lock:
        _config, _results_root, _runner = config, results_root, None


def runner() -> CliRunner:
    """Return the runner (executables resolved once, at first use)."""
    global _runner
    with _lock:
        if _runner is None:
            _runner = CliRunner(_config)
        return _runner


def _job_model(command: type[CliCommand]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, info in command.model_fields.items():
        if name in ("profiles", "profile", "lead_with_sample"):  # ours to set, not the user's
            continue
        fields[name] = (info.annotation, info)
    if "profiles" in command.model_fields:
        fields["profile_ids"] = (list[int], Field(min_length=1, max_length=20, title="Profiles"))
    else:
        fields["profile_id"] = (int, Field(title="Profile"))
    return create_model(f"{command.__name__}Job", __config__=ConfigDict(extra="forbid"), **fields)


def _profile_ids(params: BaseModel) -> list[int]:
    data = params.model_dump()
    return list(data.get("profile_ids") or [data["profile_id"]])


class _LogBuffer:
    """Collect output lines and write them to the job's log at most once a second."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.lines: list[str] = []
        self.last = time.monotonic()

    def add(self, line: str) -> None:
        self.lines.append(line.rstrip())
        if time.monotonic() - self.last > 1.0:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.ctx.log("\n".join(self.lines))
            self.lines, self.last = [], time.monotonic()


def _credentials(ctx: JobContext, ids: list[int], purpose: str) -> list[ProfileCredentials]:
    with database.session_scope() as session:
        return [profiles.get_credentials(session, actor=ctx.actor, profile_id=i, purpose=purpose) for i in ids]


def _keep_files(ctx: JobContext, files: tuple[Path, ...], output_dir: Path | None, prefix: str) -> None:
    """Move a profile's report files into the job's result folder and list them as results
    (the caller removes the run's output dir once all of its profiles are kept)."""
    if _results_root is None or output_dir is None:
        return
    target = _results_root / str(ctx.task_id)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in files:
        kept = target / f"{prefix}-{path.name}"
        shutil.move(str(path), kept)
        content_type = {".json": "application/json", ".csv": "text/csv", ".pdf": "application/pdf"}.get(
            kept.suffix, "application/octet-stream")
        ctx.add_result(kept.name, path=str(kept), content_type=content_type, size=kept.stat().st_size)


def _plain(value: Any) -> Any:
    """Turn a report (dataclasses, Decimals, tuples) into JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "run"}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Path):
        return value.name
    return value


def _run_finops(command_name: str, ctx: JobContext) -> dict[str, object]:
    params = dict(ctx.parameters)
    ids = params.pop("profile_ids")
    creds = _credentials(ctx, ids, purpose=command_name)
    command = commands.parse_command(command_name, {**params, "profiles": [c.name for c in creds]})
    assert isinstance(command, commands.AwsFinopsCost | commands.AwsFinopsTrend  # noqa: S101 - by name
                      | commands.AwsFinopsAudit)
    log = _LogBuffer(ctx)
    outcomes: dict[str, object] = {}
    failures: list[str] = []
    periods = _snapshot_periods(command, dt.datetime.now(dt.UTC).date())
    if isinstance(command, commands.AwsFinopsCost) and periods is None:
        ctx.log("Costs are kept as results only: a tag filter or a day range is not a billing month.")
    runs: dict[int, RunResult] = {}  # the group runs seen (kept, so an id stays theirs): each counted once
    try:
        for result in aws_finops.run_aws_finops_per_profile(
                runner=runner(), command=command, profiles=creds, cancel=ctx.cancel_event, on_output=log.add,
                on_progress=lambda pct, step: ctx.progress(pct, step)):
            if id(result.run) not in runs:
                runs[id(result.run)] = result.run
                ctx.child_cpu_seconds += result.run.cpu_seconds
                ctx.child_peak_memory = max(ctx.child_peak_memory, result.run.peak_rss_bytes)
                ctx.aws_requests += sum(result.run.aws_requests.values())
            _keep_files(ctx, result.files, result.run.output_dir, result.profile)
            summary = {"status": result.status, "reason": result.reason, "account_id": result.account_id,
                       "errors": list(result.errors), "warnings": list(result.warnings),
                       "report": _plain(result.report)}
            ctx.add_result(f"{result.profile}-{command.mode}.parsed.json", data=summary)
            outcomes[result.profile] = {"status": result.status, "account_id": result.account_id}
            if (periods is not None and result.status == "succeeded"
                    and isinstance(result.report, aws_finops.FinopsCostReport)):
                lines = _snapshot_costs(ctx, result.report, periods)
                ctx.log(f"profile {result.profile}: {lines} cost lines kept as the aws_finops source "
                        f"for {periods[0]:%B %Y} and {periods[1]:%B %Y}")
            if result.status == "cancelled":
                raise JobCancelled()
            if result.status != "succeeded":
                failures.append(f"{result.profile}: {result.reason}")
    finally:
        log.flush()
        for run in runs.values():
            if run.output_dir is not None:
                shutil.rmtree(run.output_dir, ignore_errors=True)
    if failures:
        raise InvalidInput(f"{len(failures)} of {len(creds)} profiles failed. " + "; ".join(failures)[:900])
    return {"profiles": outcomes}


def _snapshot_periods(command: CliCommand, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The billing months a cost run reports (its current and previous period), or None when its
    figures are not whole months of all costs (a day range, or a tag filter)."""
    if not isinstance(command, commands.AwsFinopsCost) or command.tags or command.time_range_days is not None:
        return None
    current = months.add_months(today, -1 if command.last_month else 0)
    return current, months.add_months(current, -1)


def _snapshot_costs(ctx: JobContext, report: aws_finops.FinopsCostReport,
                    periods: tuple[dt.date, dt.date]) -> int:
    """Keep one profile's costs by service as the facts of the ``aws_finops`` source: a snapshot
    that replaces that account's earlier one for the same months.

    aws-finops reports unblended cost per service and period, nothing finer: each service's
    amount lands on the first day of its month, in the profile's account, and stands for every
    cost metric. The source ranks below CUR, FOCUS and Cost Explorer, so it counts only for a
    payer and month that no better source holds.
    """
    account = report.account_id
    lines = 0
    with database.session_scope() as session:
        for period, by_service in zip(periods, (report.current_by_service, report.previous_by_service),
                                      strict=True):
            rows = [ingest.FactRow(usage_date=period, usage_account_id=account, payer_account_id=account,
                                   service=service[:128], unblended_cost=amount, amortized_cost=amount,
                                   net_cost=amount, list_cost=amount, billing_period=period)
                    for service, amount in by_service.items()]
            ingest.replace_period(session, source="aws_finops", billing_period=period, rows=rows,
                                  payer_account_ids={account}, actor_id=ctx.actor.user_id,
                                  file_name=f"aws-finops job {ctx.task_id}, profile {report.profile}")
            lines += len(rows)
    return lines


def _run_aws(command_name: str, ctx: JobContext) -> dict[str, object]:
    params = dict(ctx.parameters)
    (cred,) = _credentials(ctx, [params.pop("profile_id")], purpose=command_name)
    command = commands.parse_command(command_name, {**params, "profile": cred.name})
    log = _LogBuffer(ctx)
    ctx.progress(5, f"running {command_name}")
    try:
        run = runner().run(command, profiles=[cred], cancel=ctx.cancel_event, on_output=log.add)
    finally:
        log.flush()
    ctx.child_cpu_seconds += run.cpu_seconds
    ctx.child_peak_memory = max(ctx.child_peak_memory, run.peak_rss_bytes)
    ctx.aws_requests += sum(run.aws_requests.values())
    if run.status == "cancelled":
        raise JobCancelled()
    if not run.is_success:
        raise InvalidInput(f"{command_name} {run.status}: {run.reason}")
    try:
        data = json.loads(run.stdout) if run.stdout.strip() else {}
    except json.JSONDecodeError:
        data = {"output": run.stdout}
    ctx.add_result(f"{command_name}.json", data=data if isinstance(data, dict) else {"items": data},
                   size=len(run.stdout))
    return {"truncated": run.truncated, "bytes": len(run.stdout)}


def _finops_estimate(command_name: str, params: BaseModel) -> int:
    """The Cost Explorer requests of the job as it will run: its profiles, in the runner's groups."""
    values = params.model_dump(exclude={"profile_ids"})
    names = [f"p{i}" for i in range(len(_profile_ids(params)))]  # the names do not change the count
    command = commands.parse_command(command_name, {**values, "profiles": names})
    assert isinstance(command, commands.AwsFinopsCommand)  # noqa: S101 - by name
    return aws_finops.expected_ce_requests(command, _config.concurrency)


def _estimate(command_name: str) -> Any:
    if command_name.startswith("aws_finops."):
        return lambda p: _finops_estimate(command_name, p)
    if command_name == "aws.ce.get-cost-and-usage":
        return lambda p: 1
    return lambda p: 0


def _register_all() -> None:
    for command_name, command in COMMANDS.items():
        is_finops = command_name.startswith("aws_finops.")

        def run(ctx: JobContext, _name: str = command_name, _finops: bool = is_finops) -> dict[str, object]:
            return _run_finops(_name, ctx) if _finops else _run_aws(_name, ctx)

        register_kind(JobKind(
            name=command_name, label=LABELS.get(command_name, f"AWS CLI: {command_name.removeprefix('aws.')}"),
            roles=("admin", "finance", "engineering"), parameters=_job_model(command), run=run,
            estimate_ce_requests=_estimate(command_name), profile_ids=_profile_ids))


_register_all()
