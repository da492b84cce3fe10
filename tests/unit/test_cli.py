"""The `finops-dashboard` command, run as an operator would run it."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import TEST_AUDIT_KEY, TEST_KEYS, TEST_SECRET
from tests.stacks import CLI

COMMANDS = [[], ["demo"], ["serve"], ["worker"], ["beat"], ["db"], ["db", "upgrade"], ["create-admin"],
            ["seed-demo"], ["audit"], ["audit", "verify"],
            ["audit", "checkpoint"]]


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ENCRYPTION_KEYS", "AUDIT_HMAC_KEY")}
    return subprocess.run([CLI, *argv], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "top")
def test_every_command_has_help(argv):
    result = _run([*argv, "--help"])
    assert result.returncode == 0 and "Usage: finops-dashboard" in result.stdout


def test_missing_required_setting_stops_start_up_with_one_line(tmp_path):
    result = _run(["serve"], env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: SECRET_KEY is not set: see .env.template for what it must hold"]


def test_create_admin_prints_a_password_once_and_refuses_a_duplicate(db_url):
    env = {"SECRET_KEY": TEST_SECRET, "DATABASE_URL": db_url, "ENCRYPTION_KEYS": TEST_KEYS,
           "AUDIT_HMAC_KEY": TEST_AUDIT_KEY, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15"}
    first = _run(["create-admin", "--username", "ops"], env)
    assert first.returncode == 0 and "Password (shown once): " in first.stdout
    again = _run(["create-admin", "--username", "ops"], env)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_create_admin_refuses_a_folder_that_is_not_a_demo_instance(tmp_path):
    result = _run(["create-admin", "--username", "ops", "--instance", str(tmp_path / "nowhere")])
    assert result.returncode == 2
    assert "is not an instance folder of `finops-dashboard demo`" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_audit_verify_reports_an_intact_chain(db_url):
    env = {"SECRET_KEY": TEST_SECRET, "DATABASE_URL": db_url, "ENCRYPTION_KEYS": TEST_KEYS,
           "AUDIT_HMAC_KEY": TEST_AUDIT_KEY, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15"}
    _run(["create-admin", "--username", "ops2"], env)
    result = _run(["audit", "verify"], env)
    assert result.returncode == 0 and result.stdout.strip().endswith("intact")


def test_audit_checkpoint_lets_verify_find_a_trail_truncated_with_its_head(db_url, tmp_path):
    from sqlalchemy import text

    from services import database

    env = {"SECRET_KEY": TEST_SECRET, "DATABASE_URL": db_url, "ENCRYPTION_KEYS": TEST_KEYS,
           "AUDIT_HMAC_KEY": TEST_AUDIT_KEY, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
           "AUDIT_CHECKPOINT_PATH": str(tmp_path / "audit-checkpoints.jsonl")}
    _run(["create-admin", "--username", "ops3"], env)
    checkpoint = _run(["audit", "checkpoint"], env)
    assert checkpoint.returncode == 0 and "Checkpoint written: row 1" in checkpoint.stdout
    engine = database.get_engine()
    with engine.begin() as conn:  # as the tables' owner, triggers off
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_logs DISABLE TRIGGER USER"))
        conn.execute(text("DELETE FROM audit_logs"))
        conn.execute(text("DELETE FROM audit_chain_head"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_logs ENABLE TRIGGER USER"))
    result = _run(["audit", "verify"], env)
    assert result.returncode == 1 and result.stdout.strip().endswith("TAMPERED")
    assert "the trail was truncated" in result.stdout
