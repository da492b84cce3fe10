"""The CLI runner: injections refused before any process starts; real processes timed out, cut,
cancelled with their whole tree, started without application secrets; aws-finops judged by its JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import sys
import textwrap
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

import psutil
import pytest

from services.aws.credentials import ProfileCredentials
from services.errors import InvalidInput, ProgramUnavailable
from services.runner.cli_runner import (
    COMMANDS,
    FORBIDDEN_FLAGS,
    AwsCeGetCostAndUsage,
    AwsFinopsAudit,
    AwsFinopsCost,
    AwsFinopsTrend,
    AwsStsGetCallerIdentity,
    CancelToken,
    CliCommand,
    CliRunner,
    ProfileName,
    RunnerConfig,
    RunResult,
    classify_aws_finops_output,
    judge_aws_finops,
    parse_command,
    run_aws_finops_per_profile,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ALPHA = ProfileCredentials(name="alpha", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region="eu-west-1")

# --- the injection corpus -------------------------------------------------------------------

INJECTIONS: dict[str, object] = {
    "semicolon": "x; id",
    "and-and": "x && id",
    "pipe": "x | id",
    "backticks": "`id`",
    "dollar-paren": "$(id)",
    "dollar-brace": "${HOME}",
    "newline": "x\nid",
    "carriage-return": "x\rid",
    "nul": "x\x00y",
    "tab": "x\ty",
    "escape-sequence": "x\x1b[31m",
    "bidi-override": "x\u202ey",
    "zero-width": "x\u200by",
    "leading-dash": "-x",
    "endpoint-url": "--endpoint-url",
    "endpoint-url-value": "--endpoint-url=http://evil.example",
    "dot-dot-slash": "../../etc/passwd",
    "file-url": "file:///etc/passwd",
    "quote": "x'y",
    "double-quote": 'x"y',
    "redirect": "x>y",
    "glob": "*",
    "fullwidth": "\uff58",
    "10k-chars": "a" * 10_000,
    "non-utf8-bytes": b"\xff\xfe",
    "bytes": b"alpha",
    "lone-surrogate": "x\udcff",
}

#: A valid value for every field of every allow-listed command (each injection replaces one).
VALID: dict[type[CliCommand], dict[str, Any]] = {
    AwsFinopsCost: {"profiles": ["alpha"], "regions": ["us-east-1"], "time_range_days": 30, "last_month": False,
                    "tags": {"Team": "FinOps"}, "report_name": "monthly", "report_types": ["json", "csv"]},
    AwsFinopsTrend: {"profiles": ["alpha"], "tags": {"Team": "FinOps"}, "report_name": "trend"},
    AwsFinopsAudit: {"profiles": ["alpha"], "regions": ["us-east-1"], "report_name": "audit",
                     "report_types": ["json"]},
    AwsStsGetCallerIdentity: {"profile": "alpha"},
    AwsCeGetCostAndUsage: {"profile": "alpha", "start": dt.date(2025, 1, 1), "end": dt.date(2025, 2, 1),
                           "granularity": "DAILY", "metrics": ["UnblendedCost"], "group_by": "SERVICE"},
    COMMANDS["aws.ec2.describe-instances"]: {"profile": "alpha", "region": "eu-west-1", "max_items": 50,
                                             "states": ["running"]},
    COMMANDS["aws.ec2.describe-volumes"]: {"profile": "alpha", "region": "eu-west-1", "max_items": 50,
                                           "statuses": ["available"]},
    COMMANDS["aws.ec2.describe-addresses"]: {"profile": "alpha", "region": "eu-west-1"},
    COMMANDS["aws.rds.describe-db-instances"]: {"profile": "alpha", "region": "eu-west-1", "max_items": 50},
    COMMANDS["aws.budgets.describe-budgets"]: {"profile": "alpha", "account_id": "111111111111", "max_items": 50},
    COMMANDS["aws.organizations.list-accounts"]: {"profile": "alpha", "max_items": 50},
}


def _slots() -> list[tuple[type[CliCommand], str, str]]:
    """(command, field, where): every parameter, and for lists and maps each part of it."""
    slots = []
    for cls, example in VALID.items():
        for name, value in example.items():
            if isinstance(value, dict):
                slots += [(cls, name, "key"), (cls, name, "value")]
            else:
                slots.append((cls, name, "item" if isinstance(value, list) else "scalar"))
    return slots


def _inject(cls: type[CliCommand], name: str, where: str, bad: object) -> dict[str, Any]:
    params = dict(VALID[cls])
    original = params[name]
    if where == "item":
        params[name] = [bad]
    elif where == "key":
        params[name] = {bad: next(iter(original.values()))}
    elif where == "value":
        params[name] = {next(iter(original)): bad}
    else:
        params[name] = bad
    return params


SLOTS = _slots()
CASES = [pytest.param(cls, name, where, bad, id=f"{cls.name}-{name}-{where}-{label}")
         for cls, name, where in SLOTS for label, bad in INJECTIONS.items()]


@pytest.fixture(scope="module")
def production_runner(tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    base = tmp_path_factory.mktemp("production-runner")
    return CliRunner(RunnerConfig(scratch_root=base, output_root=base))


def test_the_injection_corpus_covers_every_parameter_of_every_allow_listed_command():
    assert set(VALID) == set(COMMANDS.values())
    for cls, example in VALID.items():
        assert set(example) == set(cls.model_fields), cls.name
        parse_command(cls.name, example)  # the baseline is valid: only the injected value is refused
    assert len(SLOTS) == 41
    assert len(CASES) == len(SLOTS) * len(INJECTIONS) == 1107


@pytest.mark.parametrize("cls, name, where, bad", CASES)
def test_every_injection_is_refused_before_a_process_starts(production_runner, cls, name, where, bad):
    params = _inject(cls, name, where, bad)
    with pytest.raises(InvalidInput) as refused:
        parse_command(cls.name, params)
    assert refused.value.details["errors"]
    # A model built without validation is validated again by the runner, before anything starts.
    with pytest.raises(InvalidInput):
        production_runner.run(cls.model_construct(**params), profiles=[ALPHA])
    assert production_runner.spawn_count == 0


def test_refusals_never_echo_the_refused_text():
    with pytest.raises(InvalidInput) as refused:
        parse_command("aws_finops.cost", {"profiles": ["alpha"], "tags": {"$(id)": "x"}, "$(reboot)": 1})
    assert "$(" not in json.dumps(refused.value.details)


@pytest.mark.parametrize("name, params", [
    ("aws.s3.rm", {"profile": "alpha"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "endpoint_url": "http://evil.example"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "dir": "/etc"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "regions": ["mars-north-1"]}),
    ("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": 0}),
    ("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": "30"}),
    ("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": 30, "last_month": True}),
    ("aws_finops.cost", {"profiles": ["alpha", "alpha"]}),
    ("aws_finops.cost", {"profiles": []}),
    ("aws_finops.audit", {"profiles": ["alpha"], "report_types": ["html"]}),
    ("aws.ce.get-cost-and-usage", {"profile": "alpha", "start": "2025-02-01", "end": "2025-01-01"}),
    ("aws.budgets.describe-budgets", {"profile": "alpha", "account_id": "12345"}),
])
def test_unknown_commands_extra_flags_and_out_of_range_values_are_refused(production_runner, name, params):
    with pytest.raises(InvalidInput):
        parse_command(name, params)
    assert production_runner.spawn_count == 0


def test_commands_build_argv_arrays_with_regions_and_json_always(production_runner, tmp_path):
    cost = parse_command("aws_finops.cost", {"profiles": ["alpha"], "time_range_days": 30, "tags": {"Team": "Fin Ops"},
                                             "report_types": ["csv"]})
    assert production_runner.build_argv(cost, output_dir=tmp_path)[1:] == [
        "--profiles", "alpha", "--regions", "us-east-1", "--report-name", "aws-finops-cost",
        "--report-type", "json", "csv", "--dir", str(tmp_path), "--time-range", "30", "--tag", "Team=Fin Ops"]
    trend = AwsFinopsTrend(profiles=["alpha"])
    assert "--regions" in production_runner.build_argv(trend, output_dir=tmp_path)
    ce = AwsCeGetCostAndUsage(profile="alpha", start=dt.date(2025, 1, 1), end=dt.date(2025, 2, 1), group_by="SERVICE")
    assert production_runner.build_argv(ce, output_dir=tmp_path)[1:] == [
        "ce", "get-cost-and-usage", "--time-period", "Start=2025-01-01,End=2025-02-01", "--granularity", "MONTHLY",
        "--metrics", "UnblendedCost", "--group-by", "Type=DIMENSION,Key=SERVICE", "--profile", "alpha",
        "--region", "us-east-1", "--output", "json"]


@pytest.mark.parametrize("cls", list(VALID), ids=lambda c: c.name)
def test_no_command_ever_carries_a_forbidden_flag(production_runner, cls, tmp_path):
    argv = production_runner.build_argv(cls.model_validate(VALID[cls]), output_dir=tmp_path)
    assert os.path.isabs(argv[0])
    assert not {a.split("=", 1)[0] for a in argv} & FORBIDDEN_FLAGS
    assert production_runner.spawn_count == 0


@pytest.mark.parametrize("changes", [
    {"secret_access_key": SECRET_KEY + "\n[profile evil]\ncredential_process = /bin/sh -c id"},
    {"access_key_id": "AKIA\nEVIL0000000000"},
    {"session_token": "token with spaces and more text"},
    {"name": "-evil"},
    {"region": "eu-west-1\ncredential_process = id"},
    {"role_arn": "arn:aws:iam::111111111111:role/x\nmfa_serial = y"},
    {"role_arn": "arn:aws:iam::111111111111:role/x", "external_id": "a\nb"},
    {"source_profile": "other"},
])
def test_malformed_credentials_are_refused_before_anything_starts(production_runner, changes):
    profile = ProfileCredentials(**{**ALPHA.__dict__, **changes})
    supplied = [profile] if profile.name == "alpha" else [profile, ALPHA]
    with pytest.raises(InvalidInput) as refused:
        production_runner.run(AwsStsGetCallerIdentity(profile="alpha"), profiles=supplied)
    assert SECRET_KEY not in str(refused.value.details) and "credential_process" not in str(refused.value.details)
    assert production_runner.spawn_count == 0


def test_credentials_never_show_in_a_repr():
    text = repr(ProfileCredentials(name="alpha", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                                   session_token="FQoGZXIvYXdzEBYaDJBs84nNdJVDk8De", external_id="ext-1"))
    assert ACCESS_KEY not in text and SECRET_KEY not in text and "FQoG" not in text and "ext-1" not in text


def test_a_command_needs_credentials_for_its_profiles(production_runner):
    with pytest.raises(InvalidInput, match="No credentials"):
        production_runner.run(AwsStsGetCallerIdentity(profile="bravo"), profiles=[ALPHA])
    with pytest.raises(InvalidInput, match="No credentials"):
        next(run_aws_finops_per_profile(runner=production_runner, command=AwsFinopsCost(profiles=["alpha", "bravo"]),
                                        profiles=[ALPHA]))
    assert production_runner.spawn_count == 0


def test_aws_commands_are_reported_unavailable_when_aws_is_not_installed(tmp_path):
    runner = CliRunner(RunnerConfig(search_path=(str(tmp_path),)))
    assert runner.available_programs() == {"aws-finops": None, "aws": None}
    with pytest.raises(ProgramUnavailable, match="'aws' program is not installed") as missing:
        runner.run(AwsStsGetCallerIdentity(profile="alpha"), profiles=[ALPHA])
    assert missing.value.status_code == 503
    assert runner.spawn_count == 0


def test_operator_settings_refuse_application_variables():
    with pytest.raises(ValueError, match="extra_env"):
        RunnerConfig(extra_env={"SECRET_KEY": "x"})
    with pytest.raises(ValueError, match="endpoint_url"):
        RunnerConfig(endpoint_url="http://x\n")


# --- real processes: a test-only program on a test runner's allow-list ----------------------

SCRIPT = textwrap.dedent("""\
    import os, signal, subprocess, sys, time
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "tree":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"parent {os.getpid()} child {child.pid}", flush=True)
        time.sleep(600)
    elif mode == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"pid {os.getpid()} ignores SIGTERM", flush=True)
        time.sleep(600)
    elif mode == "wait":
        print(f"pid {os.getpid()}", flush=True)
        time.sleep(600)
    elif mode == "flood":
        sys.stdout.write(("x" * 99 + "\\n") * 20_000)
    elif mode == "spin":
        while True:
            pass
    elif mode == "alloc":
        try:
            block = bytearray(512 * 1024 * 1024)
        except MemoryError:
            print("MemoryError", flush=True)
            sys.exit(3)
    elif mode == "escape":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        print(f"parent {os.getpid()} child {child.pid}", flush=True)
        time.sleep(0.5)
    elif mode == "grow":
        block = b"x" * (64 * 1024 * 1024)
        time.sleep(0.5)
    elif mode == "files":
        for name in ("report.json", "report.csv"):
            with open(os.path.join(out, name), "w") as handle:
                handle.write("{}")
        os.symlink("/etc/passwd", os.path.join(out, "passwd.json"))
    elif mode == "progress":
        for pct in (25, 50, 100):
            print(f"step {pct}%", flush=True)
