"""Schedules: cron validation, due jobs submitted once, missed runs collapsed, disabled owners stopped."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

import tests.plugins.job_kinds  # noqa: F401 - registers the test job kind
from models import Schedule, Task, User
from services import database
from services.errors import InvalidInput
from services.identity.permissions import Actor
from services.jobs import schedules
from tests.factories import make_user

UTC = dt.UTC


@pytest.fixture()
def owner(db_url):
    with database.session_scope() as s:
        user = make_user(s, username="sched", roles=("finance",))
        return Actor(user_id=user.id, username="sched", roles=frozenset({"finance"}))


def _create(owner, cron="0 6 * * *", **params):
    data = schedules.ScheduleCreate(name="daily steps", kind="test.steps", parameters=params or {"steps": 1},
                                    cron=cron)
    with database.session_scope() as s:
        return schedules.create_schedule(s, actor=owner, data=data)


def test_next_run_follows_the_cron_expression_in_utc():
    after = dt.datetime(2026, 11, 27, 6, 0, 30, tzinfo=UTC)
    assert schedules.next_run("0 6 * * *", after=after) == dt.datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    assert schedules.next_run("*/15 * * * *", after=after) == dt.datetime(2026, 11, 27, 6, 15, tzinfo=UTC)


@pytest.mark.parametrize("cron", ["bad", "61 * * * *", "* * * *", "0 6 * * * rm -rf /"])
def test_invalid_cron_is_refused(cron):
    with pytest.raises(InvalidInput, match="cron"):
        schedules.ScheduleCreate(name="x", kind="test.steps", cron=cron)


def test_schedule_parameters_are_checked_like_a_job(owner):
    with pytest.raises(InvalidInput, match="steps"):
        _create(owner, steps=0)


def test_due_schedule_submits_one_job_and_moves_on(owner):
    view = _create(owner)
    due = view.next_run_at + dt.timedelta(minutes=1)
    with database.session_scope() as s:
        queued = schedules.run_due(s, now=due)
    with database.session_scope() as s:
        assert schedules.run_due(s, now=due) == []  # not twice for the same due time
        schedule = s.get(Schedule, view.id)
        assert len(queued) == 1 and s.get(Task, queued[0]).owner_id == owner.user_id
        assert schedule.last_run_at == due and schedule.next_run_at == view.next_run_at + dt.timedelta(days=1)


def test_runs_missed_during_downtime_run_once_when_service_resumes(owner):
    view = _create(owner, cron="*/5 * * * *")
    back = view.next_run_at + dt.timedelta(hours=3)  # 36 runs were missed
    with database.session_scope() as s:
        assert len(schedules.run_due(s, now=back)) == 1
    with database.session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 1
        assert s.get(Schedule, view.id).next_run_at > back


def test_disabled_owner_stops_their_schedule(owner):
    view = _create(owner)
    with database.session_scope() as s:
        s.get(User, owner.user_id).is_active = False
    with database.session_scope() as s:
        assert schedules.run_due(s, now=view.next_run_at + dt.timedelta(minutes=1)) == []
        assert s.scalar(select(func.count()).select_from(Task)) == 0
