"""Readiness and health checks of the parts the product depends on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text

from services import database

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    is_ok: bool
    detail: str


class CachedCheck:
    """A check answered from memory for some seconds, and run by one caller at a time: a probe that
    asks every worker (a broadcast over the broker) must not do so on every hit."""

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._check: Check | None = None
        self._checked_at = 0.0

    def get(self, run: Callable[[], Check], *, now: float) -> Check:
        """Return the last outcome while it is fresh, else run the check again (``now`` in seconds of
        a monotonic clock)."""
        with self._lock:
            if self._check is None or now - self._checked_at >= self.seconds:
                self._check, self._checked_at = run(), now
            return self._check


def check_database() -> Check:
    """Run a trivial query against the database."""
    try:
        with database.get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported not raised
        logger.warning("database health check failed: %s", exc)
        return Check("database", False, type(exc).__name__)
    return Check("database", True, database.get_engine().dialect.name)


def check_migrations(expected_head: str | None) -> Check:
    """Tell whether the database schema is at the newest revision."""
    try:
        with database.get_engine().connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # noqa: BLE001 - reported as not ready
        logger.warning("migration check failed: %s", exc)
        return Check("migrations", False, "no alembic_version table")
    ok = expected_head is None or current == expected_head
    return Check("migrations", ok, f"at {current}" + ("" if ok else f", newest is {expected_head}"))


def check_redis(url: str | None, name: str) -> Check:
    """Ping a Redis server (cache or broker); not configured counts as healthy (embedded)."""
    if not url:
        return Check(name, True, "embedded (not configured)")
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - reported as unhealthy
        logger.warning("%s health check failed: %s", name, exc)
        return Check(name, False, type(exc).__name__)
    return Check(name, True, "redis")