""")


class ScriptCommand(CliCommand):
    """A test-only command: never on the production allow-list."""

    program: ClassVar[str] = "test-script"
    name: ClassVar[str] = "test.script"

    mode: Literal["tree", "escape", "hang", "wait", "flood", "spin", "alloc", "grow", "files", "progress"]
    profile: ProfileName | None = None

    def profile_names(self) -> tuple[str, ...]:
        return (self.profile,) if self.profile else ()

    def build_args(self, *, output_dir: Path) -> list[str]:
        return [self.mode, str(output_dir)]

    def progress_from_line(self, line: str) -> tuple[int, str] | None:
        match = re.fullmatch(r"step (\d+)%", line)
        return (int(match[1]), "step") if match else None


@pytest.fixture()
def make_runner(tmp_path: Path) -> Callable[..., CliRunner]:
    script = tmp_path / "script.py"
    script.write_text(f"#!{sys.executable}\n{SCRIPT}")
    script.chmod(0o755)

    def make(**settings: Any) -> CliRunner:
        values: dict[str, Any] = {"timeout_seconds": 30, "kill_grace_seconds": 0.5,
                                  "scratch_root": tmp_path / "scratch", "output_root": tmp_path / "out"}
        values.update(settings)
        for folder in (values["scratch_root"], values["output_root"]):
            folder.mkdir(exist_ok=True)
        return CliRunner(RunnerConfig(**values), programs={"test-script": str(script)})

    return make


def _is_gone(pid: int) -> bool:
    """No longer running (a zombie waiting for PID 1 to reap it counts as gone)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_the_production_runner_refuses_a_program_outside_its_allow_list(production_runner):
    with pytest.raises(InvalidInput, match="not allowed"):
        production_runner.run(ScriptCommand(mode="wait"))
    assert production_runner.spawn_count == 0


