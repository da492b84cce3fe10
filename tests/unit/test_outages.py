"""While the database is away, requests fail fast and clean: 503 with Retry-After, never a 500."""

from __future__ import annotations

import pytest

from services import database
from tests.factories import make_user
from tests.web import dash_headers, sign_in_and_enrol

#: Nothing listens on port 9 of the loopback: connecting is refused at once.
UNREACHABLE = {"sqlite": "sqlite:////nonexistent-folder/finops.db",
               "postgresql": "postgresql+psycopg://postgres@127.0.0.1:9/finops"}

OVERVIEW_CALLBACK = {
    "output": "..overview-message.children...overview-kpis.children...overview-total.children..."
              "overview-trend.figure...overview-services.figure...overview-accounts-chart.figure..",
    "outputs": [{"id": i, "property": p} for i, p in (
        ("overview-message", "children"), ("overview-kpis", "children"), ("overview-total", "children"),
        ("overview-trend", "figure"), ("overview-services", "figure"), ("overview-accounts-chart", "figure"))],
    "inputs": [{"id": "overview-range", "property": "start_date", "value": "2026-01-01"},
               {"id": "overview-range", "property": "end_date", "value": "2026-01-31"},
               {"id": "overview-accounts", "property": "value", "value": []},
               {"id": "overview-metric", "property": "value", "value": "unblended_cost"}],
    "changedPropIds": ["overview-range.start_date"], "state": [],
}


@pytest.fixture()
def signed_in_then_database_gone(client, session, backend):  # type: ignore[no-untyped-def]
    make_user(session, username="olga")
    session.commit()
    sign_in_and_enrol(client, "olga")
    headers = dash_headers(client)
    database.configure(UNREACHABLE[backend])
    return headers


@pytest.mark.parametrize("path", ["/api/v1/overview/", "/api/v1/profiles/", "/api/v1/tasks/", "/", "/jobs"])
def test_a_request_while_the_database_is_away_answers_503_with_retry_after(
        client, signed_in_then_database_gone, path):
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_data(as_text=True)
    assert "unavailable" in body.lower() and "Traceback" not in body and "psycopg" not in body


def test_a_dash_callback_while_the_database_is_away_answers_503(client, signed_in_then_database_gone):
    response = client.post("/_dash-update-component", json=OVERVIEW_CALLBACK, headers=signed_in_then_database_gone)
    assert response.status_code == 503
    assert "unavailable" in response.get_json()["detail"].lower()


def test_while_redis_is_away_sign_in_and_the_api_work_and_limits_count_in_memory(db_url, tmp_path):
    from dashapp import create_app
    from dashapp.extensions import limiter
    from tests.conftest import make_settings

    app = create_app(make_settings(db_url, tmp_path, REDIS_URL="redis://127.0.0.1:9/0", RATE_LIMIT_API="3/h"))
    limiter._fallback_storage.reset()  # noqa: SLF001 - the counters of earlier tests live in this process
    client = app.test_client()
    with database.session_scope() as s:
        make_user(s, username="rita")
    sign_in_and_enrol(client, "rita")  # the sign-in's own rate limit falls back too
    statuses = [client.get("/api/v1/tasks/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    health = client.get("/health/")
    assert health.status_code == 503 and any("memory" in w for w in health.json["warnings"])
