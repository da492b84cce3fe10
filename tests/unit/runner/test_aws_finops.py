"""Judging aws-finops runs from their JSON export and their output lines, never the exit code alone."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest

from services.runner.aws_finops import (
    classify_aws_finops_output,
    expected_ce_requests,
    judge_aws_finops,
    judge_aws_finops_group,
    leads_with_sample,
    plan_groups,
)
from services.runner.cli_runner import RunResult
from services.runner.commands import (
    AwsFinopsAudit,
    AwsFinopsCost,
    AwsFinopsTrend,
)

# --- judging aws-finops (the JSON shapes are those aws-finops 2.3.0 writes) -----------------

COST_ENTRY = {
    "profile": "alpha", "account_id": "111111111111", "last_month": 80.25, "current_month": 100.5,
    "service_costs": [["Amazon EC2", 60.5], ["Amazon S3", 40.0]],
    "service_costs_formatted": ["Amazon EC2: $60.50", "Amazon S3: $40.00"],
    "previous_service_costs": [["Amazon EC2", 50.25], ["Amazon S3", 30.0]],
    "previous_service_costs_formatted": ["Amazon EC2: $50.25", "Amazon S3: $30.00"],
    "budget_info": ["monthly limit: $100.0", "monthly actual: $0.00"],
    "ec2_summary": {"stopped": 1, "running": 1},
    "ec2_summary_formatted": ["[bright_green]running: 1[/]", "[bright_yellow]stopped: 1[/]"],
    "success": True, "error": None, "current_period_name": "Current month's cost",
    "previous_period_name": "Last month's cost", "percent_change_in_total_cost": 25.233644859813083,
}
NO_ENDPOINT = 'Could not connect to the endpoint URL: "http://127.0.0.1:9/"'
FAILED_CALLS = textwrap.dedent(f"""\
    [00:01:02] Warning: Could not get account ID: {NO_ENDPOINT}        aws_client.py:30
    [00:01:02] Error getting current period cost: {NO_ENDPOINT}        cost_processor.py:187
               Error getting previous period cost: {NO_ENDPOINT}       cost_processor.py:201
    Fetching cost data... ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 100% 0:00:00
    |     Profile: alpha     |  [red]Error[/]  |
""")


def _finops_run(tmp_path: Path, *, entries: list[dict[str, Any]] | None, stdout: str = "",
                status: Literal["succeeded", "failed", "timed_out", "cancelled"] = "succeeded") -> RunResult:
    files: tuple[Path, ...] = ()
    if entries is not None:
        path = tmp_path / "aws-finops-cost_20250101_0000.json"
        path.write_text(json.dumps(entries, indent=4))
        files = (path,)
    return RunResult(program="aws-finops", command="aws_finops.cost", argv=("aws-finops",), status=status,
                     exit_code=0 if status == "succeeded" else None, reason=None if status == "succeeded" else status,
                     stdout=stdout, truncated=False, wall_seconds=1.0, cpu_seconds=1.0, peak_rss_bytes=1,
                     output_dir=tmp_path, files=files)


def test_output_lines_are_classified_without_rich_prefixes():
    errors, warnings = classify_aws_finops_output(FAILED_CALLS)
    assert errors == (f"Error getting current period cost: {NO_ENDPOINT}",
                      f"Error getting previous period cost: {NO_ENDPOINT}")
    assert warnings == (f"Warning: Could not get account ID: {NO_ENDPOINT}",)


def test_a_good_cost_export_is_parsed_into_exact_amounts(tmp_path):
    judged = judge_aws_finops(AwsFinopsCost(profiles=["alpha"]), _finops_run(tmp_path, entries=[COST_ENTRY]))
    assert (judged.status, judged.account_id) == ("succeeded", "111111111111")
    report = judged.report
    assert report.current_by_service == {"Amazon EC2": Decimal("60.5"), "Amazon S3": Decimal("40.0")}
    assert (report.current_total, report.previous_total) == (Decimal("100.5"), Decimal("80.25"))
    assert report.ec2_instances_by_state == {"running": 1, "stopped": 1}


@pytest.mark.parametrize("entries, stdout, reason", [
    ([{**COST_ENTRY, "account_id": "Unknown"}], "", "aws-finops could not identify the account (the STS call failed)"),
    ([COST_ENTRY], FAILED_CALLS, "aws-finops reported 2 error(s): Error getting current period cost"),
    ([{**COST_ENTRY, "account_id": "Error", "success": False, "error": "The config profile (alpha) was not found"}],
     "", "aws-finops could not process the profile: The config profile (alpha) was not found"),
    (None, "None of the specified profiles were found in AWS configuration.", "aws-finops wrote no JSON report"),
    ([{**COST_ENTRY, "profile": "bravo"}], "", "aws-finops wrote a JSON report of an unexpected shape"),
    ([{**COST_ENTRY, "service_costs": "lots"}], "", "aws-finops wrote a JSON report of an unexpected shape"),
])
def test_an_exit_code_of_zero_is_not_trusted(tmp_path, entries, stdout, reason):
    judged = judge_aws_finops(AwsFinopsCost(profiles=["alpha"]), _finops_run(tmp_path, entries=entries, stdout=stdout))
    assert judged.run.exit_code == 0
    assert judged.status == "failed"
    assert judged.reason.startswith(reason)


def test_a_trend_without_data_and_a_timed_out_run_are_not_successes(tmp_path):
    no_data = _finops_run(tmp_path, entries=None, stdout="No trend data available for profile alpha\n")
    assert judge_aws_finops(AwsFinopsTrend(profiles=["alpha"]), no_data).reason == \
        "aws-finops found no trend data for this profile"
    timed_out = judge_aws_finops(AwsFinopsAudit(profiles=["alpha"]), _finops_run(tmp_path, entries=None,
                                                                                  status="timed_out"))
    assert (timed_out.status, timed_out.report) == ("timed_out", None)


# --- runs over groups of profiles -------------------------------------------------------------

SAMPLE_NOISE = textwrap.dedent("""\
    [00:01:02] Warning: Could not get account ID: Unable to locate credentials        aws_client.py:30
    [00:01:02] Error getting current period cost: Unable to locate credentials        cost_processor.py:187
