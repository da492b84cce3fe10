"""The JSON API: its OpenAPI description covers every route, and the costs endpoint answers exactly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from openapi_spec_validator import validate

from services.costs import ingest
from tests.factories import fact, make_user
from tests.web import sign_in_and_enrol


def _signed_in(client, session, roles=("finance",)):
    make_user(session, username="api", roles=roles)
    session.commit()
    sign_in_and_enrol(client, "api")


def test_openapi_description_is_valid_and_lists_every_api_route(app, client, session):
    _signed_in(client, session)
    spec = client.get("/api/v1/openapi.json").json
    validate(spec)
    routes = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("api.") and r.endpoint != "api.openapi"}
    documented = set(spec["paths"])
    assert {r.replace("<int:", "{").replace(">", "}") for r in routes} == documented
    assert "ProfileCreate" in spec["components"]["schemas"]
    assert "secret_access_key" not in str(spec["components"]["schemas"]["ProfileRead"])


def test_costs_endpoint_groups_filters_and_sums_exactly(client, session):
    _signed_in(client, session)
    ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1), rows=[
        fact(dt.date(2026, 1, 2), "111111111111", "Amazon EC2", "10.00000000001", region="us-east-1"),
        fact(dt.date(2026, 1, 3), "111111111111", "Amazon EC2", "5", region="eu-west-1"),
        fact(dt.date(2026, 1, 3), "222222222222", "Amazon S3", "2.5", region="eu-west-1"),
    ])
    session.commit()
    body = client.get("/api/v1/costs/?start=2026-01-01&end=2026-01-31&granularity=total&group_by=service"
                      "&filter.region=eu-west-1").json
    assert {tuple(r["keys"]): Decimal(r["amount"]) for r in body["rows"]} == {
        ("Amazon EC2",): Decimal("5"), ("Amazon S3",): Decimal("2.5")}
    everything = client.get("/api/v1/costs/?start=2026-01-01&end=2026-01-31&granularity=total").json
    assert Decimal(everything["total"]) == Decimal("17.50000000001")


def test_costs_endpoint_refuses_bad_input_with_the_field(client, session):
    _signed_in(client, session)
    response = client.get("/api/v1/costs/?start=2026-01-31&end=2026-01-01")
    assert response.status_code == 422 and "before the start" in response.json["error"]
    assert client.get("/api/v1/costs/?start=x&end=2026-01-01").status_code == 422
    assert client.get("/api/v1/costs/?start=2026-01-01&end=2026-01-02&group_by=evil").status_code == 422


def test_api_calls_beyond_the_rate_limit_answer_429(db_url, tmp_path):
    from dashapp import create_app
    from dashapp.extensions import limiter
    from services import database
    from tests.conftest import make_settings

    app = create_app(make_settings(db_url, tmp_path, RATE_LIMIT_API="3/h"))
    limiter.reset()  # counters live in the process: start from zero
    client = app.test_client()
    with database.session_scope() as s:
        make_user(s, username="busy")
    sign_in_and_enrol(client, "busy")
    statuses = [client.get("/api/v1/tasks/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
