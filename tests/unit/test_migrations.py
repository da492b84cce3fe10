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


def test_the_summary_rollups_are_filled_from_existing_rollups_on_upgrade(tmp_path):
    import datetime as dt
    from decimal import Decimal

    from sqlalchemy import create_engine, func, select, text

    from models import CostSummaryRollup, CostTeamDailyRollup
    from services import database, ingest, rollups
    from tests.factories import fact

    url = f"sqlite:///{tmp_path}/backfill.db"
    config = Config(str(MIGRATIONS_INI))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:  # what 0004's rollups hold for an organisation already in use
        conn.execute(text(
            "INSERT INTO cost_monthly_rollups (billing_period, provider, usage_account_id, service, usage_type, "
            "charge_category, currency, unblended_cost, amortized_cost, net_cost, list_cost, line_count) VALUES "
            "('2026-01-01', 'AWS', '1', 'EC2', 'a', 'Usage', 'USD', '0.10000000001', '1', '1', '1', 2),"
            "('2026-01-01', 'AWS', '1', 'EC2', 'b', 'Usage', 'USD', '0.20000000002', '1', '1', '1', 3)"))
        conn.execute(text(
            "INSERT INTO cost_allocation_rollups (usage_date, billing_period, usage_account_id, service, team, "
            "cost_center, environment, currency, unblended_cost, amortized_cost, net_cost, list_cost, line_count) "
            "VALUES ('2026-01-02', '2026-01-01', '1', 'EC2', 'web', '', '', 'USD', '5', '5', '5', '5', 1),"
            "('2026-01-02', '2026-01-01', '2', 'EC2', 'web', '', '', 'USD', '7', '7', '7', '7', 1)"))
    engine.dispose()
    command.upgrade(config, "head")
    database.configure(url)
    with database.session_scope() as session:
        summary = session.execute(select(CostSummaryRollup.unblended_cost, CostSummaryRollup.line_count)).all()
        team = session.execute(select(CostTeamDailyRollup.team, CostTeamDailyRollup.unblended_cost)).all()
        assert summary == [(Decimal("0.30000000003"), 5)] and team == [("web", Decimal(12))]
        # and an import keeps them in step from then on
        ingest.replace_period(session, source="test", billing_period=dt.date(2026, 1, 1),
                              rows=[fact(dt.date(2026, 1, 3), "1", "EC2", "2.5")])
        rollups.rebuild_period(session, billing_period=dt.date(2026, 1, 1))
        assert session.scalar(select(func.count()).select_from(CostSummaryRollup)) == 1
        assert session.scalar(select(CostSummaryRollup.unblended_cost)) == Decimal("2.5")
