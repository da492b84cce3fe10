"""Every route but sign-in, health and static files refuses a request without a session."""

from __future__ import annotations

import re

import pytest

from tests.factories import PASSWORD, make_user
from tests.web import csrf_from, dash_headers, post_form, sign_in_and_enrol

PUBLIC = re.compile(r"^/(auth|health|static)/")


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule)


def test_every_route_without_a_session_is_refused(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        path = _concrete(rule.rule)
        if PUBLIC.match(path):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code in (302, 401), f"{method} {path} answered {response.status_code}"
            if response.status_code == 302:
                assert "/auth/login" in response.headers["Location"]
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("path", [
    "/_dash-layout", "/_dash-dependencies", "/_dash-component-suites/dash/dash-renderer/build/dash_renderer.min.js",
    "/assets/app.css", "/api/v1/overview/", "/api/v1/openapi.json", "/metrics/", "/_reload-hash",
])
def test_dash_internals_and_api_answer_401_without_a_session(client, path):
    assert client.get(path).status_code == 401


@pytest.mark.parametrize("path", ["/", "/jobs", "/anything/else"])
def test_pages_redirect_to_sign_in_with_the_way_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


@pytest.mark.parametrize("path", ["/auth/login", "/health/live/", "/health/ready/", "/health/",
                                  "/static/css/bootstrap.min.css"])
def test_public_paths_answer_without_a_session(client, path):
    assert client.get(path).status_code == 200


def test_metrics_accept_the_scrape_token(app, client):
    app.config["METRICS_TOKEN"] = "scrape-token-123"
    assert client.get("/metrics/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/metrics/", headers={"Authorization": "Bearer scrape-token-123"})
    assert response.status_code == 200 and b"finops_http_requests_total" in response.data


def test_dash_callback_without_csrf_token_is_refused(client, session):
    make_user(session, username="ivy")
    session.commit()
    sign_in_and_enrol(client, "ivy")
    body = {"output": "page-content.children", "outputs": {"id": "page-content", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": "/jobs"}], "changedPropIds": [],
            "state": [{"id": "url", "property": "search", "value": ""},
                      {"id": "shared-filters", "property": "data", "value": None}]}
    assert client.post("/_dash-update-component", json=body).status_code == 400
    ok = client.post("/_dash-update-component", json=body, headers=dash_headers(client))
    assert ok.status_code == 200 and b"Jobs" in ok.data


def test_login_form_without_csrf_token_is_refused(client, session):
    make_user(session, username="jack")
    session.commit()
    response = client.post("/auth/login", data={"username": "jack", "password": "whatever"})
    assert response.status_code == 400


def test_strict_security_headers_on_every_page(client):
    headers = client.get("/auth/login").headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_sign_out_ends_the_session_for_real(client, session):
    make_user(session, username="kim")
    session.commit()
    sign_in_and_enrol(client, "kim")
    assert client.get("/_dash-layout").status_code == 200
    stolen = client.get_cookie("finops_session").value
    post_form(client, "/auth/logout", {})
    assert client.get("/_dash-layout").status_code == 401
    client.set_cookie("finops_session", stolen)  # replaying the old cookie does not help
    assert client.get("/_dash-layout").status_code == 401


def test_first_write_after_sign_in_passes_csrf_with_the_cookie_just_set(client, session):
    make_user(session, username="lee", roles=("admin",))
    session.commit()
    sign_in_and_enrol(client, "lee")  # no page load between the sign-in and the write
    response = client.post("/api/v1/tasks/", json={"kind": "rollups.rebuild", "parameters": {}},
                           headers=dash_headers(client))
    assert response.status_code == 201, response.get_data(as_text=True)


UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: Origins that are not this app's (the test client is http://localhost): another site, an opaque
#: origin, another port, another scheme, a look-alike host.
OTHER_ORIGINS = ["https://evil.example", "null", "http://localhost:8050", "https://localhost",
                 "http://localhost.evil.example"]
DASH_BODY = {"output": "page-content.children", "outputs": {"id": "page-content", "property": "children"},
             "inputs": [{"id": "url", "property": "pathname", "value": "/jobs"}], "changedPropIds": [],
             "state": [{"id": "url", "property": "search", "value": ""},
                       {"id": "shared-filters", "property": "data", "value": None}]}


def test_every_unsafe_route_refuses_a_request_from_another_origin(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        path = _concrete(rule.rule)
        for method in sorted(rule.methods & UNSAFE):
            response = client.open(path, method=method, headers={"Origin": "https://evil.example"})
            assert response.status_code == 403, f"{method} {path} answered {response.status_code}"
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("origin", OTHER_ORIGINS)
def test_a_valid_csrf_token_from_another_origin_is_refused(client, session, origin):
    make_user(session, username="mia", roles=("admin",))
    session.commit()
    sign_in_and_enrol(client, "mia")
    headers = {**dash_headers(client), "Origin": origin}
    dash = client.post("/_dash-update-component", json=DASH_BODY, headers=headers)
    api = client.post("/api/v1/tasks/", json={"kind": "rollups.rebuild", "parameters": {}}, headers=headers)
    for response in (dash, api):
        assert response.status_code == 403
        assert "another site" in response.get_json()["detail"]
    own = {**dash_headers(client), "Origin": "http://localhost"}
    assert client.post("/_dash-update-component", json=DASH_BODY, headers=own).status_code == 200
    assert client.post("/api/v1/tasks/", json={"kind": "rollups.rebuild", "parameters": {}},
                       headers=own).status_code == 201


@pytest.mark.parametrize("origin", OTHER_ORIGINS)
def test_the_sign_in_form_from_another_origin_is_refused(client, session, origin):
    make_user(session, username="noor")
    session.commit()
    token = csrf_from(client.get("/auth/login").get_data(as_text=True))
    form = {"username": "noor", "password": PASSWORD, "csrf_token": token}
    refused = client.post("/auth/login", data=form, headers={"Origin": origin})
    assert refused.status_code == 403 and "another site" in refused.get_data(as_text=True)
    assert client.post("/auth/login", data=form, headers={"Origin": "http://localhost"}).status_code == 302


@pytest.mark.parametrize("referer, status", [
    (None, 403), ("https://evil.example/auth/login", 403), ("http://localhost/auth/login", 403),
    ("https://localhost/auth/login", 302),
])
def test_over_https_without_origin_the_referer_must_be_this_site(client, session, referer, status):
    make_user(session, username="omar")
    session.commit()
    token = csrf_from(client.get("/auth/login", base_url="https://localhost").get_data(as_text=True))
    response = client.post("/auth/login", base_url="https://localhost",
                           data={"username": "omar", "password": PASSWORD, "csrf_token": token},
                           headers={"Referer": referer} if referer else {})
    assert response.status_code == status


def test_without_origin_or_referer_plain_http_is_not_a_cross_site_request(client, session):
    make_user(session, username="pat")
    session.commit()
    response = post_form(client, "/auth/login", {"username": "pat", "password": PASSWORD})
    assert response.status_code == 302


def test_a_configured_trusted_origin_may_send_writes(db_url, tmp_path):
    from dashapp import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(db_url, tmp_path, TRUSTED_ORIGINS="https://finops.example.com"))
    client = app.test_client()
    token = csrf_from(client.get("/auth/login").get_data(as_text=True))
    form = {"username": "nobody", "password": "wrong", "csrf_token": token}
    assert client.post("/auth/login", data=form, headers={"Origin": "https://finops.example.com"}).status_code == 401
    assert client.post("/auth/login", data=form, headers={"Origin": "https://evil.example"}).status_code == 403
