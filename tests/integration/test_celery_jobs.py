"""Jobs on the real production parts: the API, Redis, Celery workers killed mid-job, a broker outage."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import create_engine, func, select

from models import Task, TaskResult
from tests.conftest import TEST_AUDIT_KEY, TEST_KEYS, TEST_SECRET, make_settings
from tests.stacks import CLI, free_port, http_session, production_env, stop

pytestmark = pytest.mark.integration


def _wait_all_finished(engine, ids: list[int], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            states = dict(conn.execute(select(Task.id, Task.status).where(Task.id.in_(ids))).all())
        if all(s in ("succeeded", "failed", "cancelled") for s in states.values()):
            return states
        time.sleep(0.5)
    raise AssertionError(f"jobs still unfinished after {timeout} s: {states}")


def _pool_children(stack) -> list[psutil.Process]:
    return psutil.Process(stack.processes[0].pid).children(recursive=True)


def test_twenty_jobs_survive_killed_workers_each_with_exactly_one_result(production_stack):
    stack = production_stack
    http = http_session(stack)
    ids = []
    for _ in range(20):
        response = http.post(f"{stack.base_url}/api/v1/tasks/", timeout=10,
                             json={"kind": "test.steps", "parameters": {"steps": 8, "seconds_per_step": 0.15}})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    kills = 0
    engine = create_engine(stack.database_url)
    # Kill prefork children with SIGKILL while they hold jobs, three times.
    deadline = time.monotonic() + 60
    while kills < 3 and time.monotonic() < deadline:
        with engine.connect() as conn:
            running = conn.scalar(select(func.count()).select_from(Task).where(Task.status == "running",
                                                                               Task.id.in_(ids)))
        children = _pool_children(stack)
        if running and children:
            os.kill(children[0].pid, signal.SIGKILL)
            kills += 1
            time.sleep(1.5)
        else:
            time.sleep(0.1)
    # And the whole worker once: its unacknowledged job comes back through the lease and beat.
    os.killpg(stack.processes[0].pid, signal.SIGKILL)
    stack.processes[0].wait(10)
    kills += 1
    stack.restart_worker()
    states = _wait_all_finished(engine, ids, timeout=240)
    with engine.connect() as conn:
        results = dict(conn.execute(select(TaskResult.task_id, func.count()).where(TaskResult.task_id.in_(ids))
                                    .group_by(TaskResult.task_id)).all())
        retried = conn.scalar(select(func.count()).select_from(Task).where(Task.id.in_(ids), Task.attempts > 1))
    engine.dispose()
    assert kills == 4
    assert list(states.values()).count("succeeded") == 20, states
    assert results == {task_id: 1 for task_id in ids}  # 0 lost, none twice
    assert retried >= 1


def test_job_api_refuses_bad_input_and_other_users_jobs(production_stack):
    http = http_session(production_stack)
    base = production_stack.base_url
    bad = http.post(f"{base}/api/v1/tasks/", json={"kind": "test.steps", "parameters": {"steps": "x; rm -rf /"}})
    assert bad.status_code == 422 and "steps" in bad.json()["detail"]
    assert http.post(f"{base}/api/v1/tasks/", data="not json").status_code == 422
    assert http.get(f"{base}/api/v1/tasks/999999/").status_code == 404
    assert http.get(f"{base}/api/v1/tasks/?limit=0").status_code == 422
    no_csrf = http.post(f"{base}/api/v1/tasks/", json={"kind": "test.steps"}, headers={"X-CSRFToken": ""})
    assert no_csrf.status_code == 400


def test_job_logs_and_cancel_over_the_api(production_stack):
    http = http_session(production_stack)
    base = production_stack.base_url
    job = http.post(f"{base}/api/v1/tasks/", json={"kind": "test.steps",
                                                   "parameters": {"steps": 400, "seconds_per_step": 0.05}}).json()
    deadline = time.monotonic() + 60
    while http.get(f"{base}/api/v1/tasks/{job['id']}/").json()["progress"] < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "step 1 of 400" in http.get(f"{base}/api/v1/tasks/{job['id']}/logs/").text
    assert http.post(f"{base}/api/v1/tasks/{job['id']}/cancel/").status_code == 200
    while http.get(f"{base}/api/v1/tasks/{job['id']}/").json()["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    final = http.get(f"{base}/api/v1/tasks/{job['id']}/").json()
    assert final["status"] == "cancelled" and final["progress"] < 100


def test_job_submitted_while_the_broker_is_down_runs_when_it_is_back(db_url, tmp_path, backend):
    if backend != "postgresql":
        pytest.skip("the production broker path runs on PostgreSQL")
    from dashapp import create_app
    from dashapp.tasks import publish_with
    from services import database
    from services.jobs import lifecycle
    from tests.factories import make_user
    from tests.web import dash_headers, sign_in_and_enrol

    port = free_port()  # nothing listens here yet: the broker is down
    broker = f"redis://127.0.0.1:{port}/0"
    app = create_app(make_settings(db_url, tmp_path, EMBEDDED=False, CELERY_BROKER_URL=broker,
                                   JOB_PLUGINS="tests.plugins.job_kinds"))
    client = app.test_client()
    with database.session_scope() as s:
        make_user(s, username="ops", roles=("admin",))
    sign_in_and_enrol(client, "ops")
    response = client.post("/api/v1/tasks/", json={"kind": "test.steps", "parameters": {"steps": 2}},
                           headers=dash_headers(client))
    assert response.status_code == 201
    assert "will start as soon as the queue is back" in response.json["notice"]
    task_id = response.json["id"]
    with database.session_scope() as s:
        assert s.get(Task, task_id).status == "queued" and s.get(Task, task_id).published_at is None

    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True)
    env = {**production_env(tmp_path, db_url, 0), "CELERY_BROKER_URL": broker, "REDIS_URL": broker,
           "SECRET_KEY": TEST_SECRET, "ENCRYPTION_KEYS": TEST_KEYS, "AUDIT_HMAC_KEY": TEST_AUDIT_KEY}
    worker = subprocess.Popen([CLI, "worker", "--concurrency", "1"], env=env, start_new_session=True,
                              stdout=(tmp_path / "w.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        for _ in range(50):
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        with database.session_scope() as s:
            stale = lifecycle.stale_task_ids(s, unpublished_after=0)
        assert publish_with(app.extensions["celery"], stale).published == 1  # what beat does every 30 s
        engine = database.get_engine()
        assert _wait_all_finished(engine, [task_id], timeout=60) == {task_id: "succeeded"}, \
            Path(tmp_path / "w.log").read_text()
    finally:
        stop(worker)
        stop(server)
