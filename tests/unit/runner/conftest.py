"""The production runner (the real allow-list), for tests that must see nothing started."""

from __future__ import annotations

import pytest

from services.runner.cli_runner import CliRunner, RunnerConfig


@pytest.fixture(scope="module")
def production_runner(tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    base = tmp_path_factory.mktemp("production-runner")
    return CliRunner(RunnerConfig(scratch_root=base, output_root=base))