def test_a_hung_command_is_killed_at_timeout_plus_grace(make_runner, tmp_path):
    runner = make_runner(timeout_seconds=1)
    pids: list[int] = []
    result = runner.run(ScriptCommand(mode="hang"), on_output=lambda line: pids.append(int(line.split()[1])))
    assert result.status == "timed_out"
    assert result.reason == "timed out after 1 s; the process group was stopped (SIGTERM, then SIGKILL after 0.5 s)"
    assert _is_gone(pids[0])
    assert list((tmp_path / "scratch").iterdir()) == []
    assert runner.spawn_count == 1


def test_output_beyond_the_cap_is_cut_and_says_so(make_runner):
    lines: list[str] = []
    result = make_runner(output_cap_bytes=10_000).run(ScriptCommand(mode="flood"), on_output=lines.append)
    assert result.status == "succeeded"  # the rest was drained, so the program never blocked
    assert result.truncated
    assert "output cut at 10000 bytes" in result.messages
    assert result.stdout.endswith("[output cut at 10000 bytes]\n")
    assert result.stdout.startswith("x" * 99 + "\n")
    assert len(result.stdout.encode()) <= 10_000 + len("\n[output cut at 10000 bytes]\n")
    assert len(lines) == 100


def test_cancel_ends_the_whole_process_tree(make_runner, tmp_path):
    runner = make_runner()
    cancel = CancelToken()
    pids: dict[str, int] = {}

    def on_output(line: str) -> None:
        words = line.split()
        pids.update(parent=int(words[1]), child=int(words[3]))
        assert psutil.Process(pids["child"]).is_running()
        cancel.cancel()

    result = runner.run(ScriptCommand(mode="tree", profile="alpha"), profiles=[ALPHA], cancel=cancel,
                        on_output=on_output)
    assert result.status == "cancelled"
    assert result.reason == "cancelled; the process group was killed"
    assert _is_gone(pids["parent"]) and _is_gone(pids["child"])
    assert list((tmp_path / "scratch").iterdir()) == []


