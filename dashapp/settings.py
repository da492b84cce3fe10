"""The one settings object, read from the environment (and an optional .env file)."""

from __future__ import annotations

import importlib
import json
import os
import secrets
from decimal import Decimal
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dashapp.origins import origin_of
from services.crypto import Keyring


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line naming it."""


class Settings(BaseSettings):
    """Every setting the application reads; names are the environment variables'."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=True)

    SECRET_KEY: SecretStr | None = None
    DATABASE_URL: str | None = None
    #: The URL `db upgrade` migrates with: the tables' owner. Empty: DATABASE_URL. When its user
    #: differs from DATABASE_URL's, that user is granted only what the app needs (see docs/security.md).
    MIGRATION_DATABASE_URL: str | None = None
    CELERY_BROKER_URL: str | None = None
    REDIS_URL: str | None = None
    ENCRYPTION_KEYS: SecretStr | None = None
    AUDIT_HMAC_KEY: SecretStr | None = None
    #: Signs the checkpoints of the audit chain head. Empty: AUDIT_HMAC_KEY.
    AUDIT_CHECKPOINT_KEY: SecretStr | None = None
    #: The append-only file of audit checkpoints. Empty: audit-checkpoints.jsonl in INSTANCE_DIR.
    AUDIT_CHECKPOINT_PATH: Path | None = None
    #: How often beat writes an audit checkpoint.
    AUDIT_CHECKPOINT_SECONDS: float = Field(default=300.0, ge=10, le=86400)
    OAUTH2_CLIENT_ID: str | None = None
    OAUTH2_CLIENT_SECRET: SecretStr | None = None
    OIDC_DISCOVERY_URL: str | None = None
    DEBUG: bool = False
    MFA_REQUIRED: bool = True
    SESSION_TIMEOUT: int = Field(default=3600, ge=60)
    RATE_LIMIT_LOGIN: str = "5/m"
    RATE_LIMIT_API: str = "100/h"
    LOGIN_LOCKOUT_THRESHOLD: int = Field(default=5, ge=1)
    LOGIN_LOCKOUT_MINUTES: int = Field(default=15, ge=1)
    #: Jobs whose estimated Cost Explorer charges (USD 0.01 a request) exceed this wait for approval.
    JOB_APPROVAL_CE_USD: Decimal = Field(default=Decimal("1.00"), ge=0)
    #: Jobs over more profiles than this wait for approval.
    JOB_APPROVAL_MAX_PROFILES: int = Field(default=5, ge=1)
    #: Seconds a worker's claim on a job lasts without a heartbeat (a killed worker's job is
    #: taken over after this; a running job's heartbeat renews it every third of it).
    JOB_LEASE_SECONDS: int = Field(default=60, ge=2, le=3600)
    #: How often beat re-publishes jobs the broker never delivered or a dead worker left behind.
    JOB_REPUBLISH_SECONDS: float = Field(default=30.0, ge=1, le=3600)
    #: Cache cost query results (in Redis when REDIS_URL is set, else in each process).
    QUERY_CACHE: bool = True
    #: A CLI run (one aws-finops group of profiles, one aws command) is killed after this many seconds.
    RUNNER_TIMEOUT_SECONDS: float = Field(default=900.0, gt=0, le=6 * 3600)
    #: Processes one job runs at once: an aws-finops job runs its profiles in this many groups.
    RUNNER_CONCURRENCY: int = Field(default=4, ge=1, le=32)
    #: Output kept from one CLI run; the rest is cut (and the job says so).
    RUNNER_OUTPUT_CAP_BYTES: int = Field(default=2_000_000, ge=10_000)
    #: Modules that register more kinds of job (comma-separated), for a deployment's own jobs.
    JOB_PLUGINS: str = ""
    FRAME_ANCESTORS: str = "'self'"
    #: Origins besides the app's own whose pages may send writes (POST, PUT, PATCH, DELETE), space-
    #: or comma-separated: e.g. the public address when a proxy passes the app another Host.
    TRUSTED_ORIGINS: str = ""
    SESSION_COOKIE_SECURE: bool = True
    EMBED_CROSS_SITE: bool = False
    METRICS_TOKEN: SecretStr | None = None
    #: Operator setting for tests and private endpoints: where boto3 and the CLIs send AWS calls.
    AWS_ENDPOINT_URL: str | None = None
    #: How many reverse proxies (nginx, ingress) stand in front of the app; 0 trusts no header.
    TRUSTED_PROXIES: int = Field(default=0, ge=0, le=5)
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "json"
    INSTANCE_DIR: Path = Path("instance")
    #: Not an environment setting: `finops-dashboard demo` turns it on.
    EMBEDDED: bool = False

    @field_validator("MIGRATION_DATABASE_URL", "AUDIT_CHECKPOINT_KEY", "AUDIT_CHECKPOINT_PATH", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An env file's `NAME=` means "use the default", not an empty path or key.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("RATE_LIMIT_LOGIN", "RATE_LIMIT_API")
    @classmethod
    def _rate(cls, value: str) -> str:
        return to_limit_string(value)

    @field_validator("FRAME_ANCESTORS")
    @classmethod
    def _ancestors(cls, value: str) -> str:
        # Env files often lose the quotes around CSP keywords: put them back.
        words = value.split() or ["'self'"]
        keywords = {"self": "'self'", "none": "'none'"}
        return " ".join(keywords.get(w.lower(), w) for w in words)

    @field_validator("TRUSTED_ORIGINS")
    @classmethod
    def _origins(cls, value: str) -> str:
        found = []
        for item in value.replace(",", " ").split():
            origin = origin_of(item, bare=True)
            if origin is None:
                raise ValueError(f"TRUSTED_ORIGINS: '{item}' is not an origin such as https://finops.example.com")
            found.append(origin)
        return " ".join(found)

    @property
    def trusted_origins(self) -> tuple[str, ...]:
        return tuple(self.TRUSTED_ORIGINS.split())

    @property
    def uses_celery(self) -> bool:
        return bool(self.CELERY_BROKER_URL)

    @property
    def cache_url(self) -> str | None:
        return self.REDIS_URL

    @property
    def audit_checkpoint_path(self) -> Path:
        return self.AUDIT_CHECKPOINT_PATH or Path(self.INSTANCE_DIR) / "audit-checkpoints.jsonl"

    def keyring(self) -> Keyring:
        """Return the encryption keyring these settings configure."""
        assert self.ENCRYPTION_KEYS is not None  # noqa: S101 - checked by require_complete()
        return Keyring.parse(self.ENCRYPTION_KEYS.get_secret_value())

    def require_complete(self) -> Settings:
        """Stop with one clear line when a required setting is missing or wrong."""
        required = ("SECRET_KEY", "DATABASE_URL", "ENCRYPTION_KEYS", "AUDIT_HMAC_KEY")
        if not self.EMBEDDED:
            required += ("CELERY_BROKER_URL",)
        for name in required:
            if not getattr(self, name):
                raise ConfigError(f"{name} is not set: see .env.template for what it must hold")
        secret = self.SECRET_KEY.get_secret_value() if self.SECRET_KEY else ""
        if len(secret) < 32:
            raise ConfigError("SECRET_KEY is too short: use at least 32 random characters")
        try:
            self.keyring()
        except ValueError as exc:  # InvalidInput and base64 errors are ValueErrors
            raise ConfigError(str(exc)) from exc
        audit_key = self.AUDIT_HMAC_KEY.get_secret_value() if self.AUDIT_HMAC_KEY else ""
        if len(audit_key) < 16:
            raise ConfigError("AUDIT_HMAC_KEY is too short: use at least 16 random characters")
        if self.AUDIT_CHECKPOINT_KEY is not None and len(self.AUDIT_CHECKPOINT_KEY.get_secret_value()) < 16:
            raise ConfigError("AUDIT_CHECKPOINT_KEY is too short: use at least 16 random characters")
        return self


_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def to_limit_string(value: str) -> str:
    """Turn '5/m' or '100/h' into the limits library's '5/minute' form; reject nonsense."""
    count, sep, unit = value.strip().partition("/")
    unit = unit.strip().lower()
    unit = _UNITS.get(unit, unit.rstrip("s"))
    if not sep or not count.strip().isdigit() or unit not in _UNITS.values():
        raise ValueError(f"'{value}' is not a rate such as 5/m or 100/h")
    return f"{int(count)}/{unit}"


def embedded_settings(instance_dir: Path) -> Settings:
    """Settings of the embedded default: SQLite and secrets kept in a private instance folder."""
    instance_dir = instance_dir.resolve()
    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    instance_dir.chmod(0o700)
    secrets_file = instance_dir / "secrets.json"
    if secrets_file.exists():
        stored = json.loads(secrets_file.read_text())
    else:
        stored = {
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": Keyring.generate_spec("k1"),
            "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
        }
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle)
    overrides = {
        "DATABASE_URL": f"sqlite:///{instance_dir / 'finops.db'}",
        "CELERY_BROKER_URL": None,
        "REDIS_URL": None,
        "SESSION_COOKIE_SECURE": False,
        "INSTANCE_DIR": instance_dir,
        "EMBEDDED": True,
        **stored,
    }
    return Settings(**overrides)  # type: ignore[arg-type]  # pydantic coerces the strings


def load_job_plugins(settings: Settings) -> None:
    """Import the modules named in JOB_PLUGINS, which register more kinds of job."""
    for module in filter(None, (m.strip() for m in settings.JOB_PLUGINS.split(","))):
        importlib.import_module(module)
