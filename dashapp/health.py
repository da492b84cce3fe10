"""/health/* probes and /metrics/ in Prometheus text format."""

from __future__ import annotations

import logging
import os
import time

import sqlalchemy.exc
from celery import Celery
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask import session as web_session
from flask_login import current_user
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from dashapp.security import has_metrics_token
from services import health

logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

#: How long one answer of the workers serves /health/ (per web process).
WORKERS_CHECK_SECONDS = 10.0
_WORKERS_CHECK = "finops_health_workers"
_clock = time.monotonic

REQUESTS = Counter("finops_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("finops_http_request_seconds", "HTTP request latency", ["method", "route"])


def _route_label() -> str:
    rule = request.url_rule.rule if request.url_rule else "unmatched"
    return "dash" if rule.startswith("/<path") else rule


def _checks(include_workers: bool) -> list[health.Check]:
    settings = current_app.config["FINOPS_SETTINGS"]
    checks = [
        health.check_database(),
        health.check_redis(settings.REDIS_URL, "cache"),
        health.check_redis(settings.CELERY_BROKER_URL, "broker"),
    ]
    if include_workers:
        checks.append(_check_workers())
    return checks


def _check_workers() -> health.Check:
    celery_app = current_app.extensions.get("celery")
    if celery_app is None:
        return health.Check("workers", True, "embedded (background processes)")
    cached: health.CachedCheck = current_app.extensions[_WORKERS_CHECK]
    return cached.get(lambda: _ask_workers(celery_app), now=_clock())


def _ask_workers(celery_app: Celery) -> health.Check:
    from dashapp.celery_app import INTERACTIVE_QUEUE, JOBS_QUEUE

    try:
        replies = celery_app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception as exc:  # noqa: BLE001 - a broker error means no worker can be seen
        return health.Check("workers", False, type(exc).__name__)
    # Jobs need a `worker`; the pages' live updates a `worker --interactive`.
    counts = {name: sum(any(q.get("name") == queue for q in queues) for queues in replies.values())
              for name, queue in (("jobs", JOBS_QUEUE), ("interactive", INTERACTIVE_QUEUE))}
    return health.Check("workers", all(counts.values()),
                        f"{len(replies)} responding ({', '.join(f'{n}: {c}' for n, c in counts.items())})")


#: What still works, and how, while a check fails (only where the product degrades rather than stops).
_DEGRADED = {"cache": "Redis is unreachable: rate limits count in each web process's memory and cost "
                      "queries are answered without the cache until it is back."}


def _may_see_details() -> bool:
    """Tell whether the caller may read what each part runs and why one fails: as for /metrics/,
    the scrape token or a signed-in user. Anyone else learns only ok or degraded per part."""
    if has_metrics_token():
        return True
    if "sid" not in web_session:  # no sign-in to look up (and the database may be the part that is away)
        return False
    try:
        return bool(current_user.is_authenticated)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        logger.warning("health: could not load the signed-in user, answering without details: %s", exc)
        return False


def _as_json(checks: list[health.Check]) -> tuple[Response, int]:
    ok = all(c.is_ok for c in checks)
    detailed = _may_see_details()
    body = {"status": "ok" if ok else "unhealthy",
            "checks": {c.name: {"ok": c.is_ok, "status": "ok" if c.is_ok else "degraded",
                                **({"detail": c.detail} if detailed else {})} for c in checks},
            "warnings": [_DEGRADED[c.name] for c in checks if not c.is_ok and c.name in _DEGRADED]}
    return jsonify(body), 200 if ok else 503


@bp.get("/health/")
def health_all() -> tuple[Response, int]:
    """Database, cache, broker and workers."""
    return _as_json(_checks(include_workers=True))


@bp.get("/health/ready/")
def ready() -> tuple[Response, int]:
    """Ready to serve: database reachable and migrated, cache and broker reachable."""
    head = current_app.config.get("ALEMBIC_HEAD")
    return _as_json([*_checks(include_workers=False), health.check_migrations(head)])


@bp.get("/health/live/")
def live() -> tuple[Response, int]:
    """The process answers; depends on nothing else."""
    return jsonify({"status": "ok"}), 200


@bp.get("/metrics/")
def metrics() -> Response:
    """Prometheus metrics, aggregated over every gunicorn worker when multiprocess is set up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Register the probes and count every request."""
    app.extensions[_WORKERS_CHECK] = health.CachedCheck(seconds=WORKERS_CHECK_SECONDS)
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        route = _route_label()
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        if "started" in g:
            LATENCY.labels(request.method, route).observe(time.perf_counter() - g.started)
        return response
