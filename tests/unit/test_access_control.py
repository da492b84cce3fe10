"""Every route but sign-in, health and static files refuses a request without a session."""

from __future__ import annotations

import re

import pytest

from tests.factories import make_user
from tests.web import dash_headers, post_form, sign_in_and_enrol

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
            "state": [{"id": "url", "property": "search", "value": ""}]}
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
