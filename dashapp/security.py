"""Security wiring: the one request guard, sessions, CSRF cookie, and strict response headers."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, redirect, request, session, url_for
from flask_login import UserMixin, current_user
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import Forbidden

from dashapp.extensions import login_manager
from dashapp.origins import origin_of
from services import database
from services.identity import auth

logger = logging.getLogger(__name__)

#: Paths anyone may reach: sign-in, health probes, and the login page's own static files.
PUBLIC_PREFIXES = ("/auth/", "/health/", "/static/")
#: Paths answered with 401 (not a redirect): machines and the Dash front end call them.
MACHINE_PREFIXES = ("/api/", "/_dash", "/_reload-hash", "/_favicon", "/assets/", "/metrics/",
                    "/exports/")
CSRF_COOKIE = "_csrf_token"
#: Methods that change something: only pages of this app (or a trusted origin) may send them.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CROSS_SITE_REFUSED = ("This request came from another site, so it was refused. Open the dashboard "
                      "at its own address and try again.")
NO_SOURCE_REFUSED = ("This request did not say which page sent it (no Origin or Referer header), "
                     "so it was refused. Open the dashboard at its own address and try again.")


@dataclass
class SessionUser(UserMixin):
    """The signed-in user as the web layer sees it (detached from any database session)."""

    id: int
    username: str
    display_name: str
    roles: frozenset[str]
    sid: str

    def get_id(self) -> str:
        return str(self.id)


def _load_user(user_id: str) -> SessionUser | None:
    sid = session.get("sid")
    if not sid or not user_id.isdigit():
        return None
    timeout = dt.timedelta(seconds=_timeout_seconds())
    with database.session_scope() as db:
        user = auth.load_session_user(db, sid=sid, user_id=int(user_id), timeout=timeout)
        if user is None:
            return None
        return SessionUser(id=user.id, username=user.username,
                           display_name=user.display_name or user.username,
                           roles=frozenset(r.name for r in user.roles), sid=sid)


def _timeout_seconds() -> int:
    return int(current_app.config["SESSION_TIMEOUT"])


def _check_origin() -> None:
    """Refuse a write sent by a page of another site, even with a valid CSRF token.

    Browsers send Origin with every cross-site write; without it, over HTTPS the Referer must
    name this site. A request with neither over plain HTTP is no browser's cross-site request."""
    if request.method not in UNSAFE_METHODS:
        return
    origin, referer = request.headers.get("Origin"), request.headers.get("Referer")
    if origin is not None:
        source = origin_of(origin, bare=True)
    elif request.is_secure:
        if not referer:
            logger.warning("refused %s %s: neither Origin nor Referer over HTTPS", request.method, request.path)
            raise Forbidden(NO_SOURCE_REFUSED)
        source = origin_of(referer)
    else:
        return
    if source is None or source not in _allowed_origins():
        logger.warning("refused %s %s from another origin: %.200r", request.method, request.path,
                       origin if origin is not None else referer)
        raise Forbidden(CROSS_SITE_REFUSED)


def _allowed_origins() -> set[str]:
    own = origin_of(f"{request.scheme}://{request.host}")
    return {*current_app.config["TRUSTED_ORIGINS"], *([own] if own else [])}


def _guard() -> Response | None:
    path = request.path
    if path.startswith(PUBLIC_PREFIXES):
        return None
    if current_user.is_authenticated:
        return None
    if path.startswith("/metrics/") and has_metrics_token():
        return None
    if path.startswith(MACHINE_PREFIXES) or request.method != "GET":
        from dashapp.api.problems import problem

        return problem(401, "Authentication required: sign in first.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))  # type: ignore[return-value]  # a redirect is a Response


def has_metrics_token() -> bool:
    """Tell whether the request carries the configured scrape token (of /metrics/ and health details)."""
    import hmac

    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(given, token)


def _content_security_policy(app: Flask) -> str:
    hashes = " ".join(app.extensions.get("csp_script_hashes", ()))
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' {hashes}".strip(),
        "style-src 'self' 'unsafe-inline'",  # Dash components set inline styles
        "img-src 'self' data: blob:",  # the chart toolbar's PNG download draws a blob: image
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {app.config['FRAME_ANCESTORS']}",
    ])


def _secure_headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = _content_security_policy(current_app)  # type: ignore[arg-type]  # the proxy is the app
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if current_app.config["FRAME_ANCESTORS"].strip() == "'self'":
        headers["X-Frame-Options"] = "SAMEORIGIN"
    if current_app.config["SESSION_COOKIE_SECURE"]:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    # Anything but a public static answer stays out of caches. The signed-in user is read as the
    # guard loaded it: loading it again here would query a database that may just have failed.
    user = g.get("_login_user")
    private = user is None or user.is_authenticated or request.path.startswith("/auth/")
    if private and not request.path.startswith(("/static/", "/health/")):
        headers["Cache-Control"] = "no-store"
    _set_csrf_cookie(response)
    return response


def _set_csrf_cookie(response: Response) -> None:
    """Give Dash's front end the token it echoes back as X-CSRFToken on every callback."""
    if request.path.startswith(("/static/", "/health/", "/metrics/")):
        return
    response.set_cookie(
        CSRF_COOKIE,
        generate_csrf(),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=False,  # read by the Dash front end
        samesite=current_app.config["SESSION_COOKIE_SAMESITE"],
        partitioned=current_app.config.get("SESSION_COOKIE_PARTITIONED", False),
    )


def init_app(app: Flask) -> None:
    """Install the request guard, the user loader and the response headers."""
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.session_protection = "strong"
    app.before_request(_check_origin)  # a forged cross-site write is refused before anything else
    app.before_request(_guard)
    app.after_request(_secure_headers)