""")
SAMPLE_ENTRY = {**COST_ENTRY, "profile": "_sample", "account_id": "Unknown", "service_costs": [],
                "previous_service_costs": []}


def _group_run(tmp_path: Path, entries: list[dict[str, Any]], stdout: str = "",
               csv_text: str | None = None) -> RunResult:
    run = _finops_run(tmp_path, entries=entries, stdout=stdout)
    if csv_text is None:
        return run
    path = tmp_path / "aws-finops-cost_20250101_0000.csv"
    path.write_bytes(csv_text.encode())
    return RunResult(**{**run.__dict__, "files": (*run.files, path)})


@pytest.mark.parametrize("profiles, concurrency, sizes", [
    (20, 4, [5, 5, 5, 5]), (3, 4, [1, 1, 1]), (7, 3, [3, 2, 2]), (5, 1, [5]),
])
def test_profiles_are_split_in_order_into_at_most_concurrency_groups(profiles, concurrency, sizes):
    names = [f"p{i}" for i in range(profiles)]
    groups = plan_groups(AwsFinopsCost(profiles=names), concurrency)
    assert [len(g) for g in groups] == sizes
    assert [n for g in groups for n in g] == names


def test_a_run_with_a_pdf_holds_one_profile_and_pays_for_the_table_title_query():
    command = AwsFinopsCost(profiles=["a", "b", "c"], report_types=["json", "pdf"])
    assert plan_groups(command, 4) == [["a"], ["b"], ["c"]] and not leads_with_sample(command)
    assert expected_ce_requests(command, 4) == 4 * 3 + 4 * 3


@pytest.mark.parametrize("command, requests", [
    (AwsFinopsCost(profiles=[f"p{i}" for i in range(20)]), 80),  # aws-finops by hand: 84
    (AwsFinopsTrend(profiles=["a", "b"]), 2),
    (AwsFinopsAudit(profiles=["a", "b"]), 0),
])
def test_the_expected_cost_explorer_requests_follow_the_runs(command, requests):
    assert expected_ce_requests(command, 4) == requests


def test_a_group_run_is_judged_per_profile_without_the_keyless_profile(tmp_path):
    bravo = {**COST_ENTRY, "profile": "bravo", "account_id": "222222222222"}
    csv_text = ("CLI Profile,AWS Account ID,\"Cost for period\n(x)\"\r\n_sample,Unknown,$0.00\r\n"
                "alpha,111111111111,$100.50\r\nbravo,222222222222,\"$1.00\"\r\n")
    run = _group_run(tmp_path, [SAMPLE_ENTRY, COST_ENTRY, bravo], stdout=SAMPLE_NOISE, csv_text=csv_text)
    command = AwsFinopsCost(profiles=["alpha", "bravo"], lead_with_sample=True)
    results = judge_aws_finops_group(command, run)
    assert [(r.profile, r.status, r.account_id, r.errors, r.warnings) for r in results] == [
        ("alpha", "succeeded", "111111111111", (), ()), ("bravo", "succeeded", "222222222222", (), ())]
    alpha_json, alpha_csv = sorted(results[0].files, key=lambda p: p.suffix, reverse=True)
    assert json.loads(alpha_json.read_text()) == [COST_ENTRY]
    assert alpha_csv.read_bytes().decode() == \
        "CLI Profile,AWS Account ID,\"Cost for period\n(x)\"\r\nalpha,111111111111,$100.50\r\n"
    assert results[0].run is results[1].run and not (tmp_path / "aws-finops-cost_20250101_0000.json").exists()


def test_an_error_line_counts_against_the_profile_it_names_or_else_every_profile_of_the_run(tmp_path):
    bravo = {**COST_ENTRY, "profile": "bravo"}
    named = "Error getting trend for profile bravo: AccessDenied\n"
    results = judge_aws_finops_group(AwsFinopsCost(profiles=["alpha", "bravo"]),
                                     _group_run(tmp_path, [COST_ENTRY, bravo], stdout=named))
    assert [r.status for r in results] == ["succeeded", "failed"]
    unnamed = judge_aws_finops_group(AwsFinopsCost(profiles=["alpha", "bravo"]),
                                     _group_run(tmp_path, [COST_ENTRY, bravo], stdout=FAILED_CALLS))
    assert [r.status for r in unnamed] == ["failed", "failed"]
    assert unnamed[0].reason.startswith("aws-finops reported 2 error(s): Error getting current period cost")


def test_a_profile_missing_from_a_group_export_fails_alone(tmp_path):
    results = judge_aws_finops_group(AwsFinopsCost(profiles=["alpha", "bravo"]),
                                     _group_run(tmp_path, [COST_ENTRY]))
    assert [(r.status, r.reason) for r in results] == [
        ("succeeded", None), ("failed", "aws-finops wrote no report for this profile")]
