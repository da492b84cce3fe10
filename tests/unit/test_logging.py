"""Structured logs: JSON lines with the request id, user, route, status and latency of each request."""

from __future__ import annotations

import io
import json
import logging

from dashapp.logging_setup import configure_logging
from tests.factories import make_user
from tests.web import sign_in_and_enrol


def test_each_request_ends_with_one_json_line_naming_its_user_route_status_and_latency(client, session):
    make_user(session, username="lou")
    session.commit()
    sign_in_and_enrol(client, "lou")
    configure_logging("INFO", "json")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        response = client.get("/api/v1/tasks/?limit=5", headers={"X-Request-ID": "req-12345678"})
    finally:
        configure_logging("INFO", "text")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_lines = [line for line in lines if line["logger"] == "dashapp.request"]
    assert len(request_lines) == 1
    line = request_lines[0]
    assert line["route"] == "/api/v1/tasks/" and line["status"] == 200 and line["method"] == "GET"
    assert line["request_id"] == "req-12345678" == response.headers["X-Request-ID"]
    assert line["user_id"] is not None and isinstance(line["latency_ms"], float)
    assert {"ts", "level", "msg"} <= set(line)
    assert all(entry["request_id"] == "req-12345678" for entry in lines)  # the audit line of the view too


def test_an_offered_request_id_that_is_not_a_plain_token_is_replaced(client):
    response = client.get("/health/live/", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert response.headers["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(response.headers["X-Request-ID"]) == 32
