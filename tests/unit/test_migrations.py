"""Migrations build the models' schema exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from dashapp.cli import MIGRATIONS_INI


def test_alembic_check_finds_no_difference_between_models_and_migrations(db_url):
    config = Config(str(MIGRATIONS_INI))
    config.set_main_option("sqlalchemy.url", db_url)
    command.check(config)  # raises when autogenerate would produce any operation


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path}/roundtrip.db"
    config = Config(str(MIGRATIONS_INI))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
