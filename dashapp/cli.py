"""The ``finops-dashboard`` command: demo, serve, worker, beat, db, create-admin, seed-demo, keys, audit."""

from __future__ import annotations

import datetime as dt
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from dashapp.settings import ConfigError, Settings, embedded_settings

MIGRATIONS_INI = Path(__file__).resolve().parent.parent / "migrations" / "alembic.ini"


def _settings_or_exit(settings: Settings | None = None) -> Settings:
    try:
        return (settings or Settings()).require_complete()
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


def _configure_services(settings: Settings) -> None:
    from dashapp.wiring import configure_services

    configure_services(settings)


def migrate(database_url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision``."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(MIGRATIONS_INI))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)


def _seed_demo(echo: bool = True) -> None:
    from services import database
    from services.demo import generator

    today = dt.datetime.now(dt.UTC).date()
    with database.session_scope() as session:
        if generator.is_demo_loaded(session):
            if echo:
                click.echo("Demo data is already loaded.")
            return
        if echo:
            click.echo("Loading demo data (one time, about half a minute)...")

        def progress(done: int, total: int) -> None:
            if echo:
                click.echo(f"  month {done} of {total}")

        summary = generator.load_demo(session, today=today, on_progress=progress)
    if echo:
        click.echo(f"Loaded {summary.fact_rows:,} cost lines for {summary.accounts} accounts, "
                   f"{summary.services} services, {summary.regions} regions, "
                   f"{summary.first_day} to {summary.last_day}.")


def _create_admin(username: str, email: str | None) -> str:
    from services import database
    from services.identity import auth
    from services.identity.permissions import Actor

    password = auth.generate_password()
    data = auth.parse_new_user(username=username, password=password, email=email, roles=["admin"])
    with database.session_scope() as session:
        auth.create_user(session, actor=Actor.system("cli"), data=data)
    return password


class _Gunicorn:
    """Run the app under gunicorn in this process (the arbiter handles signals and workers)."""

    @staticmethod
    def run(app_factory: Any, options: dict[str, object]) -> None:
        from gunicorn.app.base import BaseApplication

        class Application(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
            def load_config(self) -> None:
                for key, value in options.items():
                    self.cfg.set(key, value)

            def load(self) -> Any:
                return app_factory()

        Application().run()


def _embedded_worker_main(settings: Settings) -> None:
    from dashapp.logging_setup import configure_logging
    from dashapp.tasks import run_embedded_worker

    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    _configure_services(settings)
    try:
        run_embedded_worker(checkpoint_seconds=settings.AUDIT_CHECKPOINT_SECONDS)
    except KeyboardInterrupt:
        return


def _worker_ready(_worker: object) -> None:
    """Once a web worker has built the app, keep everything it built (alive for the process's
    life) out of the collector's full passes, which otherwise stall a request for tens of
    milliseconds now and then (measured with benchmarks/cost_pipeline.py)."""
    gc.freeze()


def _child_exit(_server: object, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _reset_metrics_dir() -> None:
    """Empty the Prometheus multiprocess folder: samples of dead processes must not linger."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """FinOps Dashboard: audited browser access to AWS cost and optimisation data."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8050, show_default=True, type=int, help="Port to listen on.")
@click.option("--instance", "instance_dir", default="instance", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the SQLite database, secrets and job files (private, reused).")
def demo(host: str, port: int, instance_dir: Path) -> None:
    """Start the embedded default: SQLite, no Redis, demo data, a demo admin."""
    settings = _settings_or_exit(embedded_settings(instance_dir))
    settings = settings.model_copy(update={"LOG_FORMAT": "text"})
    assert settings.DATABASE_URL  # noqa: S101 - embedded settings always set it
    _configure_services(settings)
    click.echo(f"Instance folder: {settings.INSTANCE_DIR}")
    migrate(settings.DATABASE_URL)
    _seed_demo()
    from services import database
    from services.identity import auth

    with database.session_scope() as session:
        has_users = auth.count_users(session) > 0
    if not has_users:
        password = _create_admin("admin", None)
        click.echo("\nDemo administrator created (shown once, keep it):")
        click.echo("  username: admin")
        click.echo(f"  password: {password}\n")
    else:
        click.echo("\nSign in with the account created at first start (its password was printed then).")
    click.echo(f"Open http://{host}:{port}/ in a browser. Press Ctrl-C to stop.\n")

    def factory() -> Any:
        from dashapp import create_app

        return create_app(settings)

    # The embedded job worker: a separate process in this process group, so Ctrl-C ends it too.
    job_worker = subprocess.Popen([sys.executable, "-m", "dashapp.cli", "demo-worker", "--instance",  # noqa: S603 - our own module
                                   str(settings.INSTANCE_DIR)])
    try:
        # Single-threaded workers: Dash's diskcache manager forks a process per background job,
        # and SQLite must never be open in another thread when a process forks (the child
        # inherits its lock state and fails with "disk I/O error").
        _Gunicorn.run(factory, {"bind": f"{host}:{port}", "workers": 4, "worker_class": "sync",
                                "timeout": 120, "accesslog": None, "loglevel": "warning",
                                "post_worker_init": _worker_ready})
    finally:
        job_worker.terminate()
        job_worker.wait(10)


@main.command("demo-worker", hidden=True)
@click.option("--instance", "instance_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def demo_worker(instance_dir: Path) -> None:
    """Run the embedded default's job worker (started by `demo`)."""
    settings = _settings_or_exit(embedded_settings(instance_dir)).model_copy(update={"LOG_FORMAT": "text"})
    _embedded_worker_main(settings)


@main.command()
@click.option("--bind", default="0.0.0.0:8050", show_default=True,  # noqa: S104 - containers listen on all interfaces
              help="Address and port to listen on.")
@click.option("--workers", default=2, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option("--timeout", default=120, show_default=True, type=int, help="Worker timeout in seconds.")
def serve(bind: str, workers: int, threads: int, timeout: int) -> None:
    """Serve the app with gunicorn (settings from the environment)."""
    _settings_or_exit()
    _reset_metrics_dir()

    def factory() -> Any:
        from dashapp import create_app

        return create_app()

    _Gunicorn.run(factory, {
        "bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
        "timeout": timeout, "accesslog": "-", "child_exit": _child_exit, "post_worker_init": _worker_ready,
        "forwarded_allow_ips": os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
    })


def _celery_app() -> Any:
    _settings_or_exit()
    from dashapp import create_app

    app = create_app()
    return app.extensions["celery"]


@main.command()
@click.option("--concurrency", default=None, type=int,
              help="Prefork processes for jobs (default 2), or threads with --interactive (default 16).")
@click.option("--loglevel", default="INFO", show_default=True, help="Celery log level.")
@click.option("--queues", default=None, help="Comma-separated queues (default: celery, or interactive).")
@click.option("--interactive", is_flag=True,
              help="Serve the pages' live updates (Dash background callbacks) in threads, instead of jobs.")
def worker(concurrency: int | None, loglevel: str, queues: str | None, interactive: bool) -> None:
    """Run a Celery worker: jobs in a prefork pool (so that cancel can stop a job), or, with
    --interactive, the pages' live updates in a thread pool. A deployment runs both kinds: a page
    that watches a job waits on it for minutes, and must never hold a process a job needs."""
    from dashapp.celery_app import INTERACTIVE_QUEUE, JOBS_QUEUE

    pool, default_concurrency, default_queue = (("threads", 16, INTERACTIVE_QUEUE) if interactive
                                                else ("prefork", 2, JOBS_QUEUE))
    # A node name of its own: several workers on one host must not answer as one.
    node = f"{'interactive' if interactive else 'jobs'}-{os.getpid()}@%h"
    _celery_app().worker_main([
        "worker", f"--hostname={node}", f"--pool={pool}", f"--concurrency={concurrency or default_concurrency}",
        f"--loglevel={loglevel}", f"--queues={queues or default_queue}", "--without-gossip", "--without-mingle",
    ])


@main.command()
@click.option("--loglevel", default="INFO", show_default=True, help="Celery log level.")
def beat(loglevel: str) -> None:
    """Run Celery beat (exactly one per deployment)."""
    settings = _settings_or_exit()
    schedule = Path(settings.INSTANCE_DIR) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    _celery_app().start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Apply migrations with MIGRATION_DATABASE_URL (else DATABASE_URL); grant DATABASE_URL's role its rights."""
    from sqlalchemy import make_url

    from services import database

    settings = Settings()
    url = os.environ.get("DATABASE_URL") or settings.DATABASE_URL
    if not url:
        click.echo("Error: DATABASE_URL is not set: see .env.template for what it must hold", err=True)
        sys.exit(2)
    owner_url = os.environ.get("MIGRATION_DATABASE_URL") or settings.MIGRATION_DATABASE_URL or url
    migrate(owner_url, revision)
    app_role, owner = make_url(url), make_url(owner_url)
    if app_role.get_backend_name() == "postgresql" and app_role.username and app_role.username != owner.username:
        engine = database.make_engine(owner_url)
        with engine.begin() as connection:
            database.grant_app_role(connection, role=app_role.username)
        engine.dispose()
        click.echo(f"Role {app_role.username} granted the application's rights (audit rows: add and read only).")
    click.echo(f"Database at {revision}.")


@main.command("create-admin")
@click.option("--username", required=True, help="Login name of the new administrator.")
@click.option("--email", default=None, help="E-mail address (optional).")
@click.option("--instance", "instance_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Add the account to the embedded default's instance folder instead of DATABASE_URL.")
def create_admin(username: str, email: str | None, instance_dir: Path | None) -> None:
    """Create an administrator and print a generated password once."""
    from services.errors import DomainError

    if instance_dir is not None and not (instance_dir / "secrets.json").is_file():
        click.echo(f"Error: {instance_dir} is not an instance folder of `finops-dashboard demo`.", err=True)
        sys.exit(2)
    _configure_services(_settings_or_exit(embedded_settings(instance_dir) if instance_dir else None))
    try:
        password = _create_admin(username, email)
    except DomainError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"Administrator '{username}' created. Password (shown once): {password}")
    click.echo("They enrol an authenticator app at first sign-in.")


@main.command("seed-demo")
def seed_demo() -> None:
    """Load the demo organisation's data into DATABASE_URL (once)."""
    _configure_services(_settings_or_exit())
    _seed_demo()


@main.group("keys")
def keys_group() -> None:
    """Encryption key commands."""


@keys_group.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the newest key of ENCRYPTION_KEYS (the first one)."""
    from services import database
    from services.aws import profiles

    _configure_services(_settings_or_exit())
    with database.session_scope() as session:
        moved = profiles.rotate_keys(session)
    click.echo(f"Re-encrypted {moved['aws_profiles']} profile secrets and {moved['mfa_devices']} "
               "authenticator secrets under the newest key. Older keys can be removed once every "
               "process runs with the new ENCRYPTION_KEYS.")


@main.group("audit")
def audit_group() -> None:
    """Audit trail commands."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain, compare it with the signed checkpoints, report any tampering."""
    from services import audit, database

    _configure_services(_settings_or_exit())
    with database.session_scope() as session:
        report = audit.verify_chain(session, checkpoints=audit.read_checkpoints())
    for problem in report.problems:
        click.echo(f"  {problem}")
    click.echo(f"  {report.checkpoints} checkpoints compared; {report.pending} rows await their place in the chain")
    click.echo(f"{report.rows} rows checked: {'intact' if report.is_intact else 'TAMPERED'}")
    sys.exit(0 if report.is_intact else 1)


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Chain waiting rows, then append a signed checkpoint of the chain head to AUDIT_CHECKPOINT_PATH."""
    from services import audit, database
    from services.errors import DomainError

    settings = _settings_or_exit()
    _configure_services(settings)
    try:
        with database.session_scope() as session:
            checkpoint = audit.write_checkpoint(session)
    except DomainError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"Checkpoint written: row {checkpoint.seq} ({checkpoint.row_hash[:12]}...) "
               f"to {settings.audit_checkpoint_path}")


if __name__ == "__main__":
    main()