def test_a_descendant_that_left_the_group_does_not_outlive_the_run(make_runner):
    lines: list[str] = []
    result = make_runner().run(ScriptCommand(mode="escape"), on_output=lines.append)
    child = int(lines[0].split()[3])
    assert _is_gone(child)
    assert result.status == "succeeded"


def test_the_child_sees_no_application_secret_and_no_credential_on_its_command_line(make_runner, tmp_path,
                                                                                      monkeypatch):
    secrets = {"SECRET_KEY": "fake-flask-secret-0123456789", "DATABASE_URL": "postgresql://app:pw-4711@db/finops",
               "ENCRYPTION_KEYS": "k1:ZmFrZS1lbmNyeXB0aW9uLWtleS0wMTIzNDU2Nzg5MDE="}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    runner = make_runner()
    cancel = CancelToken()
    seen: dict[str, Any] = {}

    def on_output(line: str) -> None:
        pid = int(line.split()[1])
        seen["environ"] = Path(f"/proc/{pid}/environ").read_bytes()
        seen["cmdline"] = Path(f"/proc/{pid}/cmdline").read_bytes()
        env = dict(item.split(b"=", 1) for item in seen["environ"].split(b"\0") if item)
        home = Path(env[b"HOME"].decode())
        credentials = Path(env[b"AWS_SHARED_CREDENTIALS_FILE"].decode())
        seen.update(env=env, home=home, credentials_text=credentials.read_text(),
                    modes={p.name: stat.S_IMODE(p.stat().st_mode) for p in
                           (credentials, Path(env[b"AWS_CONFIG_FILE"].decode()), home, home.parent)})
        cancel.cancel()

    result = runner.run(ScriptCommand(mode="wait", profile="alpha"), profiles=[ALPHA], cancel=cancel,
                        on_output=on_output)
    assert result.status == "cancelled"
    for name, value in secrets.items():
        assert name.encode() not in seen["environ"] and value.encode() not in seen["environ"]
    assert set(seen["env"]) <= {b"PATH", b"HOME", b"TMPDIR", b"LANG", b"LC_ALL", b"TZ", b"AWS_CONFIG_FILE",
                                b"AWS_SHARED_CREDENTIALS_FILE", b"AWS_DEFAULT_REGION", b"AWS_EC2_METADATA_DISABLED",
                                b"AWS_PAGER", b"PYTHONUNBUFFERED", b"PYTHONDONTWRITEBYTECODE", b"PYTHONNOUSERSITE",
                                b"NO_COLOR", b"TERM", b"COLUMNS"}
    assert seen["env"][b"AWS_DEFAULT_REGION"] == b"eu-west-1" and seen["env"][b"TZ"] == b"UTC"
    assert ACCESS_KEY.encode() not in seen["cmdline"] and SECRET_KEY.encode() not in seen["cmdline"]
    # The keys live in the private credentials file of the run, and nowhere else.
    assert f"aws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}" in seen["credentials_text"]
    assert seen["modes"] == {"credentials": 0o600, "config": 0o600, "home": 0o700, seen["home"].parent.name: 0o700}
    assert not seen["home"].parent.exists()


