"""Start the real application as separate processes: the embedded demo, or serve + worker on
PostgreSQL and Redis, the way an operator runs them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.crypto import Keyring

BIN = Path(sys.executable).parent
CLI = str(BIN / "finops-dashboard")
REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, *, timeout: float, process: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text() if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a local test URL
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s:\n{log.read_text() if log else ''}")


def stop(process: subprocess.Popen[bytes], *, timeout: float = 15) -> None:
    """Stop a process group gracefully, then for good."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@dataclass
class Stack:
    """A running application: where it answers, how to sign in, what it runs on."""

    base_url: str
    username: str
    password: str
    database_url: str
    kind: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    totp_secret: str = ""
    last_step: int = -1
    #: A signed-in browser's cookies and an HTTP session, reused so that each test need not sign
    #: in again (every sign-in spends a TOTP time step, and the next one waits for a new step).
    browser_state: dict[str, Any] | None = None
    http: Any = None

    def next_totp_code(self) -> str:
        """Return a code the server has not seen yet (waiting for the next step when needed)."""
        import pyotp

        while True:
            step = int(time.time()) // 30
            candidate = max(step, self.last_step + 1)
            if candidate <= step + 1:
                self.last_step = candidate
                return pyotp.TOTP(self.totp_secret).at(candidate * 30)
            time.sleep(1)

    def restart_worker(self) -> None:
        """Start a new Celery worker in place of the first process (after a test killed it)."""
        stop(self.processes[0])
        self.processes[0] = _spawn([CLI, "worker", "--concurrency", "2", "--loglevel", "WARNING"], self.env,
                                   self.logs[1])

    def add_admin(self, username: str) -> Stack:
        """Create another administrator with `create-admin`, the way an operator does; return this
        stack as that user sees it (they enrol TOTP at their first sign-in)."""
        import dataclasses

        argv = [CLI, "create-admin", "--username", username]
        if self.kind == "embedded":
            argv += ["--instance", str(Path(self.database_url.removeprefix("sqlite:///")).parent)]
        env = self.env or {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        created = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
        password = re.search(r"Password \(shown once\): (\S+)", created.stdout)
        assert created.returncode == 0 and password, created.stdout + created.stderr
        return dataclasses.replace(self, username=username, password=password.group(1), totp_secret="",
                                   last_step=-1, browser_state=None, http=None)

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)


def http_session(stack: Stack) -> Any:
    """Sign in over HTTP like a browser (password, then TOTP), once per stack; return a requests
    session that sends the CSRF header on writes, as the Dash front end does."""
    import requests

    if stack.http is not None:
        return stack.http

    csrf = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
    http = requests.Session()
    page = http.get(f"{stack.base_url}/auth/login", timeout=10).text
    response = http.post(f"{stack.base_url}/auth/login", timeout=10, allow_redirects=False, data={
        "username": stack.username, "password": stack.password, "csrf_token": csrf.search(page).group(1)})
    assert response.status_code == 302, response.text
    step = response.headers["Location"]
    page = http.get(f"{stack.base_url}{step}", timeout=10).text
    if step.endswith("/enrol"):
        stack.totp_secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', page).group(1)
    done = http.post(f"{stack.base_url}{step}", timeout=10, allow_redirects=False,
                     data={"code": stack.next_totp_code(), "csrf_token": csrf.search(page).group(1)})
    assert done.status_code == 302, done.text
    http.headers["X-CSRFToken"] = http.cookies["_csrf_token"]
    stack.http = http
    return http


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


#: The browser tests follow an aws-finops job profile by profile on the page (its bar moves between
#: them); concurrent groups of profiles are tested against the CLI in tests/integration.
ONE_PROFILE_AT_A_TIME = {"RUNNER_CONCURRENCY": "1"}


