"""The JSON API: its OpenAPI description covers every route, and the costs endpoint answers exactly."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from openapi_spec_validator import validate

from services.costs import ingest
from tests.factories import fact, make_user
from tests.web import dash_headers, sign_in_and_enrol


def _signed_in(client, session, roles=("finance",)):
    make_user(session, username="api", roles=roles)
    session.commit()
    sign_in_and_enrol(client, "api")


def test_openapi_description_is_valid_and_lists_every_api_route(app, client, session):
    _signed_in(client, session)
    spec = client.get("/api/v1/openapi.json").json
    validate(spec)
    from dashapp.api import UNDOCUMENTED

    routes = {r.rule for r in app.url_map.iter_rules()
              if r.endpoint.startswith("api.") and r.endpoint not in UNDOCUMENTED}
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
    assert response.status_code == 422 and "before the start" in response.json["detail"]
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


def _admin(client, session):
    _signed_in(client, session, roles=("admin",))
    return dash_headers(client)


def test_an_unknown_api_path_answers_404_problem_json(client, session):
    headers = _admin(client, session)
    for method in ("GET", "POST", "DELETE"):
        response = client.open("/api/v1/no-such-thing/", method=method, headers=headers)
        assert response.status_code == 404, method
        assert response.mimetype == "application/problem+json"
        assert response.json["status"] == 404 and "no-such-thing" in response.json["detail"]


def test_a_known_api_path_with_the_wrong_method_answers_405_with_allow(client, session):
    response = client.put("/api/v1/tasks/", json={}, headers=_admin(client, session))
    assert response.status_code == 405 and response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_an_unknown_query_parameter_answers_400_naming_it(client, session):
    _signed_in(client, session)
    response = client.get("/api/v1/tasks/?limit=5&colour=blue")
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert "colour" in response.json["detail"]
    assert [e["field"] for e in response.json["errors"]] == ["colour"]
    assert client.get("/api/v1/profiles/?x=1").status_code == 400


def test_invalid_input_answers_422_problem_naming_the_field(client, session):
    _signed_in(client, session)
    response = client.get("/api/v1/tasks/?limit=1000")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] == "limit"
    bad_group = client.get("/api/v1/costs/?start=2026-01-01&end=2026-01-02&group_by=evil")
    assert bad_group.status_code == 422 and bad_group.json["errors"][0]["field"].startswith("group_by")


def test_money_is_a_plain_decimal_string_even_for_zero(client, session):
    _signed_in(client, session)
    ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1), rows=[
        fact(dt.date(2026, 1, 2), "111111111111", "Amazon EC2", "0"),
        fact(dt.date(2026, 1, 2), "111111111111", "Amazon S3", "0.00000000001"),
    ])
    session.commit()
    body = client.get("/api/v1/costs/?start=2026-01-01&end=2026-01-31&granularity=total"
                      "&group_by=service").json
    amounts = [body["total"], *(r["amount"] for r in body["rows"])]
    assert all(re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", a) for a in amounts), amounts
    assert {r["keys"][0]: Decimal(r["amount"]) for r in body["rows"]} == {
        "Amazon EC2": Decimal(0), "Amazon S3": Decimal("0.00000000001")}


@pytest.mark.parametrize("path", ["/api/v1/tasks/2147483648/", "/api/v1/profiles/99999999999999999999/",
                                  "/api/v1/tasks/2147483648/logs/"])
def test_ids_beyond_32_bits_answer_422_naming_the_id(client, session, path):
    _signed_in(client, session)
    response = client.get(path)
    assert response.status_code == 422 and response.json["errors"][0]["field"].endswith("_id")


def test_json_nested_1000_deep_answers_400(client, session):
    headers = _admin(client, session)
    deep = '{"a": ' * 1000 + '"x"' + "}" * 1000
    body = '{"kind": "rollups.rebuild", "parameters": ' + deep + "}"
    response = client.post("/api/v1/tasks/", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400 and "nested deeper" in response.json["detail"]
    assert client.get("/api/v1/tasks/").json == []  # nothing was recorded


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/api/v1/schedules/", {"name": "nightly\x00", "kind": "rollups.rebuild", "cron": "0 2 * * *"},
     "name"),
    ("POST", "/api/v1/tasks/", {"kind": "rollups.rebuild", "parameters": {"note": "a\x00b"}}, "parameters.note"),
    ("POST", "/api/v1/tasks/1/approve/", {"comment": "ok\x00"}, "comment"),
    ("GET", "/api/v1/costs/?start=2026-01-01&end=2026-01-31&filter.service=EC2%00", None, "filter.service"),
])
def test_a_nul_character_in_any_text_answers_422_naming_the_field(client, session, method, path, body, field):
    headers = _admin(client, session)
    response = client.open(path, method=method, json=body, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["errors"][0]["field"] == field
    assert client.get("/api/v1/schedules/").json == []


def _profile_body(**extra):
    return {"name": "prod", "access_key_id": "AKIAABCDEFGHIJKLMNOP", "secret_access_key": "s" * 40, **extra}


def test_null_for_a_field_that_cannot_be_cleared_answers_422(client, session):
    headers = _admin(client, session)
    created = client.post("/api/v1/profiles/", json=_profile_body(), headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    path = f"/api/v1/profiles/{created.json['id']}/"
    for field in ("is_payer", "description", "default_regions", "is_active"):
        response = client.patch(path, json={field: None}, headers=headers)
        assert response.status_code == 422, field
        assert field in response.json["detail"]
    assert client.patch(path, json={"payer_profile_id": None}, headers=headers).status_code == 200
    assert client.get(path).json["is_payer"] is False


def test_the_longest_secrets_allowed_are_stored_and_kept(client, session):
    headers = _admin(client, session)
    body = _profile_body(session_token="T" * 4096, external_id="e" * 1224,
                         auth_type="keys")
    created = client.post("/api/v1/profiles/", json=body, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    from services.aws import profiles
    from services.identity.permissions import Actor

    credentials = profiles.get_credentials(session, actor=Actor.system(), profile_id=created.json["id"],
                                           purpose="test")
    assert credentials.session_token == "T" * 4096 and credentials.external_id == "e" * 1224


def test_the_api_limit_is_one_budget_per_user_across_operations(db_url, tmp_path):
    from dashapp import create_app
    from dashapp.extensions import limiter
    from services import database
    from tests.conftest import make_settings

    app = create_app(make_settings(db_url, tmp_path, RATE_LIMIT_API="4/h"))
    limiter.reset()
    first, second = app.test_client(), app.test_client()
    with database.session_scope() as s:
        make_user(s, username="one")
        make_user(s, username="two")
    sign_in_and_enrol(first, "one")
    sign_in_and_enrol(second, "two")
    paths = ["/api/v1/tasks/", "/api/v1/profiles/", "/api/v1/schedules/", "/api/v1/overview/",
             "/api/v1/tasks/"]
    assert [first.get(p).status_code for p in paths] == [200, 200, 200, 200, 429]
    assert second.get("/api/v1/tasks/").status_code == 200  # another user has a budget of their own


def test_cost_queries_and_job_logs_read_through_the_api_are_audited(client, session):
    from sqlalchemy import select

    from models import AuditLog

    headers = _admin(client, session)
    client.get("/api/v1/costs/?start=2026-01-01&end=2026-01-31&group_by=service")
    task = client.post("/api/v1/tasks/", json={"kind": "rollups.rebuild", "parameters": {}}, headers=headers).json
    client.get(f"/api/v1/tasks/{task['id']}/logs/")
    session.expire_all()
    rows = {(r.action, r.object_id) for r in session.scalars(select(AuditLog))}
    assert "costs.query" in {action for action, _ in rows} and ("job.log_view", str(task["id"])) in rows


def test_the_api_docs_page_is_served_locally_behind_the_session(app, client, session):
    assert client.get("/api/v1/docs/").status_code == 401
    _signed_in(client, session)
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200 and b"/api/v1/openapi.json" in page.data
    srcs = re.findall(rb'(?:src|href)="([^"]+)"', page.data)
    assert srcs and all(s.startswith(b"/") for s in srcs)  # nothing from another host
    for src in srcs:
        assert client.get(src.decode()).status_code == 200, src
    assert client.get("/api/v1/docs/assets/..%2Fsettings.py").status_code == 404


def test_list_cost_and_service_category_of_the_focus_sample_are_queryable_and_exact(client, session):
    import csv
    from collections import defaultdict

    from services.imports import pipeline
    from tests.unit.imports.test_importers import SAMPLE

    _signed_in(client, session)
    pipeline.import_file(session, path=SAMPLE)
    session.commit()
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    by_category: dict = defaultdict(Decimal)
    for record in records:
        by_category[record["ServiceCategory"]] += Decimal(record["BilledCost"])
    whole = "/api/v1/costs/?start=2024-09-01&end=2024-10-31&granularity=total"
    listed = client.get(f"{whole}&metric=list_cost")
    assert listed.status_code == 200, listed.json
    assert Decimal(listed.json["total"]) == sum(Decimal(r["ListCost"]) for r in records)
    grouped = client.get(f"{whole}&group_by=service_category")
    assert grouped.status_code == 200, grouped.json
    assert {r["keys"][0]: Decimal(r["amount"]) for r in grouped.json["rows"]} == by_category
    assert client.get(f"{whole}&metric=contracted_cost").status_code == 200


def test_contracted_cost_is_a_metric_summed_exactly_at_every_grain(client, session):
    _signed_in(client, session)
    rows = [fact(dt.date(2026, 1, day), "111111111111", "Amazon EC2", "10", service_category="Compute")
            for day in (2, 20)]
    rows = [ingest.FactRow(**{**{f: getattr(r, f) for f in r.__slots__}, "contracted_cost": Decimal("7.12345678901")})
            for r in rows]
    ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1), rows=rows)
    session.commit()
    for query in ("granularity=total", "granularity=month&group_by=service_category", "granularity=day",
                  "granularity=total&group_by=usage_type"):
        body = client.get(f"/api/v1/costs/?start=2026-01-01&end=2026-01-31&metric=contracted_cost&{query}")
        assert body.status_code == 200, (query, body.json)
        assert Decimal(body.json["total"]) == Decimal("14.24691357802"), query


@pytest.mark.parametrize(("roles", "status"), [(("finance",), 403), (("admin",), 200)])
def test_tag_aliases_are_read_by_anyone_and_replaced_by_admins_only(client, session, roles, status):
    _signed_in(client, session, roles=roles)
    shown = client.get("/api/v1/tag-aliases/")
    assert shown.status_code == 200 and shown.json["environment"] == ["environment", "Environment", "env"]
    changed = {**shown.json, "environment": ["environment", "stage"]}
    answer = client.put("/api/v1/tag-aliases/", json=changed, headers=dash_headers(client))
    assert answer.status_code == status, answer.json
    expected = changed if status == 200 else shown.json
    assert client.get("/api/v1/tag-aliases/").json == expected
