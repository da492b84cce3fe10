"""The job lifecycle: submit, approve, claim under a lease, run once, cancel, give up."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import tests.plugins.job_kinds  # noqa: F401 - registers the test job kind
from models import AuditLog, Task, TaskMetrics, TaskResult
from models.base import utcnow
from services import database
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.identity.permissions import Actor
from services.jobs import kinds, lifecycle
from tests.factories import make_profiles, make_user


@pytest.fixture()
def people(db_url):
    with database.session_scope() as s:
        ids = {name: make_user(s, username=name, roles=roles).id for name, roles in
               [("eve", ("engineering",)), ("fay", ("finance",)), ("gus", ("engineering",)), ("ann", ("admin",))]}
    return {name: Actor(user_id=i, username=name, roles=frozenset(
        {"eve": {"engineering"}, "fay": {"finance"}, "gus": {"engineering"}, "ann": {"admin"}}[name]))
        for name, i in ids.items()}


def _submit(actor, policy=lifecycle.ApprovalPolicy(), **params):  # noqa: B008 - a frozen dataclass
    with database.session_scope() as s:
        return lifecycle.submit_job(s, actor=actor, kind="test.steps", parameters=params, policy=policy)


def _task(task_id):
    with database.session_scope() as s:
        return s.get(Task, task_id)


def test_queued_job_runs_once_and_keeps_its_result_and_metrics(people):
    view = _submit(people["eve"], steps=3)
    assert view.status == "queued"
    assert lifecycle.execute_task(view.id, owner="w1").claimed
    again = lifecycle.execute_task(view.id, owner="w2")  # a redelivered message
    assert not again.claimed and again.reason == "already succeeded"
    task = _task(view.id)
    assert (task.status, task.progress, task.result_summary) == ("succeeded", 100, {"steps": 3})
    with database.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(TaskResult).where(TaskResult.task_id == view.id)) == 1
        assert s.get(TaskMetrics, view.id).wall_seconds > 0
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "task"))]
    assert actions == ["job.submit", "job.succeeded"]
    assert "step 3 of 3" in task.log


def test_failure_is_recorded_with_its_reason(people):
    view = _submit(people["eve"], steps=3, fail_at=2)
    lifecycle.execute_task(view.id, owner="w1")
    task = _task(view.id)
    assert task.status == "failed" and task.error == "RuntimeError: step 2 broke"


def test_job_with_a_live_lease_is_not_claimed_twice(people):
    view = _submit(people["eve"])
    with database.session_scope() as s:
        assert lifecycle.claim(s, task_id=view.id, owner="w1").claimed
    with database.session_scope() as s:
        outcome = lifecycle.claim(s, task_id=view.id, owner="w2")
    assert not outcome.claimed and outcome.reason == "running elsewhere" and outcome.retry_in > 0


def test_expired_lease_is_claimed_again_and_only_the_new_owner_finishes(people):
    view = _submit(people["eve"])
    with database.session_scope() as s:
        lifecycle.claim(s, task_id=view.id, owner="dead-worker")
    later = utcnow() + dt.timedelta(seconds=lifecycle.LEASE_SECONDS + 5)
    with database.session_scope() as s:
        assert lifecycle.claim(s, task_id=view.id, owner="w2", now=later).claimed
    with database.session_scope() as s:
        assert not lifecycle.finish(s, task_id=view.id, owner="dead-worker", actor=people["eve"], status="succeeded")
        assert lifecycle.finish(s, task_id=view.id, owner="w2", actor=people["eve"], status="succeeded")
    assert _task(view.id).attempts == 2


def test_a_run_cut_off_after_keeping_its_result_leaves_exactly_one_result_after_the_retry(people):
    view = _submit(people["eve"], steps=2)
    with database.session_scope() as s:
        lifecycle.claim(s, task_id=view.id, owner="killed-worker", now=utcnow() - dt.timedelta(hours=1))
    # The killed run had kept its result, then died before it could finish the job.
    kinds.JobContext(task_id=view.id, actor=people["eve"], parameters={}, cancel=threading.Event(),
                    attempt=1).add_result("steps.json", data={"steps": 2})
    with database.session_scope() as s:
        assert len(lifecycle.list_results(s, actor=people["eve"], task_id=view.id)) == 1  # visible while it stands
    lifecycle.execute_task(view.id, owner="w2")  # the lease ran out: the retry runs the job again
    with database.session_scope() as s:
        kept = s.scalars(select(TaskResult).where(TaskResult.task_id == view.id)).all()
        listed = lifecycle.list_results(s, actor=people["eve"], task_id=view.id)
    assert _task(view.id).status == "succeeded" and _task(view.id).attempts == 2
    assert [(r.name, r.attempt) for r in kept] == [("steps.json", 2)] and len(listed) == 1


def test_job_that_keeps_losing_its_worker_fails_after_max_attempts(people):
    view = _submit(people["eve"])
    now = utcnow()
    for attempt in range(3):
        now += dt.timedelta(seconds=lifecycle.LEASE_SECONDS + 5)
        with database.session_scope() as s:
            assert lifecycle.claim(s, task_id=view.id, owner=f"w{attempt}", now=now).claimed
    now += dt.timedelta(seconds=lifecycle.LEASE_SECONDS + 5)
    with database.session_scope() as s:
        assert lifecycle.claim(s, task_id=view.id, owner="w9", now=now).reason == "attempts exhausted"
    task = _task(view.id)
    assert task.status == "failed" and "gave up after 3 attempts" in task.error


@pytest.fixture()
def ten_minute_lease(monkeypatch):
    """Configure a lease of ten minutes the way the app does at start (restored after the test)."""
    for name in ("LEASE_SECONDS", "_publisher", "_policy"):
        monkeypatch.setattr(lifecycle, name, getattr(lifecycle, name))
    lifecycle.configure(lease_seconds=600)
    return 600


def _lease_left(task_id):
    with database.session_scope() as s:
        return (s.scalar(select(Task.lease_expires_at).where(Task.id == task_id)) - utcnow()).total_seconds()


def test_claim_and_heartbeat_follow_the_configured_lease(people, ten_minute_lease):
    view = _submit(people["eve"])
    with database.session_scope() as s:
        assert lifecycle.claim(s, task_id=view.id, owner="w1").claimed
    assert _lease_left(view.id) > ten_minute_lease - 30
    # The heartbeat renews well before the lease runs out (three beats a lease).
    assert lifecycle.heartbeat_seconds() == ten_minute_lease / 3


def test_a_worker_whose_clock_runs_fast_cannot_take_a_live_job(people, monkeypatch):
    view = _submit(people["eve"])
    with database.session_scope() as s:
        assert lifecycle.claim(s, task_id=view.id, owner="w1").claimed
    ahead = utcnow() + dt.timedelta(hours=1)
    monkeypatch.setattr(lifecycle, "utcnow", lambda: ahead)  # this worker's clock is an hour fast
    with database.session_scope() as s:
        outcome = lifecycle.claim(s, task_id=view.id, owner="w2")
        assert lifecycle.claim_next(s, owner="w3") is None
        assert lifecycle.stale_task_ids(s) == []
    assert not outcome.claimed and outcome.reason == "running elsewhere"
    assert 0 < outcome.retry_in <= lifecycle.LEASE_SECONDS + 1
    assert _task(view.id).lease_owner == "w1"


def test_a_lease_taken_by_a_worker_whose_clock_runs_slow_is_live(people, monkeypatch):
    view = _submit(people["eve"])
    behind = utcnow() - dt.timedelta(hours=1)
    with monkeypatch.context() as slow:
        slow.setattr(lifecycle, "utcnow", lambda: behind)  # the claiming worker's clock is an hour slow
        with database.session_scope() as s:
            assert lifecycle.claim(s, task_id=view.id, owner="w1").claimed
    with database.session_scope() as s:
        outcome = lifecycle.claim(s, task_id=view.id, owner="w2")
    assert not outcome.claimed and outcome.reason == "running elsewhere"
    assert _lease_left(view.id) > 0


def test_job_submitted_without_a_policy_follows_the_configured_one(people, monkeypatch):
    for name in ("LEASE_SECONDS", "_publisher", "_policy"):
        monkeypatch.setattr(lifecycle, name, getattr(lifecycle, name))
    lifecycle.configure(lease_seconds=60, policy=lifecycle.ApprovalPolicy(max_ce_cost_usd=Decimal("0.10")))
    with database.session_scope() as s:
        view = lifecycle.submit_job(s, actor=people["eve"], kind="test.steps", parameters={"ce_requests": 50})
    assert view.status == "awaiting_approval" and "$0.50 exceed $0.10" in view.step


def test_two_writers_logging_at_once_lose_no_line(people):
    view = _submit(people["eve"])
    lines, start, errors = 40, threading.Barrier(2), []

    def write(name):
        # Each writer is a thread of its own, and each line is written in a session of its own.
        ctx = kinds.JobContext(task_id=view.id, actor=people["eve"], parameters={}, cancel=threading.Event())
        start.wait()
        try:
            for i in range(lines):
                ctx.log(f"{name} line {i}")
                ctx.progress(i, f"{name} step {i}")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    log = _task(view.id).log.splitlines()
    assert errors == []
    for name in ("a", "b"):
        assert [line.split(" ", 1)[1] for line in log if line.split(" ", 1)[1].startswith(f"{name} line")] == [
            f"{name} line {i}" for i in range(lines)]
        assert sum(1 for line in log if f" {name} step " in line) == lines


def test_log_keeps_its_newest_characters_up_to_the_cap(people, monkeypatch):
    monkeypatch.setattr(kinds, "MAX_LOG_CHARS", 100)
    view = _submit(people["eve"])
    ctx = kinds.JobContext(task_id=view.id, actor=people["eve"], parameters={}, cancel=threading.Event())
    for i in range(30):
        ctx.log(f"line {i:02d}")
    log = _task(view.id).log
    assert len(log) == 100 and log.endswith(" line 29\n")
    with database.session_scope() as s:
        assert lifecycle.get_log(s, actor=people["eve"], task_id=view.id) == log


def test_cancel_before_start_needs_no_worker(people):
    view = _submit(people["eve"])
    with database.session_scope() as s:
        assert lifecycle.request_cancel(s, actor=people["eve"], task_id=view.id).status == "cancelled"
    assert not lifecycle.execute_task(view.id, owner="w1").claimed


def test_cancel_of_a_running_job_reaches_its_worker(people, monkeypatch):
    monkeypatch.setattr(lifecycle, "LEASE_SECONDS", 4)  # a heartbeat every 1.3 seconds
    view = _submit(people["eve"], steps=200, seconds_per_step=0.05)
    runner = threading.Thread(target=lifecycle.execute_task, args=(view.id,), kwargs={"owner": "w1"})
    runner.start()
    while _task(view.id).progress < 5:
        threading.Event().wait(0.05)
    with database.session_scope() as s:
        lifecycle.request_cancel(s, actor=people["eve"], task_id=view.id)
    runner.join(15)
    task = _task(view.id)
    assert not runner.is_alive() and task.status == "cancelled" and task.progress < 100


def test_someone_elses_job_is_not_found_and_not_cancellable(people):
    view = _submit(people["eve"])
    with database.session_scope() as s, pytest.raises(NotFound):
        lifecycle.get_task(s, actor=people["gus"], task_id=view.id)
    with database.session_scope() as s, pytest.raises(NotFound):
        lifecycle.request_cancel(s, actor=people["gus"], task_id=view.id)


def test_costly_job_waits_for_another_approver(people):
    view = _submit(people["eve"], ce_requests=500)  # USD 5.00 of Cost Explorer requests
    assert view.status == "awaiting_approval" and "$5.00" in view.step
    assert not lifecycle.execute_task(view.id, owner="w1").claimed
    with database.session_scope() as s, pytest.raises(PermissionDenied):
        lifecycle.decide_approval(s, actor=people["gus"], task_id=view.id, approve=True, comment="fine")
    with database.session_scope() as s:
        approved = lifecycle.decide_approval(s, actor=people["fay"], task_id=view.id, approve=True, comment="budgeted")
    assert approved.status == "queued" and approved.approval_comment == "budgeted"
    assert lifecycle.execute_task(view.id, owner="w1").claimed


def test_approvers_cannot_approve_their_own_job(people):
    with database.session_scope() as s:
        profile_ids = make_profiles(s, 9, run_grant_to=people["fay"].user_id)
    view = _submit(people["fay"], profile_ids=profile_ids)
    assert view.status == "awaiting_approval" and "9 profiles" in view.step
    with database.session_scope() as s, pytest.raises(PermissionDenied, match="your own"):
        lifecycle.decide_approval(s, actor=people["fay"], task_id=view.id, approve=True, comment="mine")


def test_rejected_job_is_cancelled_with_the_comment_and_audited(people):
    view = _submit(people["eve"], ce_requests=500)
    with database.session_scope() as s:
        lifecycle.decide_approval(s, actor=people["ann"], task_id=view.id, approve=False, comment="too costly")
    with database.session_scope() as s, pytest.raises(Conflict):
        lifecycle.decide_approval(s, actor=people["fay"], task_id=view.id, approve=True, comment="late")
    task = _task(view.id)
    assert task.status == "cancelled" and task.error == "rejected: too costly"
    with database.session_scope() as s:
        assert s.scalar(select(AuditLog).where(AuditLog.action == "job.reject")).details["comment"] == "too costly"


@pytest.mark.parametrize("kind, params, message", [
    ("no.such.kind", {}, "no kind of job"),
    ("test.steps", {"steps": 0}, "steps"),
    ("test.steps", {"steps": 2, "shell": "rm -rf /"}, "shell"),
])
def test_invalid_job_is_refused_and_nothing_is_recorded(people, kind, params, message):
    with database.session_scope() as s, pytest.raises(InvalidInput, match=message):
        lifecycle.submit_job(s, actor=people["eve"], kind=kind, parameters=params)
    with database.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 0


def test_role_without_permission_cannot_submit(db_url):
    viewer = Actor(user_id=None, username="exec", roles=frozenset({"executive"}))
    with database.session_scope() as s, pytest.raises(PermissionDenied):
        lifecycle.submit_job(s, actor=viewer, kind="test.steps", parameters={})


def test_unpublished_and_abandoned_jobs_are_found_for_republishing(people):
    queued = _submit(people["eve"])
    running = _submit(people["eve"])
    with database.session_scope() as s:
        lifecycle.claim(s, task_id=running.id, owner="dead")
    later = utcnow() + dt.timedelta(seconds=lifecycle.LEASE_SECONDS + 5)
    with database.session_scope() as s:
        assert lifecycle.stale_task_ids(s, now=later) == [queued.id, running.id]
        lifecycle.mark_published(s, task_ids=[queued.id])
    with database.session_scope() as s:
        assert lifecycle.stale_task_ids(s, now=utcnow()) == []


def test_form_schema_fills_in_defaults_that_a_factory_makes():
    import services.jobs.cli_kinds  # noqa: F401 - registers the aws-finops kinds

    audit = kinds.get_kind("aws_finops.audit")
    assert "default" not in audit.parameters.model_json_schema()["properties"]["regions"]
    schema = audit.form_schema()
    assert schema["properties"]["regions"]["default"] == ["us-east-1"]
    assert schema["properties"]["report_types"]["default"] == ["json"]
    assert "default" not in schema["properties"]["profile_ids"]  # required: the user chooses


@pytest.mark.parametrize("grant", [None, False])
def test_a_job_for_a_profile_without_a_run_grant_is_refused_at_submit(people, grant):
    from models import AwsProfile, ProfileGrant

    with database.session_scope() as s:
        profile = AwsProfile(name="prod", description="", auth_type="keys", default_regions=["us-east-1"])
        s.add(profile)
        s.flush()
        if grant is not None:
            s.add(ProfileGrant(user_id=people["fay"].user_id, profile_id=profile.id, can_run_jobs=grant))
        profile_id = profile.id
    error = NotFound if grant is None else PermissionDenied
    with database.session_scope() as s, pytest.raises(error, match="prod|not found"):
        lifecycle.submit_job(s, actor=people["fay"], kind="collect.profile", parameters={"profile_id": profile_id})
    with database.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 0
    with database.session_scope() as s:  # an admin may use any profile
        assert lifecycle.submit_job(s, actor=people["ann"], kind="collect.profile",
                                    parameters={"profile_id": profile_id}).status in ("queued", "awaiting_approval")


def test_a_job_that_fails_on_a_database_error_shows_no_sql(people):
    with database.session_scope() as s:
        view = lifecycle.submit_job(s, actor=people["ann"], kind="test.broken_query", parameters={})
    lifecycle.execute_task(view.id, owner="w1")
    task = _task(view.id)
    assert task.status == "failed"
    assert "SELECT" not in task.error and "no_such_table" not in task.error and "database error" in task.error


@pytest.mark.parametrize("task_id", [2**31, 10**20, 0, -1])
def test_a_job_id_beyond_the_id_range_is_not_found(people, task_id):
    with database.session_scope() as s, pytest.raises(NotFound):
        lifecycle.get_task(s, actor=people["ann"], task_id=task_id)
    with database.session_scope() as s, pytest.raises(NotFound):
        lifecycle.request_cancel(s, actor=people["ann"], task_id=task_id)
