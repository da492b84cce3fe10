"""Session-wide running stacks, shared by the integration and browser tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _create_pg_database, _drop_pg_database
from tests.stacks import Stack, start_embedded, start_production


@pytest.fixture(scope="session")
def production_stack(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[Stack]:
    """gunicorn (2 workers) + a Celery worker process on PostgreSQL and Redis."""
    name = f"finops_it_{os.getpid()}"
    url = _create_pg_database(name)
    # TEST_REDIS_DB: the first of two Redis databases (broker, cache), so that two runs can share a server
    redis_db = int(os.environ.get("TEST_REDIS_DB", "11"))
    stack = start_production(tmp_path_factory.mktemp("production"), url, redis_db=redis_db, aws_endpoint=moto_endpoint)
    yield stack
    stack.close()
    from services import database

    database.configure(url)
    _drop_pg_database(name)


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[Stack]:
    """`finops-dashboard demo`: SQLite, no Redis, background jobs in worker processes."""
    stack = start_embedded(tmp_path_factory.mktemp("embedded"), aws_endpoint=moto_endpoint)
    yield stack
    stack.close()


@pytest.fixture(scope="session", params=["embedded", "production"])
def stack(request: pytest.FixtureRequest) -> Stack:
    return request.getfixturevalue(f"{request.param}_stack")


def read_log(stack: Stack) -> str:
    return "\n".join(Path(p).read_text(errors="replace") for p in stack.logs)
