"""Facts are stored as narrow lines and the keys they repeat, and read back as they were given."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from models import CostFact
from models.cost_storage import CostFactKey
from services.costs import ingest
from tests.factories import fact

JANUARY, FEBRUARY = dt.date(2026, 1, 1), dt.date(2026, 2, 1)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_lines_of_one_key_share_one_stored_key_across_imports(session):
    rows = [fact(JANUARY + dt.timedelta(days=d), "111", "EC2", "1.5", region="us-east-1") for d in range(3)]
    ingest.replace_period(session, source="focus", billing_period=JANUARY,
                          rows=[*rows, fact(JANUARY, "111", "S3", "2")])
    assert (_count(session, CostFact), _count(session, CostFactKey)) == (4, 2)

    ingest.replace_period(session, source="focus", billing_period=FEBRUARY,
                          rows=[fact(FEBRUARY, "111", "EC2", "1.5", region="us-east-1")])
    assert (_count(session, CostFact), _count(session, CostFactKey)) == (5, 2)
    assert session.scalar(select(func.count(func.distinct(CostFact.id)))) == 5

    # A load meeting stored keys and new ones stores only the new.
    ingest.replace_period(session, source="focus", billing_period=FEBRUARY, rows=[
        fact(FEBRUARY, "111", "EC2", "1.5", region="us-east-1"), fact(FEBRUARY, "111", "S3", "2"),
        fact(FEBRUARY, "222", "S3", "3")])
    assert (_count(session, CostFact), _count(session, CostFactKey)) == (7, 3)


def test_a_reimport_leaves_the_planner_settings_as_they_were(session):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the probe of a held period keeps PostgreSQL's planner off sequential scans")
    for setting in ("on", "off"):
        session.execute(text("SELECT set_config('enable_seqscan', :value, true)"), {"value": setting})
        for _ in range(2):  # the second finds the period held
            ingest.replace_period(session, source="focus", billing_period=JANUARY,
                                  rows=[fact(JANUARY, "111", "EC2", "1")])
        assert session.scalar(text("SELECT current_setting('enable_seqscan')")) == setting
    assert _count(session, CostFact) == 1


def test_values_holding_the_separator_stay_two_different_keys(session):
    # Joined with the separator, ("a\x1fb", "c") and ("a", "b\x1fc") would read the same.
    ingest.replace_period(session, source="focus", billing_period=JANUARY, rows=[
        fact(JANUARY, "111", "a\x1fb", "1", region="c"),
        fact(JANUARY, "111", "a", "2", region="b\x1fc"),
    ])
    stored = session.execute(select(CostFact.service, CostFact.region, CostFact.unblended_cost)
                             .order_by(CostFact.unblended_cost)).all()
    assert stored == [("a\x1fb", "c", Decimal(1)), ("a", "b\x1fc", Decimal(2))]
    assert _count(session, CostFactKey) == 2


def test_a_missing_value_and_an_empty_one_are_different_keys(session):
    ingest.replace_period(session, source="focus", billing_period=JANUARY, rows=[
        fact(JANUARY, "111", "EC2", "1", service_category=None),
        fact(JANUARY, "111", "EC2", "2", service_category=""),
    ])
    assert sorted(session.scalars(select(CostFact.service_category)), key=str) == ["", None]


def test_stored_key_ids_are_those_key_id_gives_for_the_values(session):
    ingest.replace_period(session, source="focus", billing_period=JANUARY, rows=[
        fact(JANUARY, "111", "EC2", "1", region="us-east-1", tags={"team": "web"}, usage_unit="Hrs"),
    ])
    key = session.scalars(select(CostFactKey)).one()
    assert key.id == ingest.key_id(["AWS", "999999999999", "111", "EC2", None, "us-east-1", "", "Usage", "USD",
                                    "Hrs", '{"team":"web"}', "web", "", ""])


def test_a_key_with_the_separator_does_not_rename_the_other_keys_of_its_load(session, monkeypatch):
    monkeypatch.setattr(ingest, "CHUNK_SIZE", 2)
    monkeypatch.setattr(ingest, "COPY_CHUNK_SIZE", 2)  # the plain key is met again beside the odd one
    ingest.replace_period(session, source="focus", billing_period=JANUARY, rows=[
        fact(JANUARY, "111", "EC2", "1"), fact(JANUARY, "111", "S3", "1"),
        fact(JANUARY, "111", "EC2", "2"), fact(JANUARY, "111", "a\x1fb", "3"),
    ])
    stored = dict(session.execute(select(CostFactKey.service, CostFactKey.id)).all())

    def expected(service: str) -> int:
        return ingest.key_id(["AWS", "999999999999", "111", service, None, "global", "", "Usage", "USD", None,
                              "{}", "", "", ""])

    assert stored == {name: expected(name) for name in ("EC2", "S3", "a\x1fb")}
    assert session.scalar(select(func.sum(CostFact.unblended_cost)).where(CostFact.service == "EC2")) == 3
