"""Shared fixtures: a migrated database per backend (SQLite and PostgreSQL), the app, users."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import create_engine, text

from dashapp.cli import migrate
from dashapp.settings import Settings
from services import audit, crypto, database
from services.costs import cache
from services.crypto import Keyring

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if b]
TEST_KEYS = Keyring.generate_spec("t1")
TEST_AUDIT_KEY = "test-audit-key-0123456789"
TEST_SECRET = "test-secret-key-" + "x" * 40

pytest_plugins = ["tests.stack_fixtures", "tests.moto_server"]


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2id with minimal cost inside the test process (the real processes keep the real cost)."""
    from argon2 import PasswordHasher

    from services.identity import auth

    real = auth._hasher
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    auth._hasher = real


def _create_pg_database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(name: str) -> None:
    database.get_engine().dispose()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_database(backend: str, tmp_dir: Path, label: str) -> tuple[str, str | None]:
    """Create and migrate a blank database; return its URL and the PG name to drop."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / f'{label}.db'}"
        migrate(url)
        return url, None
    name = f"finops_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = _create_pg_database(name)
    migrate(url)
    return url, name


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def blank_db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, pg_name = make_database(backend, tmp_path_factory.mktemp(f"db-{backend}"), "blank")
    yield url
    if pg_name:
        database.configure(url)
        _drop_pg_database(pg_name)


def _truncate_all(url: str) -> None:
    import models

    engine = database.get_engine()
    tables = [t.name for t in reversed(models.Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Every audit trigger off: the row one refuses deletes, the statement one truncation.
            conn.execute(text("ALTER TABLE audit_logs DISABLE TRIGGER USER"))
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))  # noqa: S608 - names from our metadata
            conn.execute(text("ALTER TABLE audit_logs ENABLE TRIGGER USER"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - names from our metadata


@pytest.fixture()
def db_url(blank_db_url: str) -> Iterator[str]:
    """A migrated, empty database (emptied again after the test), and an empty query cache (the
    data version starts again with each test, so an entry of the last test could match)."""
    database.configure(blank_db_url)
    cache.configure(None)
    crypto.configure(TEST_KEYS)
    audit.configure(TEST_AUDIT_KEY)
    yield blank_db_url
    database.configure(blank_db_url)
    _truncate_all(blank_db_url)


@pytest.fixture()
def session(db_url: str) -> Iterator[object]:
    """A session on the empty database; the test commits or not as the code under test does."""
    with database.session_scope() as s:
        yield s


def make_settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": url,
        "ENCRYPTION_KEYS": TEST_KEYS,
        "AUDIT_HMAC_KEY": TEST_AUDIT_KEY,
        "EMBEDDED": True,
        "SESSION_COOKIE_SECURE": False,
        "INSTANCE_DIR": tmp_path,
        "LOG_FORMAT": "text",
        "RATE_LIMIT_LOGIN": "1000/m",
        "RATE_LIMIT_API": "10000/m",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture()
def app(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from dashapp import create_app

    flask_app = create_app(make_settings(db_url, tmp_path))
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture()
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


def totp_now(secret: str, *, offset_steps: int = 0) -> str:
    """Return the TOTP code of a secret for the current (or a neighbouring) time step."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30 * offset_steps)
    return pyotp.TOTP(secret).at(at)
