"""Saved views of the cost explorer: private or shared, checked, unique per owner, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditLog, DashboardConfig
from services import views
from services.costs.explorer import parse_state, state_to_query
from services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.identity.auth import actor_for
from tests.factories import make_user

STATE = {"group_by": "region", "filters": {"service": ["Amazon EC2"]}, "chart": "line"}


def _actor(session, username, roles=("finance",)):
    return actor_for(make_user(session, username=username, roles=roles))


def _count(session, model=DashboardConfig, **where):
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return session.scalar(query)


def _actions(session):
    return list(session.scalars(select(AuditLog.action).where(AuditLog.action.like("views.%")).order_by(AuditLog.id)))


def test_a_created_view_stores_the_normalised_state_and_links_back_to_it(session):
    ann = _actor(session, "ann")
    view = views.create_view(session=session, actor=ann, name="  EC2 by region  ",
                             state={**STATE, "metric": "unblended_cost", "page": 1}, shared=False)
    assert view.name == "EC2 by region" and view.is_mine and not view.shared
    assert view.state == STATE  # the defaults given are left out
    assert parse_state(view.url.removeprefix("/explorer")) == parse_state(state_to_query(parse_state(
        "?group_by=region&filter.service=Amazon+EC2&chart=line")))
    assert view.url.startswith("/explorer?")
    stored = session.get(DashboardConfig, view.id)
    assert stored.page == "explorer" and stored.filters == STATE and stored.owner_id == ann.user_id


def test_list_shows_own_and_shared_views_by_name_with_their_owner(session):
    ann, bob, cy = _actor(session, "ann"), _actor(session, "bob"), _actor(session, "cyd")
    views.create_view(session=session, actor=ann, name="zeta", state={}, shared=False)
    views.create_view(session=session, actor=bob, name="Alpha", state=STATE, shared=True)
    views.create_view(session=session, actor=bob, name="bob's own", state={}, shared=False)
    views.create_view(session=session, actor=cy, name="beta", state={}, shared=True)
    listed = views.list_views(session=session, actor=ann, limit=50, offset=0)
    assert [(v.name, v.owner, v.is_mine) for v in listed.items] == [
        ("Alpha", "bob", False), ("beta", "cyd", False), ("zeta", "ann", True)]
    assert listed.total == 3
    second = views.list_views(session=session, actor=ann, limit=1, offset=1)
    assert [v.name for v in second.items] == ["beta"] and second.total == 3


@pytest.mark.parametrize("limit, offset", [(0, 0), (201, 0), (10, -1)])
def test_list_refuses_a_page_out_of_bounds(session, limit, offset):
    ann = _actor(session, "ann")
    with pytest.raises(InvalidInput):
        views.list_views(session=session, actor=ann, limit=limit, offset=offset)


def test_another_users_private_view_is_not_found(session):
    ann, bob = _actor(session, "ann"), _actor(session, "bob")
    view = views.create_view(session=session, actor=ann, name="mine", state={}, shared=False)
    for act in (lambda: views.get_view(session=session, actor=bob, view_id=view.id),
                lambda: views.update_view(session=session, actor=bob, view_id=view.id, name="x"),
                lambda: views.delete_view(session=session, actor=bob, view_id=view.id)):
        with pytest.raises(NotFound):
            act()
    assert session.get(DashboardConfig, view.id).name == "mine"


def test_a_shared_view_opens_for_others_who_cannot_change_it(session):
    ann, bob = _actor(session, "ann"), _actor(session, "bob", roles=("engineering",))
    view = views.create_view(session=session, actor=ann, name="team view", state=STATE, shared=True)
    seen = views.get_view(session=session, actor=bob, view_id=view.id)
    assert seen.state == STATE and not seen.is_mine and seen.owner == "ann"
    with pytest.raises(PermissionDenied):
        views.update_view(session=session, actor=bob, view_id=view.id, shared=False)
    with pytest.raises(PermissionDenied):
        views.delete_view(session=session, actor=bob, view_id=view.id)
    assert session.get(DashboardConfig, view.id).is_shared


def test_an_admin_may_change_and_delete_anyones_view(session):
    ann, root = _actor(session, "ann"), _actor(session, "root", roles=("admin",))
    view = views.create_view(session=session, actor=ann, name="old", state={}, shared=False)
    changed = views.update_view(session=session, actor=root, view_id=view.id, name="new")
    assert changed.name == "new" and changed.owner == "ann" and not changed.is_mine
    views.delete_view(session=session, actor=root, view_id=view.id)
    assert session.get(DashboardConfig, view.id) is None


def test_update_changes_only_the_fields_given_and_is_audited(session):
    ann = _actor(session, "ann")
    view = views.create_view(session=session, actor=ann, name="v", state=STATE, shared=False)
    changed = views.update_view(session=session, actor=ann, view_id=view.id, shared=True)
    assert (changed.name, changed.state, changed.shared) == ("v", STATE, True)
    restated = views.update_view(session=session, actor=ann, view_id=view.id, state={"group_by": "account"})
    assert restated.state == {"group_by": "account"} and restated.shared
    assert restated.updated_at >= view.updated_at
    details = session.scalars(select(AuditLog.details).where(AuditLog.action == "views.update")
                              .order_by(AuditLog.id)).all()
    assert [d["changed"] for d in details] == [["shared"], ["state"]]


def test_create_update_and_delete_each_write_an_audit_row(session):
    ann = _actor(session, "ann")
    view = views.create_view(session=session, actor=ann, name="v", state={}, shared=False)
    views.update_view(session=session, actor=ann, view_id=view.id, name="w")
    views.delete_view(session=session, actor=ann, view_id=view.id)
    assert _actions(session) == ["views.create", "views.update", "views.delete"]
    ids = set(session.scalars(select(AuditLog.object_id).where(AuditLog.action.like("views.%"))))
    assert ids == {str(view.id)}


def test_a_duplicate_name_of_the_same_owner_is_a_conflict(session):
    ann, bob = _actor(session, "ann"), _actor(session, "bob")
    first = views.create_view(session=session, actor=ann, name="Costs", state={}, shared=False)
    other = views.create_view(session=session, actor=ann, name="Other", state={}, shared=False)
    with pytest.raises(Conflict, match="already have a view named 'Costs'"):
        views.create_view(session=session, actor=ann, name=" Costs ", state=STATE, shared=True)
    with pytest.raises(Conflict):
        views.update_view(session=session, actor=ann, view_id=other.id, name="Costs")
    views.create_view(session=session, actor=bob, name="Costs", state={}, shared=False)  # another owner may
    views.update_view(session=session, actor=ann, view_id=first.id, name="Costs", shared=True)  # its own name
    assert _count(session, owner_id=ann.user_id) == 2


@pytest.mark.parametrize("name", ["", "   ", "x" * 129, "line\nbreak", "tab\there", "bell\x07"])
def test_a_bad_name_is_refused_and_nothing_is_written(session, name):
    ann = _actor(session, "ann")
    with pytest.raises(InvalidInput, match="^name: "):
        views.create_view(session=session, actor=ann, name=name, state={}, shared=False)
    assert _count(session) == 0 and _actions(session) == []


def test_a_name_of_128_characters_is_accepted(session):
    ann = _actor(session, "ann")
    assert views.create_view(session=session, actor=ann, name="é" * 128, state={}, shared=False).name == "é" * 128


@pytest.mark.parametrize("state, field", [
    ({"group_by": "colour"}, "state.group_by"),
    ({"preset": "custom", "start": "2026-02-01", "end": "2026-01-01"}, "state"),
    ({"nonsense": 1}, "state.nonsense"),
    ({"filters": {"service": "x" * 3}}, "state.filters.service"),
    ("?group_by=region", "state"),
])
def test_a_bad_state_is_refused_naming_the_field_and_nothing_is_written(session, state, field):
    ann = _actor(session, "ann")
    with pytest.raises(InvalidInput) as caught:
        views.create_view(session=session, actor=ann, name="v", state=state, shared=False)
    named = caught.value.message.split(":")[0]
    assert named == field or (field != "state" and named.startswith(f"{field}."))  # a union names its branch
    assert _count(session) == 0 and _actions(session) == []


def test_a_bad_state_leaves_an_update_unwritten(session):
    ann = _actor(session, "ann")
    view = views.create_view(session=session, actor=ann, name="v", state=STATE, shared=False)
    with pytest.raises(InvalidInput, match="^state.group_by"):
        views.update_view(session=session, actor=ann, view_id=view.id, name="renamed", state={"group_by": "x"})
    stored = session.get(DashboardConfig, view.id)
    assert (stored.name, stored.filters) == ("v", STATE) and _actions(session) == ["views.create"]


def test_an_auditor_saves_private_views_but_may_not_share(session):
    audrey = _actor(session, "audrey", roles=("auditor",))
    view = views.create_view(session=session, actor=audrey, name="check", state={}, shared=False)
    with pytest.raises(PermissionDenied, match="read-only"):
        views.create_view(session=session, actor=audrey, name="shared", state={}, shared=True)
    with pytest.raises(PermissionDenied):
        views.update_view(session=session, actor=audrey, view_id=view.id, shared=True)
    assert not session.get(DashboardConfig, view.id).is_shared and _count(session) == 1


@pytest.mark.parametrize("role", ["admin", "finance", "engineering", "executive"])
def test_every_other_role_may_share(session, role):
    person = _actor(session, f"p-{role}", roles=(role,))
    assert views.create_view(session=session, actor=person, name="s", state={}, shared=True).shared


def test_a_person_without_a_role_may_not_save(session):
    nobody = _actor(session, "nobody", roles=())
    with pytest.raises(PermissionDenied):
        views.create_view(session=session, actor=nobody, name="v", state={}, shared=False)


@pytest.mark.parametrize("view_id", [0, -1, 2**31, 10**20])
def test_an_id_no_row_can_have_is_not_found(session, view_id):
    ann = _actor(session, "ann")
    with pytest.raises(NotFound):
        views.get_view(session=session, actor=ann, view_id=view_id)


def test_a_view_holds_no_account_visibility(session):
    ann = _actor(session, "ann")
    view = views.create_view(session=session, actor=ann, name="v", state={"filters": {"account": ["111111111111"]}},
                             shared=True)
    assert set(session.get(DashboardConfig, view.id).filters) == {"filters"}
