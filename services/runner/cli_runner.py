"""The CLI runner: the only place in the product that starts a process.

It runs a command of ``commands`` (the allow-list, as data): the program by its absolute path
(resolved once, against a fixed search path) with ``shell=False``, in a scratch HOME that holds
the run's AWS profiles and is deleted afterwards, with a minimal environment built from scratch
(never a copy of ``os.environ``), a time-out that kills the whole process group, an output cap,
CPU and memory limits, cancellation and line-by-line output; the command reads progress from
the lines.

Pure service: no web stack, no database; the jobs layer records what the runner returns.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import psutil

from services.aws.credentials import ProfileCredentials
from services.errors import DomainError, InvalidInput, ProgramUnavailable
from services.runner._aws_files import check_credentials, write_aws_files
from services.runner._processes import (
    CUT,
    EOF,
    MAX_LINE_BYTES,
    descendants,
    has_exited,
    high_water_rss,
    list_files,
    pump,
    signal_group,
    signal_name,
    signal_processes,
)
from services.runner.commands import UNSAFE_CATEGORIES, CliCommand, check_argv, is_region, revalidate

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

_POLL_SECONDS = 0.05
#: How often the process tree and its memory are sampled: each sample reads all of /proc (about
#: 3 ms of CPU), which at every poll cost a job of four runs at once a fifth of a core.
_SAMPLE_SECONDS = 0.2
#: Put on a child's PYTHONPATH: its sitecustomize counts the AWS requests botocore sends.
CHILD_SITE = Path(__file__).resolve().parent / "child_site"


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
    #: How many processes a job may run at once (aws-finops runs its profiles in this many groups).
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.kill_grace_seconds <= 0 or self.output_cap_bytes <= 0:
            raise ValueError("timeout, grace and output cap must be positive")
        if not 1 <= self.concurrency <= 32:
            raise ValueError("concurrency must be between 1 and 32")
        if self.endpoint_url is not None and not re.fullmatch(
                r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?", self.endpoint_url):
            raise ValueError("endpoint_url must be a plain http(s) URL")
        for name, value in self.extra_env.items():
            if name not in OPERATOR_ENV_NAMES or any(unicodedata.category(c) in UNSAFE_CATEGORIES for c in value):
                raise ValueError(f"extra_env may not set {name!r}")
        if not all(os.path.isabs(p) for p in self.search_path):
            raise ValueError("search_path entries must be absolute")
        is_region(self.default_region)


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
    #: HTTP requests the program's botocore sent, per service ("ce", "sts", "ec2" ...); empty when
    #: the program is not a botocore one or was killed before it could tell.
    aws_requests: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_success(self) -> bool:
        return self.status == "succeeded"



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
        command = revalidate(command)
        argv = [self.executable(command.program), *command.build_args(output_dir=output_dir)]
        check_argv(argv[1:])
        return argv

    def _environment(self, home: Path, tmp: Path, config: Path, credentials: Path,
                     profiles: Sequence[ProfileCredentials], counts: Path) -> dict[str, str]:
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
            "PYTHONPATH": str(CHILD_SITE),  # its sitecustomize counts the AWS requests sent
            "FINOPS_REQUEST_COUNTS": str(counts),
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
        tree = list(seen | set(descendants(proc.pid)))  # also those that left the group with setsid()
        signal_group(proc.pid, signal.SIGTERM)
        signal_processes(tree, signal.SIGTERM)
        deadline = time.monotonic() + self.config.kill_grace_seconds
        while time.monotonic() < deadline and not has_exited(proc.pid):
            time.sleep(_POLL_SECONDS)
        needed_kill = not has_exited(proc.pid)
        # The leader is at most a zombie here, so its group id cannot have been reused.
        signal_group(proc.pid, signal.SIGKILL)
        signal_processes(tree, signal.SIGKILL)
        return needed_kill

    def run(self, command: CliCommand, *, profiles: Sequence[ProfileCredentials] = (),
            timeout: float | None = None, cancel: threading.Event | None = None,
            on_output: OutputFn | None = None, on_progress: ProgressFn | None = None) -> RunResult:
        """Run an allow-listed command with the given profiles and return what it did.

        Callbacks run in the calling thread. Raises InvalidInput for a bad command or missing
        credentials, ProgramUnavailable when the program is not installed; nothing is started then.
        """
        command = revalidate(command)
        executable = self.executable(command.program)
        needed = command.profile_names()
        supplied = {p.name: p for p in profiles}
        missing = [name for name in needed if name not in supplied]
        if missing:
            raise InvalidInput("No credentials were supplied for a profile of this command.",
                               details={"profiles": missing})
        keyless = command.keyless_profile_names()
        check_credentials(profiles)
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
            config, credentials = write_aws_files(home / ".aws", used, keyless=keyless)
            argv = [executable, *command.build_args(output_dir=output_dir)]
            check_argv(argv[1:])
            counts = scratch / "aws-requests.json"
            env = self._environment(home, tmp, config, credentials, used, counts)
            logger.info("starting %s: %s", command.name, argv)
            started = time.monotonic()
            proc = self._spawn(argv, env, home)
            self._limit(proc.pid)
            lines: queue.Queue[object] = queue.Queue()
            reader = threading.Thread(target=pump, args=(proc.stdout, lines, self.config.output_cap_bytes),
                                      name=f"cli-runner-{proc.pid}", daemon=True)
            reader.start()
            result = self._supervise(command, proc, reader, lines, argv=argv, started=started, limit=limit,
                                     cancel=cancel, on_output=on_output, on_progress=on_progress,
                                     output_dir=output_dir)
            return dataclasses.replace(result, aws_requests=_read_counts(counts))
        finally:
            if proc is None:
                shutil.rmtree(output_dir, ignore_errors=True)
            elif proc.returncode is None:
                # A callback raised, or the worker is shutting down: no process outlives the run.
                signal_group(proc.pid, signal.SIGKILL)
                signal_processes(descendants(proc.pid), signal.SIGKILL)
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
        next_sample = 0.0

        def emit(raw: bytes) -> None:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if on_output is not None:
                on_output(line)
            if on_progress is not None:
                progress = command.progress_from_line(line)
                if progress is not None:
                    on_progress(*progress)

        while True:
            if not exited and time.monotonic() >= next_sample:
                next_sample = time.monotonic() + _SAMPLE_SECONDS
                tree = descendants(proc.pid)
                seen.update(tree)
                peak = max(peak, high_water_rss(proc.pid, tree))
            try:
                item = lines.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                item = None
            while item is not None:
                if item is EOF:
                    eof = True
                elif item is CUT:
                    truncated = True
                elif isinstance(item, bytes):
                    chunks.append(item)
                    pending += item
                    if pending.endswith(b"\n") or len(pending) >= MAX_LINE_BYTES:
                        emit(pending)
                        pending = b""
                try:
                    item = lines.get_nowait()
                except queue.Empty:
                    item = None
            if not exited and has_exited(proc.pid):
                exited, exited_at = True, time.monotonic()
                # Leftovers (a child still holding the pipe, in the group or not) go with the leader.
                signal_group(proc.pid, signal.SIGKILL)
                signal_processes(list(seen), signal.SIGKILL)
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
            name = signal_name(-exit_code)
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
        files = list_files(output_dir)
        if not any(output_dir.iterdir()):
            output_dir.rmdir()  # nothing to keep (an aws CLI call writes no file)
        result = RunResult(program=command.program, command=command.name, argv=tuple(argv), status=status,
                           exit_code=exit_code, reason=reason, stdout=stdout, truncated=truncated,
                           wall_seconds=round(wall, 3), cpu_seconds=round(cpu, 3), peak_rss_bytes=peak,
                           output_dir=output_dir if files else None, files=files, messages=tuple(messages))
        logger.info("%s finished: %s (exit %s, %.2f s wall, %.2f s CPU, %d MiB peak)", command.name, status,
                    exit_code, wall, cpu, peak // (1024 * 1024))
        return result


def _read_counts(path: Path) -> dict[str, int]:
    """The child's AWS request counts per service (see child_site/sitecustomize.py)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}


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
