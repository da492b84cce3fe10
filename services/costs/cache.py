"""Query-result cache: Redis in production, an in-process LRU on the embedded default.

Keys carry the data version that every import bumps, so a new import makes old entries unreachable
(they expire on their own); values are JSON in Redis, and the result objects themselves in memory
(callers never change a result).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger(__name__)

TTL_SECONDS = 3600
MEMORY_ENTRIES = 512


class _Backend(Protocol):
    #: True when values are kept as the objects themselves (never shared beyond this process).
    keeps_objects: bool

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class MemoryBackend:
    """A small thread-safe LRU for one process, holding the (immutable) results themselves."""

    keeps_objects = True

    def __init__(self, size: int = MEMORY_ENTRIES) -> None:
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


class RedisBackend:
    """Shared by every web worker, as JSON; a Redis outage only means no cache."""

    keeps_objects = False

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def get(self, key: str) -> str | None:
        try:
            value = self._client.get(key)
        except Exception as exc:  # noqa: BLE001 - the cache is an optimisation: carry on without it
            logger.warning("cache read failed: %s", exc)
            return None
        return value.decode() if isinstance(value, bytes) else None

    def set(self, key: str, value: str) -> None:
        try:
            self._client.set(key, value, ex=TTL_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the cache is an optimisation: carry on without it
            logger.warning("cache write failed: %s", exc)


_backend: _Backend | None = MemoryBackend()


def configure(url: str | None, *, enabled: bool = True) -> None:
    """Use Redis at ``url``, or the in-process LRU when there is none; or no cache at all."""
    global _backend
    _backend = (RedisBackend(url) if url else MemoryBackend()) if enabled else None


def key_for(namespace: str, *, version: int, parts: object) -> str:
    """Return a cache key for a namespace, the data version and any JSON-able description."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"finops:{namespace}:v{version}:{digest}"


def get_or_compute(key: str, compute: Callable[[], Any], *, dump: Callable[[Any], object],
                   load: Callable[[Any], Any]) -> Any:
    """Return the cached value for ``key`` or compute, store and return it."""
    if _backend is None:
        return compute()
    cached = _backend.get(key)
    if cached is not None:
        return cached if _backend.keeps_objects else load(json.loads(cached))
    value = compute()
    _backend.set(key, value if _backend.keeps_objects else json.dumps(dump(value), default=str))
    return value
