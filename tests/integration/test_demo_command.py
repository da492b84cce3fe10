"""`finops-dashboard demo`: a private instance folder reused on the next start; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import stat

import psutil
import pytest

from tests.stacks import start_embedded

pytestmark = pytest.mark.integration


def test_instance_folder_and_secrets_are_private(embedded_stack):
    instance = embedded_stack.database_url.removeprefix("sqlite:///").rsplit("/", 1)[0]
    assert stat.S_IMODE(os.stat(instance).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(f"{instance}/secrets.json").st_mode) == 0o600
    assert embedded_stack.password  # printed at the first start


def test_second_start_reuses_everything_and_ctrl_c_stops_every_process(tmp_path):
    first = start_embedded(tmp_path)
    secrets_before = (tmp_path / "instance" / "secrets.json").read_text()
    first.close()
    (tmp_path / "demo.log").rename(tmp_path / "first.log")

    second = start_embedded(tmp_path)
    output = (tmp_path / "demo.log").read_text()
    assert second.password == ""  # the admin exists: no new password is printed
    assert "Demo data is already loaded." in output
    assert "Sign in with the account created at first start" in output
    assert (tmp_path / "instance" / "secrets.json").read_text() == secrets_before

    parent = psutil.Process(second.processes[0].pid)
    family = [parent, *parent.children(recursive=True)]
    assert len(family) >= 2  # the gunicorn arbiter and its worker
    os.killpg(parent.pid, signal.SIGINT)  # what a terminal sends to the foreground group on Ctrl-C
    _gone, alive = psutil.wait_procs(family, timeout=20)
    assert not alive, f"still running after Ctrl-C: {alive}"
