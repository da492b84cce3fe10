"""The CLI runner: credentials checked before any process starts; real processes timed out, cut,
cancelled with their whole tree, limited, and started without application secrets."""

from __future__ import annotations

import re
import stat
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import psutil
import pytest

from services.aws.credentials import ProfileCredentials
from services.errors import InvalidInput, ProgramUnavailable
from services.runner.aws_finops import run_aws_finops_per_profile
from services.runner.cli_runner import CHILD_SITE, CancelToken, CliRunner, RunnerConfig
from services.runner.commands import (
    AwsFinopsCost,
    AwsStsGetCallerIdentity,
    CliCommand,
    ProfileName,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ALPHA = ProfileCredentials(name="alpha", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region="eu-west-1")


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
    elif mode == "aws":
        import boto3, botocore.config
        retries = botocore.config.Config(retries={"total_max_attempts": 2, "mode": "standard"})
        for profile in ("alpha", "_keyless"):
            client = boto3.Session(profile_name=profile).client("sts", endpoint_url="http://127.0.0.1:9",
                                                                 config=retries)
            try:
                client.get_caller_identity()
            except Exception as exc:
                print(profile, type(exc).__name__, flush=True)
""")


class ScriptCommand(CliCommand):
    """A test-only command: never on the production allow-list."""

    program: ClassVar[str] = "test-script"
    name: ClassVar[str] = "test.script"

    mode: Literal["tree", "escape", "hang", "wait", "flood", "spin", "alloc", "grow", "files", "progress", "aws"]
    profile: ProfileName | None = None
    keyless: list[ProfileName] = []

    def profile_names(self) -> tuple[str, ...]:
        return (self.profile,) if self.profile else ()

    def keyless_profile_names(self) -> tuple[str, ...]:
        return tuple(self.keyless)

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
                                b"NO_COLOR", b"TERM", b"COLUMNS", b"PYTHONPATH", b"FINOPS_REQUEST_COUNTS"}
    # PYTHONPATH holds only the request counter, which writes its counts into the scratch HOME's parent.
    assert seen["env"][b"PYTHONPATH"] == str(CHILD_SITE).encode()
    assert Path(seen["env"][b"FINOPS_REQUEST_COUNTS"].decode()).parent == seen["home"].parent
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


def test_the_aws_requests_a_child_sends_are_counted_and_a_keyless_profile_sends_none(make_runner):
    result = make_runner().run(ScriptCommand(mode="aws", profile="alpha", keyless=["_keyless"]), profiles=[ALPHA])
    assert result.stdout.splitlines() == ["alpha EndpointConnectionError", "_keyless NoCredentialsError"]
    assert result.aws_requests == {"sts": 2}  # alpha's two attempts; the keyless profile's call is never sent


def test_a_keyless_profile_may_not_take_the_name_of_a_profile_with_keys(make_runner):
    with pytest.raises(InvalidInput, match="keyless"):
        make_runner().run(ScriptCommand(mode="progress", profile="alpha", keyless=["alpha"]), profiles=[ALPHA])
