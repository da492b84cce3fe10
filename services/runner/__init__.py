"""The CLI runner: the only place in the product that starts a process.

Public module: ``cli_runner``: ``CliRunner``, ``RunnerConfig``, ``RunResult``, ``CancelToken``,
``CliCommand`` and the allow-listed command models in ``COMMANDS``, ``parse_command``,
``parse_aws_json`` and the aws-finops report readers.
"""