def start_embedded(tmp: Path, *, aws_endpoint: str | None = None) -> Stack:
    """Run `finops-dashboard demo` exactly as the README says, in its own instance folder."""
    port = free_port()
    log = tmp / "demo.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    env.update({"JOB_PLUGINS": "tests.plugins.job_kinds", "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                **ONE_PROFILE_AT_A_TIME})
    if aws_endpoint:
        env["AWS_ENDPOINT_URL"] = aws_endpoint
    process = _spawn([CLI, "demo", "--port", str(port), "--instance", str(tmp / "instance")], env, log)
    wait_for_http(f"http://127.0.0.1:{port}/health/live/", timeout=240, process=process, log=log)
    password = re.search(r"password: (\S+)", log.read_text())  # printed at the first start only
    return Stack(base_url=f"http://127.0.0.1:{port}", username="admin",
                 password=password.group(1) if password else "",
                 database_url=f"sqlite:///{tmp / 'instance' / 'finops.db'}", kind="embedded",
                 processes=[process], logs=[log])


def production_env(tmp: Path, database_url: str, redis_db: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update({
        **ONE_PROFILE_AT_A_TIME,
        "SECRET_KEY": "integration-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": f"redis://{REDIS_HOST}:6379/{redis_db}",
        "REDIS_URL": f"redis://{REDIS_HOST}:6379/{redis_db + 1}",
        "ENCRYPTION_KEYS": Keyring.generate_spec("it1"),
        "AUDIT_HMAC_KEY": "integration-audit-key-" + uuid.uuid4().hex,
        "SESSION_COOKIE_SECURE": "false",
        "METRICS_TOKEN": "metrics-" + uuid.uuid4().hex,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "INSTANCE_DIR": str(tmp / "instance"),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
        # Short leases and re-publishing so that recovery from a killed worker is quick to watch.
        "JOB_LEASE_SECONDS": "6",
        "JOB_REPUBLISH_SECONDS": "3",
        "JOB_PLUGINS": "tests.plugins.job_kinds",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    })
    return env


def start_production(tmp: Path, database_url: str, redis_db: int, *, aws_endpoint: str | None = None) -> Stack:
    """Migrate, seed, create an admin, then run `serve` (gunicorn) and `worker` (Celery)."""
    import redis

    for db in (redis_db, redis_db + 1):
        redis.Redis(host=REDIS_HOST, port=6379, db=db).flushdb()
    env = production_env(tmp, database_url, redis_db)
    if aws_endpoint:
        env["AWS_ENDPOINT_URL"] = aws_endpoint
    for argv in ([CLI, "db", "upgrade"], [CLI, "seed-demo"]):
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=600)
    created = subprocess.run([CLI, "create-admin", "--username", "admin"], env=env, check=True,
                             capture_output=True, text=True, timeout=60)
    password = re.search(r"Password \(shown once\): (\S+)", created.stdout)
    assert password, created.stdout + created.stderr
    port = free_port()
    web_log, worker_log, beat_log = tmp / "web.log", tmp / "worker.log", tmp / "beat.log"
    live_log = tmp / "interactive.log"
    worker = _spawn([CLI, "worker", "--concurrency", "2", "--loglevel", "WARNING"], env, worker_log)
    live = _spawn([CLI, "worker", "--interactive", "--loglevel", "WARNING"], env, live_log)
    beat = _spawn([CLI, "beat", "--loglevel", "WARNING"], env, beat_log)
    web = _spawn([CLI, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"], env, web_log)
    stack = Stack(base_url=f"http://127.0.0.1:{port}", username="admin", password=password.group(1),
                  database_url=database_url, kind="production", processes=[worker, beat, web, live],
                  logs=[web_log, worker_log, beat_log, live_log], env=env)
    try:
        wait_for_http(f"{stack.base_url}/health/live/", timeout=60, process=web, log=web_log)
        wait_for_http(f"{stack.base_url}/health/", timeout=60, process=worker, log=worker_log)
    except BaseException:
        stack.close()
        raise
    return stack
