"""The composition root: ``create_app(settings)`` builds the Flask server and the Dash app."""

from __future__ import annotations

import datetime as dt
import logging

import redis.exceptions
import sqlalchemy.exc
from flask import Flask, Response, render_template_string, request
from flask_openapi3 import Info, OpenAPI
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from dashapp import api, auth, exports, health, input_guard, logging_setup, security
from dashapp.api.problems import SECURITY_SCHEMES, FieldProblem, Problem, fields_of, problem, validation_problem
from dashapp.extensions import csrf, limiter
from dashapp.logging_setup import configure_logging
from dashapp.settings import Settings
from dashapp.wiring import configure_services
from services.errors import DomainError
from services.jobs import lifecycle

logger = logging.getLogger(__name__)

_ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/static/css/bootstrap.min.css"></head><body class="container py-5">
<h1 class="h4">{{ title }}</h1><p>{{ message }}</p><a href="/">Back to the dashboard</a></body></html>"""


_UNAVAILABLE_PAGE = (_ERROR_PAGE.replace("{{ title }}", "Temporarily unavailable")
                     .replace('<a href="/">Back to the dashboard</a>', '<a href="">Try again</a>'))


def alembic_head() -> str | None:
    """Return the newest migration revision shipped with this code."""
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    ini = Path(__file__).resolve().parent.parent / "migrations" / "alembic.ini"
    return ScriptDirectory.from_config(Config(str(ini))).get_current_head()


def _configure_flask(app: Flask, settings: Settings) -> None:
    assert settings.SECRET_KEY is not None  # noqa: S101 - require_complete() checked it
    cross_site = settings.EMBED_CROSS_SITE
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY.get_secret_value(),
        FINOPS_SETTINGS=settings,
        DEBUG=settings.DEBUG,
        SESSION_COOKIE_NAME="finops_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.SESSION_COOKIE_SECURE or cross_site,
        SESSION_COOKIE_SAMESITE="None" if cross_site else "Lax",
        SESSION_COOKIE_PARTITIONED=cross_site,
        REMEMBER_COOKIE_SECURE=settings.SESSION_COOKIE_SECURE or cross_site,
        REMEMBER_COOKIE_SAMESITE="None" if cross_site else "Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=settings.SESSION_TIMEOUT),
        SESSION_TIMEOUT=settings.SESSION_TIMEOUT,
        MFA_REQUIRED=settings.MFA_REQUIRED,
        RATE_LIMIT_LOGIN=settings.RATE_LIMIT_LOGIN,
        RATE_LIMIT_API=settings.RATE_LIMIT_API,
        RATELIMIT_STORAGE_URI=settings.REDIS_URL or "memory://",
        # While Redis is away, count in each process's memory (and say so in the log) rather than
        # refusing every sign-in and API call; short timeouts keep each request from waiting on it.
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        RATELIMIT_HEADERS_ENABLED=True,
        LOGIN_LOCKOUT_THRESHOLD=settings.LOGIN_LOCKOUT_THRESHOLD,
        LOGIN_LOCKOUT_WINDOW=dt.timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES),
        FRAME_ANCESTORS=settings.FRAME_ANCESTORS,
        TRUSTED_ORIGINS=settings.trusted_origins,
        METRICS_TOKEN=settings.METRICS_TOKEN.get_secret_value() if settings.METRICS_TOKEN else None,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        # Flask-WTF's Referer check runs even when Origin is sent and breaks portal iframes;
        # security._check_origin checks Origin, and the Referer only when Origin is absent.
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=512 * 1024 * 1024,
        ALEMBIC_HEAD=alembic_head(),
    )


def _register_errors(app: Flask) -> None:
    def wants_json() -> bool:
        return request.path.startswith(("/api/", "/_dash")) or request.accept_mimetypes.best == "application/json"

    def reply(status: int, title: str, message: str,
              fields: list[FieldProblem] | None = None) -> tuple[Response | str, int]:
        if wants_json():
            return problem(status, message, fields), status
        return render_template_string(_ERROR_PAGE, title=title, message=message), status

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> tuple[Response | str, int]:
        return reply(exc.status_code, "Request refused", exc.message, fields_of(exc))

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> tuple[Response | str, int]:
        return reply(400, "Form expired", "The form expired or came from another site. Reload the page and try again.")

    @app.errorhandler(403)
    def _forbidden(exc: HTTPException) -> tuple[Response | str, int]:
        return reply(403, "Request refused", exc.description or "This request is not allowed.")

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> tuple[Response | str, int]:
        return reply(404, "Not found", "There is nothing at this address.")

    @app.errorhandler(405)
    def _method(_exc: Exception) -> tuple[Response | str, int]:
        return reply(405, "Not allowed", "This address does not accept that method.")

    @app.errorhandler(429)
    def _too_many(_exc: Exception) -> tuple[Response | str, int]:
        return reply(429, "Too many attempts", "Too many attempts. Wait a minute and try again.")

    @app.errorhandler(sqlalchemy.exc.OperationalError)
    @app.errorhandler(sqlalchemy.exc.InterfaceError)
    @app.errorhandler(sqlalchemy.exc.TimeoutError)
    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _unavailable(exc: Exception) -> tuple[Response | str, int]:
        # A dependency is away (the database stopped, a fail-over, the pool exhausted): say so at once
        # and when to retry, instead of a 500; the pool's pre-ping reconnects once it is back.
        logger.warning("dependency unavailable on %s %s: %s", request.method, request.path,
                       type(exc).__name__)
        message = "The service is temporarily unavailable. Try again in a few seconds."
        if wants_json():
            response = problem(503, message)
        else:  # no template context: it would load the signed-in user from the database again
            response = Response(_UNAVAILABLE_PAGE.replace("{{ message }}", message), mimetype="text/html")
        response.headers["Retry-After"] = "5"
        return response, 503

    @app.errorhandler(500)
    def _server_error(_exc: Exception) -> tuple[Response | str, int]:
        return reply(500, "Something went wrong", "The error was logged. Try again, or contact an administrator.")


def _install_csp_hashes(app: Flask, dash_app: object) -> None:
    """Compute the inline-script hashes once, at the first request (Dash adds scripts late)."""

    @app.before_request
    def _hashes() -> None:
        if "csp_script_hashes" not in app.extensions:
            app.extensions["csp_script_hashes"] = tuple(dash_app.csp_hashes())  # type: ignore[attr-defined]  # a Dash app


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application from settings (the environment when none are given)."""
    settings = (settings or Settings()).require_complete()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    assert settings.DATABASE_URL and settings.ENCRYPTION_KEYS and settings.AUDIT_HMAC_KEY  # noqa: S101 - checked above
    configure_services(settings)

    app = OpenAPI(__name__, static_folder="static", static_url_path="/static", doc_ui=False,
                  info=Info(title="FinOps Dashboard API", version="1"), security_schemes=SECURITY_SCHEMES,
                  validation_error_status=422, validation_error_model=Problem,
                  validation_error_callback=validation_problem)
    if settings.TRUSTED_PROXIES:
        # Behind nginx or an ingress: take the client address and scheme from their headers,
        # or every user would share one login rate limit.
        n = settings.TRUSTED_PROXIES
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    _configure_flask(app, settings)
    if settings.uses_celery:
        from dashapp.celery_app import make_celery

        assert settings.CELERY_BROKER_URL  # noqa: S101 - uses_celery says so
        app.extensions["celery"] = make_celery(settings.CELERY_BROKER_URL, settings.REDIS_URL)
        from dashapp.tasks import publish_with, register_tasks

        register_tasks(app.extensions["celery"], republish_seconds=settings.JOB_REPUBLISH_SECONDS,
                       checkpoint_seconds=settings.AUDIT_CHECKPOINT_SECONDS)
        celery_app = app.extensions["celery"]
        lifecycle.configure(lease_seconds=settings.JOB_LEASE_SECONDS, policy=lifecycle.current_policy(),
                       publisher=lambda task_ids: publish_with(celery_app, task_ids).published)
    logging_setup.init_app(app)  # first: every request gets its id before anything may refuse it
    security.init_app(app)  # then the guard answers 401 before CSRF or rate limits look
    input_guard.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    health.init_app(app)
    app.register_blueprint(auth.bp)
    api.init_app(app)
    app.register_blueprint(exports.bp)
    csrf.exempt(health.bp)
    _register_errors(app)

    from dashapp.dash_app import build_dash

    dash_app = build_dash(app, settings)
    app.extensions["dash_app"] = dash_app
    _install_csp_hashes(app, dash_app)
    return app
