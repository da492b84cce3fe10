"""The health probes: public answers say only ok or degraded per part; asking the workers is cached."""

from __future__ import annotations

import os

import pytest

from dashapp import health
from services.jobs import lifecycle
from tests.conftest import make_settings
from tests.factories import make_user
from tests.web import sign_in_and_enrol

TOKEN = "scrape-token-123"


@pytest.fixture()
def celery_client(db_url, tmp_path, monkeypatch):
    """A web app with a Celery broker (a real Redis, no worker listening) and a metrics token."""
    from dashapp import create_app

    for name in ("LEASE_SECONDS", "_publisher", "_policy"):  # create_app configures the jobs
        monkeypatch.setattr(lifecycle, name, getattr(lifecycle, name))
    # Not the run's own pair of databases (TEST_REDIS_DB and the next): the browser and integration
    # tests' workers listen there for the whole session, and would answer.
    broker = f"redis://127.0.0.1:6379/{(int(os.environ.get('TEST_REDIS_DB', '11')) + 2) % 16}"
    app = create_app(make_settings(db_url, tmp_path, CELERY_BROKER_URL=broker, METRICS_TOKEN=TOKEN))
    app.config["TESTING"] = True
    inspections = []
    control = app.extensions["celery"].control
    real_inspect = control.inspect

    def counted_inspect(*args, **kwargs):
        inspections.append(args)
        return real_inspect(*args, **kwargs)

    monkeypatch.setattr(control, "inspect", counted_inspect)
    return app.test_client(), inspections


def test_health_asks_the_workers_once_within_a_few_seconds(celery_client, monkeypatch):
    client, inspections = celery_client
    first = client.get("/health/")
    second = client.get("/health/")
    assert len(inspections) == 1
    assert first.status_code == second.status_code == 503  # no worker answers
    assert first.json == second.json
    later = health._clock() + health.WORKERS_CHECK_SECONDS + 1
    monkeypatch.setattr(health, "_clock", lambda: later)
    client.get("/health/")
    assert len(inspections) == 2


@pytest.mark.parametrize("path, status", [("/health/", "unhealthy"), ("/health/ready/", "ok")])
def test_public_health_says_only_ok_or_degraded_per_part(celery_client, path, status):
    client, _ = celery_client
    public = client.get(path).json
    assert public["status"] == status  # no worker answers, which only /health/ asks
    assert public["checks"]["database"] == {"ok": True, "status": "ok"}
    if path == "/health/":
        assert public["checks"]["workers"] == {"ok": False, "status": "degraded"}
    assert all(set(check) == {"ok", "status"} for check in public["checks"].values())
    detailed = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).json
    assert detailed["checks"]["database"]["detail"] in ("sqlite", "postgresql")
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).json == public


def test_signed_in_users_see_the_details_of_health(client, session):
    make_user(session, username="ivy")
    session.commit()
    sign_in_and_enrol(client, "ivy")
    checks = client.get("/health/").json["checks"]
    assert checks["workers"] == {"ok": True, "status": "ok", "detail": "embedded (background processes)"}
