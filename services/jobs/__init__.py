"""Jobs: the Task lifecycle under a lease, schedules, and the kinds of job the product runs.

Public modules and what other domains call:
- ``lifecycle``: ``submit_job``, ``start_job``, ``decide_approval``, ``decide_and_release``,
  ``request_cancel``, ``get_task``, ``get_log``, ``list_tasks``, ``list_results``, ``get_result``,
  ``claim``, ``execute_task``, ``run_next``, ``publish``; ``TaskView``, ``StartedJob``, ``ApprovalPolicy``.
- ``kinds``: ``register_kind``, ``get_kind``, ``list_kinds``; ``JobKind``, ``JobContext`` (progress, log,
  results of a running job), ``JobCancelled``.
- ``schedules``: ``create_schedule``, ``list_schedules``, ``delete_schedule``, ``run_due``, ``next_run``.
- ``cli_kinds``: the kinds that run the allow-listed CLIs (registered on import); ``configure``.
- ``data_kinds``: collection and import kinds (registered on import); ``save_upload``, ``configure``.
"""