def test_the_scratch_home_is_removed_and_the_process_killed_when_a_callback_crashes(make_runner, tmp_path):
    pids: list[int] = []

    def on_output(line: str) -> None:
        pids.append(int(line.split()[1]))
        raise RuntimeError("the job layer crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        make_runner().run(ScriptCommand(mode="wait", profile="alpha"), profiles=[ALPHA], on_output=on_output)
    assert _is_gone(pids[0])
    assert list((tmp_path / "scratch").iterdir()) == []


def test_the_cpu_limit_stops_a_spinning_program(make_runner):
    result = make_runner(cpu_seconds=1).run(ScriptCommand(mode="spin"))
    assert result.status == "failed"
    assert result.reason == "CPU time limit of 1 s exceeded"
    assert result.cpu_seconds >= 0.9


def test_the_memory_limit_makes_a_large_allocation_fail(make_runner):
    result = make_runner(memory_bytes=256 * 1024 * 1024).run(ScriptCommand(mode="alloc"))
    assert (result.status, result.exit_code, result.reason) == ("failed", 3, "exited with code 3")
    assert result.stdout == "MemoryError\n"


def test_peak_memory_is_the_programs_own_not_the_workers(make_runner):
    ballast = b"w" * (256 * 1024 * 1024)  # the calling process is far larger than the program
    result = make_runner().run(ScriptCommand(mode="grow"))
    assert 64 * 1024 * 1024 <= result.peak_rss_bytes < 128 * 1024 * 1024
    assert psutil.Process().memory_info().rss > 256 * 1024 * 1024 and ballast


def test_the_credentials_that_the_profiles_service_decrypts_are_accepted(make_runner):
    decrypted = ProfileCredentials(name="alpha", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                                   region="eu-west-1", role_arn="arn:aws:iam::111111111111:role/reader",
                                   external_id="ext-1")
    result = make_runner().run(ScriptCommand(mode="progress", profile="alpha"), profiles=[decrypted])
    assert result.status == "succeeded"


def test_each_run_gets_its_own_output_dir_and_lists_only_regular_files(make_runner):
    runner = make_runner()
    first, second = runner.run(ScriptCommand(mode="files")), runner.run(ScriptCommand(mode="files"))
    assert first.output_dir != second.output_dir
    assert [f.name for f in first.files] == ["report.csv", "report.json"]
    assert all(f.parent == first.output_dir for f in first.files)


def test_progress_is_parsed_from_output_lines_and_usage_is_measured(make_runner):
    progress: list[tuple[int, str]] = []
    result = make_runner().run(ScriptCommand(mode="progress"),
                               on_progress=lambda pct, step: progress.append((pct, step)))
    assert progress == [(25, "step"), (50, "step"), (100, "step")]
    assert (result.status, result.exit_code, result.reason) == ("succeeded", 0, None)
    assert result.peak_rss_bytes > 1024 * 1024 and result.cpu_seconds > 0
    assert result.output_dir is None and result.files == ()  # an empty output dir is not kept
    assert not Path(result.argv[2]).exists()


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
