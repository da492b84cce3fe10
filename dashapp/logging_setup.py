"""Structured logging: one JSON object per line in production (python-json-logger), plain text on the
embedded default. Every line written while a request runs carries its request id and user id; each
request ends with one "request" line with its route, status and latency.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

_access = logging.getLogger("dashapp.request")
#: A request id a proxy may pass on (X-Request-ID); anything else is replaced by our own.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContext(logging.Filter):
    """Add the current request's id and user to every record (empty outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        in_request = has_request_context()
        record.request_id = g.get("request_id", "") if in_request else ""
        user = g.get("_login_user") if in_request else None
        record.user_id = getattr(user, "id", None) if user is not None and user.is_authenticated else None
        return True


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send the application's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            "{asctime}{levelname}{name}{message}", style="{", rename_fields={
                "asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"},
            datefmt="%Y-%m-%dT%H:%M:%S%z"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RequestContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    """Give each request an id (returned as X-Request-ID) and log one line when it ends."""

    @app.before_request
    def _start() -> None:
        offered = request.headers.get("X-Request-ID", "")
        g.request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:  # refused before the first hook ran
            return response
        response.headers["X-Request-ID"] = g.request_id
        route = request.url_rule.rule if request.url_rule else "unmatched"
        _access.info("%s %s %s", request.method, route, response.status_code, extra={
            "method": request.method, "route": route, "status": response.status_code,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1)})
        return response
