"""Configure every service from the settings: one place, used by the web app, workers and commands."""

from __future__ import annotations

from pathlib import Path

from dashapp.settings import Settings, load_job_plugins
from services import audit, crypto, database
from services.aws import profiles
from services.costs import cache
from services.jobs import cli_kinds, data_kinds, lifecycle
from services.runner.cli_runner import RunnerConfig


def configure_services(settings: Settings) -> None:
    """Bind the database, keys, job rules, the CLI runner and job plugins for this process."""
    assert settings.DATABASE_URL and settings.ENCRYPTION_KEYS and settings.AUDIT_HMAC_KEY  # noqa: S101 - require_complete() checked them
    database.configure(settings.DATABASE_URL)
    crypto.configure(settings.ENCRYPTION_KEYS.get_secret_value())
    checkpoint_key = settings.AUDIT_CHECKPOINT_KEY.get_secret_value() if settings.AUDIT_CHECKPOINT_KEY else None
    audit.configure(settings.AUDIT_HMAC_KEY.get_secret_value(), checkpoint_key=checkpoint_key,
                    checkpoint_path=settings.audit_checkpoint_path.resolve())
    lifecycle.configure(lease_seconds=settings.JOB_LEASE_SECONDS,
                   policy=lifecycle.ApprovalPolicy(max_ce_cost_usd=settings.JOB_APPROVAL_CE_USD,
                                              max_profiles=settings.JOB_APPROVAL_MAX_PROFILES))
    instance = Path(settings.INSTANCE_DIR).resolve()
    cli_kinds.configure(
        RunnerConfig(endpoint_url=settings.AWS_ENDPOINT_URL, timeout_seconds=settings.RUNNER_TIMEOUT_SECONDS,
                     output_cap_bytes=settings.RUNNER_OUTPUT_CAP_BYTES, concurrency=settings.RUNNER_CONCURRENCY,
                     output_root=_private(instance / "runs"),
                     scratch_root=_private(instance / "scratch")),
        results_root=_private(instance / "results"))
    data_kinds.configure(uploads_root=_private(instance / "uploads"))
    profiles.configure(endpoint_url=settings.AWS_ENDPOINT_URL)
    cache.configure(settings.REDIS_URL, enabled=settings.QUERY_CACHE)
    load_job_plugins(settings)


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
