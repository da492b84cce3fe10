"""The CLI runner: the only place in the product that starts a process.

Public modules:
- ``commands``: what may run, as data: ``CliCommand`` and the allow-listed command models in
  ``COMMANDS`` (``AwsFinopsCost``, ``AwsFinopsTrend``, ``AwsFinopsAudit``, the read-only ``aws``
  calls), ``parse_command``, ``FORBIDDEN_FLAGS`` and the strict parameter types.
- ``cli_runner``: the process supervisor: ``CliRunner`` (spawning, limits, time-out, output cap,
  cancellation, progress from output lines, AWS requests counted per run), ``RunnerConfig``,
  ``RunResult``, ``CancelToken``, ``parse_aws_json``.
- ``aws_finops``: ``run_aws_finops_per_profile`` (groups of profiles, run at once),
  ``judge_aws_finops_group``, ``judge_aws_finops``, ``plan_groups``, ``expected_ce_requests``,
  ``classify_aws_finops_output`` and the report types (``FinopsCostReport``, ``FinopsAuditReport``,
  ``FinopsTrendReport``, ``FinopsProfileResult``).

Private: ``_aws_files`` (the scratch HOME's AWS config and credentials files, checked) and
``_processes`` (output pump, process tree, signals, peak memory), and ``child_site/sitecustomize.py``
(on each child's PYTHONPATH: counts the HTTP requests its botocore sends). The runner depends on the shared
kernel and on the AWS domain's value types (``services.aws.credentials``, ``services.aws.regions``)
only.
"""
