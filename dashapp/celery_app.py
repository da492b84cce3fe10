"""The Celery application: reliable delivery settings, and tasks run inside the Flask app."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from services import database

#: Jobs: heavy, few, run by `worker` in processes.
JOBS_QUEUE = "celery"
#: Dash background callbacks (a page watching a job, the overview's rebuild): light, many, waiting
#: most of the time; run by `worker --interactive` in threads, so they never take a job's place.
INTERACTIVE_QUEUE = "interactive"
HARD_TIME_LIMIT = 3600
SOFT_TIME_LIMIT = 3300


def make_celery(broker_url: str, result_url: str | None = None) -> Celery:
    """Create the Celery app with at-least-once delivery that never loses a job."""
    app = Celery("finops", broker=broker_url, backend=result_url or broker_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=HARD_TIME_LIMIT,
        task_soft_time_limit=SOFT_TIME_LIMIT,
        # Longer than the hard limit, or Redis redelivers a job that is still running.
        broker_transport_options={"visibility_timeout": HARD_TIME_LIMIT + 600},
        result_expires=24 * 3600,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_track_started=True,
        timezone="UTC",
        task_default_queue=JOBS_QUEUE,
        # Dash names each background callback's task "background_callback_<key>".
        task_routes={"background_callback_*": {"queue": INTERACTIVE_QUEUE}},
    )
    return app


@worker_process_init.connect
def _fresh_connections(**_kwargs: object) -> None:
    """Each prefork child opens its own database connections."""
    database.after_fork()
