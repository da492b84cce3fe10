"""Migrations build the models' schema exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

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
    from services import database
    from services.costs import ingest, rollups
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


@pytest.fixture()
def unmigrated_url(backend, tmp_path):
    """An empty database of each backend, with no schema yet."""
    from tests.conftest import _create_pg_database, _drop_pg_database

    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/facts.db"
        return
    name = f"finops_test_migration_{uuid.uuid4().hex[:8]}"
    yield _create_pg_database(name)
    _drop_pg_database(name)


def test_facts_become_lines_and_keys_on_upgrade_and_read_the_same(unmigrated_url):
    from decimal import Decimal

    from sqlalchemy import create_engine, select, text

    from models import CostFact
    from models.cost_storage import CostFactKey
    from services import database
    from services.costs import ingest

    url = unmigrated_url
    config = Config(str(MIGRATIONS_INI))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0008")
    engine = create_engine(url)
    columns = ("id, usage_date, billing_period, provider, payer_account_id, usage_account_id, service, "
               "service_category, region, usage_type, charge_category, resource_id, tags, team, cost_center, "
               "environment, unblended_cost, amortized_cost, net_cost, list_cost, usage_quantity, usage_unit, "
               "currency, source, import_batch_id")
    with engine.begin() as conn:  # two lines of one key (one without a category or unit), one of another
        conn.execute(text(
            f"INSERT INTO cost_facts ({columns}) VALUES "  # noqa: S608 - the column list is this test's own
            "(1, '2026-01-02', '2026-01-01', 'AWS', '9', '1', 'EC2', NULL, 'us-east-1', 'a', 'Usage', 'i-1', "
            "'{\"team\":\"web\"}', 'web', '', '', '0.10000000001', '1', '1', '1', 2, NULL, 'USD', 'focus', 4),"
            "(2, '2026-01-03', '2026-01-01', 'AWS', '9', '1', 'EC2', NULL, 'us-east-1', 'a', 'Usage', 'i-2', "
            "'{\"team\":\"web\"}', 'web', '', '', '0.2', '2', '2', '2', 3, NULL, 'USD', 'focus', 4),"
            "(3, '2026-01-03', '2026-01-01', 'AWS', '9', '2', 'RDS', 'Databases', 'global', 'b', 'Usage', NULL, "
            "'{}', '', '', '', '5', '5', '5', '5', NULL, 'Hrs', 'USD', 'focus', 4)"))
    engine.dispose()
    command.upgrade(config, "head")
    database.configure(url)
    with database.session_scope() as session:
        facts = session.execute(select(CostFact.id, CostFact.usage_account_id, CostFact.service_category,
                                       CostFact.tags, CostFact.unblended_cost, CostFact.usage_unit)
                                .order_by(CostFact.id)).all()
        assert facts == [(1, "1", None, {"team": "web"}, Decimal("0.10000000001"), None),
                         (2, "1", None, {"team": "web"}, Decimal("0.2"), None),
                         (3, "2", "Databases", {}, Decimal(5), "Hrs")]
        keys = session.scalars(select(CostFactKey.id).order_by(CostFactKey.usage_account_id)).all()
        # ids as the loaders compute them, so that a later import of the same lines names the same keys
        assert keys == [ingest.key_id(["AWS", "9", "1", "EC2", None, "us-east-1", "a", "Usage", "USD", None,
                                       '{"team":"web"}', "web", "", ""]),
                        ingest.key_id(["AWS", "9", "2", "RDS", "Databases", "global", "b", "Usage", "USD", "Hrs",
                                       "{}", "", "", ""])]
    command.downgrade(config, "0008")
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT usage_account_id, unblended_cost FROM cost_facts ORDER BY id")).all()
    engine.dispose()
    assert [(account, Decimal(cost)) for account, cost in stored] == [
        ("1", Decimal("0.10000000001")), ("1", Decimal("0.2")), ("2", Decimal(5))]


def test_rollup_rows_keep_their_sums_without_ids_and_are_numbered_again_on_downgrade(unmigrated_url):
    from decimal import Decimal

    from sqlalchemy import create_engine, text

    config = Config(str(MIGRATIONS_INI))
    config.set_main_option("sqlalchemy.url", unmigrated_url)
    command.upgrade(config, "0009")
    engine = create_engine(unmigrated_url)
    insert = text("INSERT INTO cost_daily_rollups (id, usage_date, billing_period, provider, usage_account_id, "
                  "service, region, currency, unblended_cost, amortized_cost, net_cost, list_cost, line_count) "
                  "VALUES (:id, '2026-01-02', '2026-01-01', 'AWS', :account, 'EC2', 'us-east-1', 'USD', :cost, "
                  ":cost, :cost, :cost, 3)")
    read = text("SELECT usage_account_id, unblended_cost, line_count FROM cost_daily_rollups "
                "ORDER BY usage_account_id")
    with engine.begin() as conn:
        conn.execute(insert, [{"id": 7, "account": "1", "cost": "0.10000000001"},
                              {"id": 9, "account": "2", "cost": "5"}])
    engine.dispose()
    command.upgrade(config, "head")
    engine = create_engine(unmigrated_url)
    with engine.connect() as conn:
        assert [(a, Decimal(c), n) for a, c, n in conn.execute(read)] == [
            ("1", Decimal("0.10000000001"), 3), ("2", Decimal(5), 3)]
        assert "id" not in {c["name"] for c in inspect(conn).get_columns("cost_daily_rollups")}
    engine.dispose()
    command.downgrade(config, "0009")
    engine = create_engine(unmigrated_url)
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM cost_daily_rollups ORDER BY id")).scalars().all()
        assert len(ids) == len(set(ids)) == 2 and None not in ids
        assert [(a, Decimal(c), n) for a, c, n in conn.execute(read)] == [
            ("1", Decimal("0.10000000001"), 3), ("2", Decimal(5), 3)]
    engine.dispose()


def test_upgrading_to_0015_rebuilds_the_rollups_counting_one_source_per_account_month(unmigrated_url):
    import datetime as dt
    from decimal import Decimal

    from sqlalchemy import create_engine, select, text

    from models import CostAccountSource, CostPeriodSpan, CostSummaryRollup
    from services import database
    from services.costs import ingest
    from tests.factories import fact

    config = Config(str(MIGRATIONS_INI))
    config.set_main_option("sqlalchemy.url", unmigrated_url)
    command.upgrade(config, "head")
    database.configure(unmigrated_url)
    period = dt.date(2026, 10, 1)
    with database.session_scope() as session:
        ingest.replace_period(session, source="cost_explorer", billing_period=period, payer_account_ids={"9"},
                              rows=[fact(dt.date(2026, 10, 2), "1", "EC2", "4", payer_account_id="9",
                                         service_category="Compute")])
        ingest.replace_period(session, source="aws_finops", billing_period=period, payer_account_ids={"1"},
                              rows=[fact(period, "1", "EC2", "4", payer_account_id="1")])
        session.commit()
    database.get_engine().dispose()
    command.downgrade(config, "0012")
    engine = create_engine(unmigrated_url)
    with engine.begin() as conn:  # what the revision before 0015 counted: both sources of account 1, under two payers
        for table in ("cost_daily_rollups", "cost_monthly_rollups", "cost_summary_rollups"):
            conn.execute(text(f"INSERT INTO {table} SELECT * FROM {table}"))  # noqa: S608 - our tables
    engine.dispose()
    command.upgrade(config, "head")
    database.configure(unmigrated_url)
    with database.session_scope() as session:
        summary = session.execute(select(CostSummaryRollup.service_category, CostSummaryRollup.unblended_cost,
                                         CostSummaryRollup.contracted_cost)).all()
        assert summary == [("Compute", Decimal(4), Decimal("4.4"))]
        assert session.execute(select(CostAccountSource.source, CostAccountSource.is_counted)
                               .order_by(CostAccountSource.source)).all() == [
            ("aws_finops", False), ("cost_explorer", True)]
        assert session.execute(select(CostPeriodSpan.first_usage_date, CostPeriodSpan.last_usage_date)).all() == [
            (dt.date(2026, 10, 2), dt.date(2026, 10, 2))]
    database.get_engine().dispose()
