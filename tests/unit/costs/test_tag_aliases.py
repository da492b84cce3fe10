"""Tag aliases (which tag keys mean team, cost centre, environment) are a setting admins change."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from models import AuditLog
from services.costs import cache, ingest, queries, tag_aliases
from services.errors import InvalidInput, PermissionDenied
from services.identity.permissions import Actor
from tests.factories import fact

ADMIN = Actor(user_id=None, username="root", roles=frozenset({"admin"}))
FINANCE = Actor(user_id=None, username="fin", roles=frozenset({"finance"}))
PERIOD = dt.date(2026, 5, 1)


def _by_environment(session):
    query = queries.parse_query({"start": "2026-05-01", "end": "2026-05-31", "granularity": "total",
                                 "group_by": ["environment"]})
    return {r.keys[0]: r.amount for r in queries.query_costs(session, actor=FINANCE, query=query).rows}


@pytest.fixture()
def tagged(session):
    cache.configure(None)
    ingest.replace_period(session, source="test", billing_period=PERIOD, rows=[
        fact(dt.date(2026, 5, 2), "111111111111", "Amazon EC2", "10", tags={"env": "dev"}),
        fact(dt.date(2026, 5, 3), "111111111111", "Amazon EC2", "5", tags={"stage": "prod"}),
        fact(dt.date(2026, 5, 4), "111111111111", "Amazon S3", "2", tags={"Environment": "prod"}),
    ])
    session.commit()
    return session


def test_the_aliases_in_use_are_visible_and_are_the_long_standing_ones_by_default(tagged):
    shown = tag_aliases.get_tag_aliases(tagged)
    assert shown.environment == ["environment", "Environment", "env"]
    assert shown.team == ["team", "Team", "owner_team"]
    assert shown.cost_center == ["cost-center", "cost_center", "CostCenter", "costcenter"]
    assert _by_environment(tagged) == {"dev": 10, queries.UNTAGGED: 5, "prod": 2}


def test_an_admin_changes_the_aliases_stored_costs_follow_and_the_change_is_audited(tagged):
    before = tag_aliases.get_tag_aliases(tagged)
    changed = before.model_copy(update={"environment": ["environment", "Environment", "stage"]})
    tag_aliases.update_tag_aliases(tagged, actor=ADMIN, data=changed)
    tagged.commit()
    assert tag_aliases.get_tag_aliases(tagged).environment == ["environment", "Environment", "stage"]
    assert _by_environment(tagged) == {"prod": 7, queries.UNTAGGED: 10}
    row = tagged.scalars(select(AuditLog).where(AuditLog.action == "settings.tag_aliases")).one()
    assert row.actor_name == "root" and row.details["environment"] == ["environment", "Environment", "stage"]
    # and the next import resolves tags with the new aliases
    ingest.replace_period(tagged, source="test", billing_period=PERIOD, rows=[
        fact(dt.date(2026, 5, 2), "111111111111", "Amazon EC2", "1", tags={"stage": "test", "env": "dev"})])
    tagged.commit()
    assert _by_environment(tagged) == {"test": 1}


def test_only_admins_change_the_aliases_and_a_key_means_one_thing(tagged):
    aliases = tag_aliases.get_tag_aliases(tagged)
    with pytest.raises(PermissionDenied):
        tag_aliases.update_tag_aliases(tagged, actor=FINANCE, data=aliases)
    with pytest.raises(InvalidInput, match="env"):
        tag_aliases.update_tag_aliases(tagged, actor=ADMIN, data=tag_aliases.parse_tag_aliases(
            {**aliases.model_dump(), "team": ["team", "env"]}))
